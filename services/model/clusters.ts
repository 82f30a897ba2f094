// How clustered a sample of clicks is. Clicks come in sessions and users, and the clicks of one
// user are alike (one segment, a similar score), so a window of n clicks carries the information
// of fewer independent ones. The design effect Σm²/Σm (m: records per user) is the factor by which
// a chi-squared statistic computed as if the clicks were independent is too large (Rao and Scott,
// first order, exact for a feature constant within a user and conservative for one that varies).
// Σm² is estimated by an AMS sketch (Alon, Matias and Szegedy): signed sums that merge by
// addition, so a window's sketch is the sum of its buckets' and the state stays small.
import { murmur3 } from './hash.js';

/** Signed sums kept: the estimate of Σm² has a relative standard error of about √(2/64) = 18%. */
export const SKETCH_WIDTH = 64;

export interface ClusterSketch {
  /** Records counted (those with a user). */
  records: number;
  /** Per sum j: Σ over records of the sign (±1) hash j gives their user. */
  sums: number[];
}

export function emptySketch(): ClusterSketch {
  return { records: 0, sums: new Array<number>(SKETCH_WIDTH).fill(0) };
}

export function addToSketch(sketch: ClusterSketch, userId: string): void {
  const bits = [murmur3(userId, 0x2545f491), murmur3(userId, 0x9e3779b9)];
  sketch.records++;
  for (let j = 0; j < SKETCH_WIDTH; j++) sketch.sums[j]! += ((bits[j >> 5]! >>> (j & 31)) & 1) === 1 ? 1 : -1;
}

/** Adds `from` into `into` (the same users in both are then one cluster, as they should be). */
export function mergeSketch(into: ClusterSketch, from: ClusterSketch | undefined): void {
  if (!from) return;
  into.records += from.records;
  for (let j = 0; j < SKETCH_WIDTH; j++) into.sums[j]! += from.sums[j] ?? 0;
}

/** Σm²/Σm, at least 1; 1 when nothing was counted. */
export function designEffect(sketch: ClusterSketch | undefined): number {
  if (!sketch || sketch.records === 0) return 1;
  const squares = sketch.sums.reduce((s, x) => s + x * x, 0) / sketch.sums.length;
  return Math.max(1, squares / sketch.records);
}
