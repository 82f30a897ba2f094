// Each version and arm's figures over time, for the console's charts: the buckets of the windows
// summed into steps (at most `maxPoints` per series, however long the retention), each step's
// volume, mean score, the estimate before labels, and what its labels say. Pure.
import { windowQuality } from './quality.js';
import { parseArmKey, type Bucket, type MonitorWindows } from './windows.js';

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
  points: SeriesPoint[];
}

export function seriesOf(windows: MonitorWindows, maxPoints = 300): Series[] {
  const starts = Object.keys(windows.state.buckets).map(Number);
  if (starts.length === 0) return [];
  const { bucketMs } = windows.state;
  const span = Math.max(...starts) - Math.min(...starts) + bucketMs;
  const stepMs = Math.max(1, Math.ceil(span / maxPoints / bucketMs)) * bucketMs;
  return windows.keys().map((key) => {
    const steps = new Map<number, Bucket[]>();
    for (const bucket of windows.buckets((k) => k === key, -Infinity, Infinity)) {
      const at = Math.floor(bucket.start / stepMs) * stepMs;
      steps.set(at, [...(steps.get(at) ?? []), bucket]);
    }
    const points = [...steps.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([at, buckets]): SeriesPoint => {
        const q = windowQuality(buckets);
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
    return { ...parseArmKey(key), stepMs, points };
  });
}
