// A window's numbers from its buckets' sufficient statistics (windows.ts): what was served, what
// the labels say, and what the calibrated scores expected before the labels came. Pure.
import { DELAY_BOUNDS, RELIABILITY_BINS, SCORE_BINS, type Bucket } from './windows.js';

export interface WindowQuality {
  predictions: number;
  meanScore: number | null;
  labels: number;
  /** Labels over predictions of the window (a window's labels land up to the attribution window late). */
  coverage: number | null;
  positives: number;
  purchaseRate: number | null;
  /** Mean score of the labeled predictions (what the model said of the same clicks). */
  predictedRate: number | null;
  logLoss: number | null;
  auc: number | null;
  ece: number | null;
  reliability: { bin: number; n: number; meanScore: number; rate: number }[];
  delay: { mean: number | null; p50: number | null; p90: number | null };
  /** Before the labels: expected log loss, AUC and purchase rate under the calibrated scores. */
  estimate: { logLoss: number | null; auc: number | null; purchaseRate: number | null };
}

function sum(rows: number[][], length: number): number[] {
  const out = new Array<number>(length).fill(0);
  for (const row of rows) for (let i = 0; i < length; i++) out[i]! += row[i] ?? 0;
  return out;
}

/**
 * ROC AUC from positives and negatives per ascending score bin: each positive beats the
 * negatives of lower bins and ties half of its own bin's (the rank-sum formula on binned scores).
 */
export function binnedAuc(positives: readonly number[], negatives: readonly number[]): number | null {
  const P = positives.reduce((s, x) => s + x, 0);
  const N = negatives.reduce((s, x) => s + x, 0);
  if (!(P > 0) || !(N > 0)) return null;
  let below = 0;
  let wins = 0;
  positives.forEach((p, i) => {
    const n = negatives[i] ?? 0;
    wins += p * (below + n / 2);
    below += n;
  });
  return wins / (P * N);
}

/** The delay quantile `q` from the bin counts: the upper bound of the bin it falls in. */
function delayQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((s, x) => s + x, 0);
  if (total === 0) return null;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i] as number;
    if (seen >= q * total) return DELAY_BOUNDS[i] ?? Infinity;
  }
  return Infinity;
}

function reliabilityOf(l: readonly Bucket['labels'][], labels: number) {
  const rel = {
    n: sum(
      l.map((s) => s.reliability.n),
      RELIABILITY_BINS,
    ),
    scoreSum: sum(
      l.map((s) => s.reliability.scoreSum),
      RELIABILITY_BINS,
    ),
    positives: sum(
      l.map((s) => s.reliability.positives),
      RELIABILITY_BINS,
    ),
  };
  const reliability = rel.n.flatMap((n, bin) =>
    n > 0
      ? [{ bin, n, meanScore: (rel.scoreSum[bin] as number) / n, rate: (rel.positives[bin] as number) / n }]
      : [],
  );
  const ece =
    labels > 0 ? reliability.reduce((s, r) => s + (r.n / labels) * Math.abs(r.meanScore - r.rate), 0) : null;
  return { reliability, ece };
}

const total = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/** What the calibrated scores expected of the window's predictions. */
function estimateOf(p: readonly Bucket['predictions'][]): WindowQuality['estimate'] {
  const bins = sum(
    p.map((s) => s.bins),
    SCORE_BINS,
  );
  const expectedPositives = sum(
    p.map((s) => s.expectedPositives),
    SCORE_BINS,
  );
  const predictions = total(p.map((s) => s.n));
  return {
    logLoss: ratio(total(p.map((s) => s.expectedLossSum)), predictions),
    auc: binnedAuc(
      expectedPositives,
      bins.map((n, i) => n - (expectedPositives[i] as number)),
    ),
    purchaseRate: ratio(total(expectedPositives), predictions),
  };
}

export function windowQuality(buckets: readonly Bucket[]): WindowQuality {
  const p = buckets.map((b) => b.predictions);
  const l = buckets.map((b) => b.labels);
  const predictions = total(p.map((s) => s.n));
  const labels = total(l.map((s) => s.n));
  const positives = total(l.map((s) => s.positives));
  const delays = sum(
    l.map((s) => s.delays),
    DELAY_BOUNDS.length + 1,
  );
  return {
    predictions,
    meanScore: ratio(total(p.map((s) => s.scoreSum)), predictions),
    labels,
    coverage: ratio(labels, predictions),
    positives,
    purchaseRate: ratio(positives, labels),
    predictedRate: ratio(total(l.map((s) => s.scoreSum)), labels),
    logLoss: ratio(total(l.map((s) => s.lossSum)), labels),
    auc: binnedAuc(
      sum(
        l.map((s) => s.positiveBins),
        SCORE_BINS,
      ),
      sum(
        l.map((s) => s.negativeBins),
        SCORE_BINS,
      ),
    ),
    ...reliabilityOf(l, labels),
    delay: {
      mean: ratio(total(l.map((s) => s.delaySum)), total(l.map((s) => s.delayCount))),
      p50: delayQuantile(delays, 0.5),
      p90: delayQuantile(delays, 0.9),
    },
    estimate: estimateOf(p),
  };
}
