// Each version and arm's figures over time, for the console's charts: the long history's hours
// and the windows' buckets summed into steps (about `maxPoints` per series, however long the
// history), each step's volume, mean score, the estimate before labels, and what its labels say.
// Pure.
import { addPoint, type HistoryPoint, type HistoryState } from './history.js';
import { windowQuality } from './quality.js';
import { parseArmKey, type MonitorWindows } from './windows.js';

export interface SeriesPoint {
  /** Start of the step (click time). */
  at: number;
  predictions: number;
  meanScore: number | null;
  estimatedLogLoss: number | null;
  labels: number;
  purchaseRate: number | null;
  predictedRate: number | null;
  logLoss: number | null;
  auc: number | null;
}

export interface Series {
  version: string;
  arm: string;
  stepMs: number;
  /** Realised figures (purchase rate, log loss, AUC) of steps this close to the newest click are null. */
  labelLagMs: number;
  points: SeriesPoint[];
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/** A step of the long history, from its sums. */
function historyPoint(at: number, points: readonly HistoryPoint[]): SeriesPoint {
  const sum = { ...points[0]!, at };
  for (const p of points.slice(1)) addPoint(sum, p);
  return {
    at,
    predictions: sum.predictions,
    meanScore: ratio(sum.scoreSum, sum.predictions),
    estimatedLogLoss: ratio(sum.expectedLossSum, sum.predictions),
    labels: sum.labels,
    purchaseRate: ratio(sum.positives, sum.labels),
    predictedRate: ratio(sum.labelScoreSum, sum.labels),
    logLoss: ratio(sum.lossSum, sum.labels),
    auc: ratio(sum.aucSum, sum.aucWeight),
  };
}

function grouped<T>(items: readonly T[], stepMs: number, at: (item: T) => number): Map<number, T[]> {
  const steps = new Map<number, T[]>();
  for (const item of items) {
    const step = Math.floor(at(item) / stepMs) * stepMs;
    const list = steps.get(step);
    if (list) list.push(item);
    else steps.set(step, [item]);
  }
  return steps;
}

/**
 * The live windows (exact figures) after the long history (sums per hour), in steps that keep
 * each series near `maxPoints`: the history's steps are whole hours, the windows' whole buckets.
 */
export function seriesOf(
  windows: MonitorWindows,
  maxPoints = 300,
  history?: HistoryState,
  /** Steps ending within this of the newest click are not labeled yet: their realised figures are left out. */
  labelLagMs = 0,
): Series[] {
  const { bucketMs } = windows.state;
  const hourMs = history?.stepMs ?? bucketMs;
  const live = Object.keys(windows.state.buckets).map(Number);
  const past = Object.values(history?.points ?? {}).flatMap((points) => points.map((p) => p.at));
  if (live.length === 0 && past.length === 0) return [];
  // Loops, not spreads: a year of hours for many versions is too many arguments for Math.min.
  let first = Infinity;
  let last = -Infinity;
  for (const s of live) [first, last] = [Math.min(first, s), Math.max(last, s + bucketMs)];
  for (const at of past) [first, last] = [Math.min(first, at), Math.max(last, at + hourMs)];
  const stepMs = Math.max(1, Math.ceil((last - first) / maxPoints / bucketMs)) * bucketMs;
  const historyStepMs = Math.max(1, Math.ceil(stepMs / hourMs)) * hourMs;
  const keys = [...new Set([...windows.keys(), ...Object.keys(history?.points ?? {})])].sort();
  return keys.map((key) => {
    const old = [...grouped(history?.points[key] ?? [], historyStepMs, (p) => p.at)].map(([at, points]) =>
      historyPoint(at, points),
    );
    const buckets = windows.buckets((k) => k === key, -Infinity, Infinity);
    const recent = [...grouped(buckets, stepMs, (b) => b.start)].map(([at, group]): SeriesPoint => {
      const q = windowQuality(group);
      return {
        at,
        predictions: q.predictions,
        meanScore: q.meanScore,
        estimatedLogLoss: q.estimate.logLoss,
        labels: q.labels,
        purchaseRate: q.purchaseRate,
        predictedRate: q.predictedRate,
        logLoss: q.logLoss,
        auc: q.auc,
      };
    });
    // A click's label lands up to the attribution window after it: newer steps hold the quick
    // purchases only, and their purchase rate and log loss would read high (and their AUC noise).
    const labeledBefore = windows.state.newest - labelLagMs;
    const matured = recent.map((p) =>
      p.at + stepMs <= labeledBefore
        ? p
        : { ...p, purchaseRate: null, logLoss: null, auc: null, predictedRate: null },
    );
    const points = [...old.sort((a, b) => a.at - b.at), ...matured.sort((a, b) => a.at - b.at)];
    return { ...parseArmKey(key), stepMs, labelLagMs, points };
  });
}
