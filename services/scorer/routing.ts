// Traffic routing (pure): a user's arm comes from a stable hash of the user id, so a user stays
// in one arm for as long as the split is unchanged. The challengers take the lowest buckets in
// order, the heuristic baseline's share the highest, the champion the rest; a split restricted
// to segments leaves every other user on the champion. The shadow model scores every click but
// its predictions are marked shadow and never served.
import { hash } from 'node:crypto';
import { murmur3 } from '../model/hash.js';
import type { Routing } from '../common/contracts.js';
import { challengersOf, inSegments } from '../common/routing.js';

export { challengersOf, inSegments, segmentMatches } from '../common/routing.js';

export type ServedArm = 'champion' | 'challenger' | 'baseline';

export interface ServingPlan {
  arm: ServedArm;
  version: string | null;
  /** The probability with which this arm is chosen for a user like this one. */
  propensity: number;
  /** The traffic split that chose it (splitId; '.out' outside its segments). */
  split: string;
}

/** Salt of the user hash: changing it reshuffles users between arms (a new experiment). */
export const ROUTING_SALT = 0x5eed_a8b;

/** The user's position in [0, 1), stable across processes and restarts. */
export function userBucket(userId: string, salt = ROUTING_SALT): number {
  return murmur3(userId, salt) / 4294967296;
}

/**
 * The id of a split: the same in every scorer for the same arms, shares and segments (the
 * shadow is not part of it: it serves no one), so outcomes served under it can be compared.
 */
export function splitId(routing: Readonly<Routing>): string {
  const arms = {
    champion: routing.champion,
    challengers: challengersOf(routing),
    baseline: routing.baselineWeight ?? 0,
    segments: routing.segments ?? [],
  };
  return hash('sha256', JSON.stringify(arms), 'base64url').slice(0, 12);
}

/**
 * Which model serves this user, given what is routed and what is loaded, with its propensity.
 * A challenger that is not loaded gives its users to the champion.
 */
export function servedArm(
  userId: string,
  routing: Readonly<Routing>,
  loaded: (version: string) => boolean,
  segment = '',
  split = splitId(routing),
): ServingPlan {
  const champion = routing.champion !== null && loaded(routing.champion) ? routing.champion : null;
  const championPlan = (propensity: number, id: string): ServingPlan =>
    champion
      ? { arm: 'champion', version: champion, propensity, split: id }
      : { arm: 'baseline', version: null, propensity, split: id };
  if (!inSegments(segment, routing.segments ?? [])) return championPlan(1, `${split}.out`);
  const all = challengersOf(routing);
  const challengers = all.filter((c) => loaded(c.version));
  const baseline = Math.max(0, routing.baselineWeight ?? 0);
  const bucket = challengers.length > 0 || baseline > 0 ? userBucket(userId) : 0;
  let low = 0;
  for (const c of all) {
    const high = low + c.weight;
    if (bucket < high && challengers.includes(c))
      return { arm: 'challenger', version: c.version, propensity: c.weight, split };
    low = high;
  }
  if (baseline > 0 && bucket >= 1 - baseline)
    return { arm: 'baseline', version: null, propensity: baseline, split };
  const taken = challengers.reduce((sum, c) => sum + c.weight, 0) + baseline;
  return championPlan(Math.max(0, 1 - taken), split);
}

/** Confidence of a probability: 0 at 0.5, 1 at 0 or 1. */
export function confidenceOf(score: number): number {
  return Math.abs(2 * score - 1);
}
