// Routing records (pure), shared by whoever reads them: the record whole (one stored before
// ModelUpdate v2, or built in a test, lacks the newer fields: readers take it through
// routingOf), its challengers in bucket order, and which segments a split applies to.
import type { RoutedChallenger, Routing } from './contracts.js';

export const EMPTY_ROUTING: Readonly<Routing> = Object.freeze({
  champion: null,
  challenger: null,
  challengerWeight: 0,
  shadow: null,
  challengers: [],
  baselineWeight: 0,
  segments: [],
});

/** A routing with every field (a stored or v1 one may lack the newer ones). */
export function routingOf(partial: Partial<Routing>): Routing {
  return {
    ...EMPTY_ROUTING,
    ...partial,
    challengers: [...(partial.challengers ?? [])],
    segments: [...(partial.segments ?? [])],
  };
}

/** Whether the segment ("country/device") matches a pattern; '*' matches any one part. */
export function segmentMatches(segment: string, pattern: string): boolean {
  const parts = segment.split('/');
  const wanted = pattern.split('/');
  return wanted.length === parts.length && wanted.every((w, i) => w === '*' || w === parts[i]);
}

/** Whether a split restricted to `patterns` applies to the segment (no patterns: everyone). */
export function inSegments(segment: string, patterns: readonly string[]): boolean {
  return patterns.length === 0 || patterns.some((p) => segmentMatches(segment, p));
}

/** Every challenger with a share, in bucket order (a ModelUpdate v1 routing names one). */
export function challengersOf(routing: Readonly<Routing>): RoutedChallenger[] {
  const listed = routing.challengers ?? [];
  if (listed.length > 0) return listed.filter((c) => c.weight > 0);
  return routing.challenger !== null && routing.challengerWeight > 0
    ? [{ version: routing.challenger, weight: routing.challengerWeight }]
    : [];
}
