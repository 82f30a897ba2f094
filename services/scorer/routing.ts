// Traffic routing (pure): a user's arm comes from a stable hash of the user id, so a user stays
// in one arm for as long as the split is unchanged; the shadow model scores every click but its
// predictions are marked shadow and never served.
import { murmur3 } from '../model/hash.js';
import type { Routing } from '../common/contracts.js';

export type ServedArm = 'champion' | 'challenger' | 'baseline';

/** Salt of the user hash: changing it reshuffles users between arms (a new experiment). */
export const ROUTING_SALT = 0x5eed_a8b;

/** The user's position in [0, 1), stable across processes and restarts. */
export function userBucket(userId: string, salt = ROUTING_SALT): number {
  return murmur3(userId, salt) / 4294967296;
}

/**
 * Which model serves this user, given what is routed and what is loaded, and the propensity: the
 * probability with which that arm is chosen for a user (the challenger's share, or the rest).
 */
export function servedArm(
  userId: string,
  routing: Routing,
  loaded: (version: string) => boolean,
): { arm: ServedArm; version: string | null; propensity: number } {
  const split = routing.challenger !== null && routing.challengerWeight > 0 && loaded(routing.challenger);
  if (split && userBucket(userId) < routing.challengerWeight)
    return { arm: 'challenger', version: routing.challenger, propensity: routing.challengerWeight };
  const propensity = split ? 1 - routing.challengerWeight : 1;
  if (routing.champion && loaded(routing.champion))
    return { arm: 'champion', version: routing.champion, propensity };
  return { arm: 'baseline', version: null, propensity };
}

/** Confidence of a probability: 0 at 0.5, 1 at 0 or 1. */
export function confidenceOf(score: number): number {
  return Math.abs(2 * score - 1);
}
