// A routing record whole: one stored before ModelUpdate v2, or built in a test, lacks the newer
// fields; every reader takes it through routingOf.
import type { Routing } from './contracts.js';

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
