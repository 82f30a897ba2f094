// Quality of probabilistic predictions of a binary label: log loss, ROC AUC, calibration.
// Pure functions over arrays; every model and the baseline are judged by the same code.

const EPS = 1e-7;

export interface LabeledScore {
  score: number;
  label: number;
  weight?: number;
}

export function logLoss(examples: readonly LabeledScore[]): number {
  let loss = 0;
  let total = 0;
  for (const { score, label, weight = 1 } of examples) {
    const p = Math.min(1 - EPS, Math.max(EPS, score));
    loss -= weight * (label ? Math.log(p) : Math.log(1 - p));
    total += weight;
  }
  return total > 0 ? loss / total : Number.NaN;
}

/** ROC AUC by the rank-sum (Mann-Whitney) formula; tied scores share their mean rank. */
export function auc(examples: readonly LabeledScore[]): number {
  const sorted = [...examples].sort((a, b) => a.score - b.score);
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j < sorted.length && (sorted[j] as LabeledScore).score === (sorted[i] as LabeledScore).score) j++;
    const meanRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if ((sorted[k] as LabeledScore).label) {
        positives++;
        rankSum += meanRank;
      }
    }
    i = j;
  }
  const negatives = sorted.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Expected calibration error over equal-width score bins, weighted by bin size. */
export function calibrationError(examples: readonly LabeledScore[], bins = 10): number {
  const count = new Array<number>(bins).fill(0);
  const scoreSum = new Array<number>(bins).fill(0);
  const labelSum = new Array<number>(bins).fill(0);
  for (const { score, label } of examples) {
    const b = Math.min(bins - 1, Math.max(0, Math.floor(score * bins)));
    count[b]! += 1;
    scoreSum[b]! += score;
    labelSum[b]! += label;
  }
  let error = 0;
  for (let b = 0; b < bins; b++) {
    const n = count[b] as number;
    if (n > 0)
      error += (n / examples.length) * Math.abs((scoreSum[b] as number) / n - (labelSum[b] as number) / n);
  }
  return error;
}

/**
 * Expected purchase-rate lift of acting on the model: the label rate among the top `share` of
 * examples by score over the label rate of all (1 = no better than picking at random).
 */
export function liftAt(examples: readonly LabeledScore[], share = 0.1): number {
  const total = examples.reduce((s, e) => s + (e.weight ?? 1), 0);
  const positives = examples.reduce((s, e) => s + (e.label ? (e.weight ?? 1) : 0), 0);
  if (total === 0 || positives === 0) return Number.NaN;
  const top = [...examples].sort((a, b) => b.score - a.score);
  const wanted = total * share;
  let weight = 0;
  let hits = 0;
  for (const e of top) {
    if (weight >= wanted) break;
    const w = Math.min(e.weight ?? 1, wanted - weight);
    weight += w;
    if (e.label) hits += w;
  }
  return hits / weight / (positives / total);
}

export interface Evaluation {
  examples: number;
  positives: number;
  logLoss: number;
  auc: number;
  calibrationError: number;
  /** Label rate in the top 10% by score over the overall rate. */
  lift: number;
  meanScore: number;
  positiveRate: number;
}

export function evaluate(examples: readonly LabeledScore[]): Evaluation {
  const positives = examples.reduce((n, e) => n + (e.label ? 1 : 0), 0);
  return {
    examples: examples.length,
    positives,
    logLoss: logLoss(examples),
    auc: auc(examples),
    calibrationError: calibrationError(examples),
    lift: liftAt(examples),
    meanScore: examples.reduce((s, e) => s + e.score, 0) / Math.max(1, examples.length),
    positiveRate: positives / Math.max(1, examples.length),
  };
}
