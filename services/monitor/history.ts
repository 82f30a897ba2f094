// The monitor's long memory: when a bucket falls behind the retention (6 h by default), its
// figures are summed into one point per version, arm and hour, kept for FW_MONITOR_HISTORY_MS (a
// year and more), so the console can draw a year without the windows' profiles and bins. Only
// sums are kept, so any coarser step is exact, except AUC: a step's AUC is the label-weighted mean
// of its hours' AUCs. Pure.
import { windowQuality } from './quality.js';
import type { Bucket } from './windows.js';

export const HISTORY_STEP_MS = 3_600_000;

export interface HistoryPoint {
  /** Start of the hour (click time). */
  at: number;
  predictions: number;
  scoreSum: number;
  expectedLossSum: number;
  labels: number;
  positives: number;
  lossSum: number;
  /** Σ score of the labeled predictions (their predicted rate). */
  labelScoreSum: number;
  /** Σ AUC × labels over the buckets that had an AUC, and Σ labels of those buckets. */
  aucSum: number;
  aucWeight: number;
}

export interface HistoryState {
  stepMs: number;
  /** "version|arm" → its points, oldest first. */
  points: Record<string, HistoryPoint[]>;
}

export function emptyHistory(stepMs = HISTORY_STEP_MS): HistoryState {
  return { stepMs, points: {} };
}

function emptyPoint(at: number): HistoryPoint {
  return {
    at,
    predictions: 0,
    scoreSum: 0,
    expectedLossSum: 0,
    labels: 0,
    positives: 0,
    lossSum: 0,
    labelScoreSum: 0,
    aucSum: 0,
    aucWeight: 0,
  };
}

/** Adds `from` into `into` (both sums). */
export function addPoint(into: HistoryPoint, from: HistoryPoint): void {
  into.predictions += from.predictions;
  into.scoreSum += from.scoreSum;
  into.expectedLossSum += from.expectedLossSum;
  into.labels += from.labels;
  into.positives += from.positives;
  into.lossSum += from.lossSum;
  into.labelScoreSum += from.labelScoreSum;
  into.aucSum += from.aucSum;
  into.aucWeight += from.aucWeight;
}

/** A bucket's figures as sums. */
export function pointOf(bucket: Bucket, at = bucket.start): HistoryPoint {
  const q = windowQuality([bucket]);
  const p = bucket.predictions;
  const l = bucket.labels;
  return {
    at,
    predictions: p.n,
    scoreSum: p.scoreSum,
    expectedLossSum: p.expectedLossSum,
    labels: l.n,
    positives: l.positives,
    lossSum: l.lossSum,
    labelScoreSum: l.scoreSum,
    aucSum: q.auc === null ? 0 : q.auc * l.n,
    aucWeight: q.auc === null ? 0 : l.n,
  };
}

/** Sums an expired bucket into its hour, then forgets hours older than `keepMs` before it. */
export function rollUp(history: HistoryState, key: string, bucket: Bucket, keepMs: number): void {
  const at = Math.floor(bucket.start / history.stepMs) * history.stepMs;
  const points = (history.points[key] ??= []);
  // Buckets mostly expire in time order, so the hour is the last point or a new one after it.
  let i = points.length - 1;
  while (i >= 0 && points[i]!.at > at) i--;
  let point = points[i];
  if (!point || point.at !== at) {
    point = emptyPoint(at);
    points.splice(i + 1, 0, point);
  }
  addPoint(point, pointOf(bucket, at));
  const horizon = at - keepMs;
  for (const [k, list] of Object.entries(history.points)) {
    const keep = list.findIndex((p) => p.at >= horizon);
    if (keep < 0) delete history.points[k];
    else if (keep > 0) list.splice(0, keep);
  }
}
