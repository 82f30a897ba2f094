// The promotion gate: does a candidate model deserve traffic? Pure, over scores on two sets:
// the *recent holdout* (the newest labeled examples, never trained on) and the *reference set*
// (trusted labels: human-labeled and uploaded examples). Its rules, each a reason when broken:
//
// 1. Evidence: enough holdout examples, and enough of each label.
// 2. The constant: the candidate beats, significantly, a constant at the holdout's own label
//    rate. A model that cannot beat the best constant knows nothing about the recent clicks.
// 3. The baseline: the candidate beats the heuristic baseline significantly (paired test).
// 4. The champion: the candidate improves on the champion by a margin, significantly. Unless
//    the champion is *failing*: significantly worse than the constant on the recent holdout.
//    Then rules 2 and 3 are the bar (a candidate above the constant is above the champion).
// 5. Label rate: the recent rate is near the rate of the last accepted holdout. A flip of every
//    label moves the rate from p to 1 − p; an outage of the join moves it too.
// 6. Ranking: the champion does not rank the recent labels backwards (AUC under `flippedAuc`:
//    drift moves AUC towards 0.5, flipped labels past it) — unless it is failing. This rule
//    protects a good champion from a flipped holdout; it must not protect a champion that
//    learned from bad labels from honest ones, and a failing champion is one.
// 7. Trusted labels: the candidate is not significantly worse than the champion (or the
//    baseline) beyond a tolerance on the reference set: a flipped model trained on a flipped
//    stream is refused there whatever the stream says. Fewer than `minReference` trusted
//    examples are reported, not judged.
//
// Paired tests: the sets are shared, so per-example differences remove the examples' variance;
// weighted by the examples' weights (a soft human label is two weighted examples).
import { InternalError } from '../common/errors.js';
import { auc, liftAt, logLoss, type LabeledScore } from '../model/evaluation.js';

export interface GateConfig {
  /** Fewest examples in the recent holdout. */
  minHoldout: number;
  /** Fewest examples of each label in the recent holdout. */
  minPerLabel: number;
  /** Relative log-loss improvement over the champion required (0.002 = 0.2%). */
  minImprovement: number;
  /** Significance level of the one-sided paired test. */
  alpha: number;
  /** Relative log-loss worsening tolerated on the reference set (non-inferiority margin). */
  referenceTolerance: number;
  /** Fewest reference examples for the non-inferiority test. */
  minReference: number;
  /** Largest absolute difference between the recent and the reference label rate. */
  maxLabelRateShift: number;
  /**
   * The champion's AUC on the recent holdout below this means the recent labels contradict it
   * (it ranks them backwards): flipped labels, not drift, which moves AUC towards 0.5, not past it.
   */
  flippedAuc: number;
}

export const DEFAULT_GATE: GateConfig = {
  minHoldout: 500,
  minPerLabel: 20,
  minImprovement: 0.002,
  alpha: 0.05,
  referenceTolerance: 0.01,
  minReference: 30,
  maxLabelRateShift: 0.15,
  flippedAuc: 0.4,
};

/** What the gate knows from earlier decisions. */
export interface GateHistory {
  /** Label rate of the holdout the last accepted candidate was judged on. */
  acceptedLabelRate?: number | null;
}

export interface ScoredSet {
  labels: readonly number[];
  weights?: readonly number[];
  candidate: readonly number[];
  /** null when there is no champion yet (the first model only has to beat the baseline). */
  champion: readonly number[] | null;
  baseline: readonly number[];
}

export interface PairedTest {
  /** Mean of (other's loss − candidate's loss) per example; > 0 favours the candidate. */
  meanDifference: number;
  standardError: number;
  z: number;
  /** One-sided p-value of "the candidate is no better". */
  pValue: number;
}

export interface ModelMetrics {
  logLoss: number;
  auc: number;
  /** Label rate in its top 10% over the set's rate. */
  lift: number;
}

export interface SetMetrics {
  examples: number;
  positives: number;
  /** A constant at the set's own (weighted) label rate. */
  constant: ModelMetrics;
  candidate: ModelMetrics;
  champion: ModelMetrics | null;
  baseline: ModelMetrics;
}

export interface GateDecision {
  accept: boolean;
  /** Why it was refused (empty when accepted), each a sentence for the registry and the log. */
  reasons: string[];
  holdout: SetMetrics;
  reference: SetMetrics | null;
  versusChampion: PairedTest | null;
  versusBaseline: PairedTest;
  versusConstant: PairedTest;
  /** The champion is significantly worse than the constant on the holdout (rule 4). */
  championFailing: boolean;
}

const EPS = 1e-7;

function exampleLoss(score: number, label: number): number {
  const p = Math.min(1 - EPS, Math.max(EPS, score));
  return label ? -Math.log(p) : -Math.log(1 - p);
}

/** Standard normal CDF (Abramowitz–Stegun 7.1.26 through erf; |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/**
 * Paired test of the candidate's per-example log loss against another model's, the other's loss
 * multiplied by `otherScale` (1.01: "no more than 1% worse than the other").
 */
export function pairedTest(
  labels: readonly number[],
  candidate: readonly number[],
  other: readonly number[],
  otherScale = 1,
  weights?: readonly number[],
): PairedTest {
  // Weighted: a soft label is an example twice (label 1 with weight w·p, label 0 with w·(1 − p)),
  // and only the weights make the pair one probability. Each example is a unit of the variance
  // (the pair's halves as two: conservative, as their differences tend to cancel).
  const n = labels.length;
  let weightSum = 0;
  let sum = 0;
  const differences: number[] = [];
  for (let i = 0; i < n; i++) {
    const label = labels[i] as number;
    const d =
      otherScale * exampleLoss(other[i] as number, label) - exampleLoss(candidate[i] as number, label);
    const w = weights?.[i] ?? 1;
    differences.push(d);
    weightSum += w;
    sum += w * d;
  }
  const mean = weightSum > 0 ? sum / weightSum : 0;
  let spread = 0;
  for (let i = 0; i < n; i++) spread += ((weights?.[i] ?? 1) * ((differences[i] as number) - mean)) ** 2;
  // With unit weights: the sample variance over n, as an unweighted paired test.
  const variance = n > 1 && weightSum > 0 ? (n / (n - 1)) * (spread / (weightSum * weightSum)) : 0;
  const standardError = Math.sqrt(Math.max(variance, 0));
  const z = standardError > 0 ? mean / standardError : mean > 0 ? Infinity : mean < 0 ? -Infinity : 0;
  return { meanDifference: mean, standardError, z, pValue: 1 - normalCdf(z) };
}

/** The weighted label rate of a set, as a score for each of its examples. */
export function constantScores(set: Pick<ScoredSet, 'labels' | 'weights'>): number[] {
  let positives = 0;
  let total = 0;
  set.labels.forEach((label, i) => {
    const weight = set.weights?.[i] ?? 1;
    positives += weight * label;
    total += weight;
  });
  const rate = total > 0 ? positives / total : 0;
  return set.labels.map(() => rate);
}

function metricsOf(set: ScoredSet): SetMetrics {
  const scored = (scores: readonly number[]): LabeledScore[] =>
    scores.map((score, i) => ({ score, label: set.labels[i] as number, weight: set.weights?.[i] ?? 1 }));
  const of = (scores: readonly number[]): ModelMetrics => {
    const examples = scored(scores);
    return { logLoss: logLoss(examples), auc: auc(examples), lift: liftAt(examples) };
  };
  return {
    examples: set.labels.length,
    positives: set.labels.reduce((n, l) => n + (l ? 1 : 0), 0),
    constant: of(constantScores(set)),
    candidate: of(set.candidate),
    champion: set.champion ? of(set.champion) : null,
    baseline: of(set.baseline),
  };
}

function checkAligned(name: string, set: ScoredSet): void {
  const n = set.labels.length;
  for (const [what, scores] of [
    ['candidate', set.candidate],
    ['champion', set.champion],
    ['baseline', set.baseline],
  ] as const) {
    if (scores && scores.length !== n)
      throw new InternalError(`${name}: ${what} has ${scores.length} scores for ${n} labels`);
  }
}

const significantlyBetter = (test: PairedTest, alpha: number) =>
  test.meanDifference > 0 && test.pValue < alpha;

export function decidePromotion(
  holdout: ScoredSet,
  reference: ScoredSet | null,
  config: GateConfig = DEFAULT_GATE,
  history: GateHistory = {},
): GateDecision {
  checkAligned('holdout', holdout);
  if (reference) checkAligned('reference', reference);
  const reasons: string[] = [];
  const h = metricsOf(holdout);
  const bothLabels = h.positives > 0 && h.examples - h.positives > 0;

  // 1. Evidence.
  evidenceRule(h, config, reasons);

  // 2. The constant at the recent rate.
  const constant = constantScores(holdout);
  const versusConstant = pairedTest(holdout.labels, holdout.candidate, constant, 1, holdout.weights);
  if (!significantlyBetter(versusConstant, config.alpha))
    reasons.push(
      `does not beat a constant at the holdout's rate ${(h.positives / Math.max(1, h.examples)).toFixed(3)} (log loss ${h.candidate.logLoss.toFixed(4)} vs ${h.constant.logLoss.toFixed(4)}, p=${versusConstant.pValue.toFixed(3)})`,
    );

  // 3. The baseline.
  const versusBaseline = pairedTest(holdout.labels, holdout.candidate, holdout.baseline, 1, holdout.weights);
  if (!significantlyBetter(versusBaseline, config.alpha))
    reasons.push(
      `does not beat the baseline on the holdout (log loss ${h.candidate.logLoss.toFixed(4)} vs ${h.baseline.logLoss.toFixed(4)}, p=${versusBaseline.pValue.toFixed(3)})`,
    );

  // 4. The champion, unless it is failing.
  const { versusChampion, championFailing } = championRule(holdout, h, constant, bothLabels, config, reasons);

  // 5. The label rate.
  const recentRate = h.positives / Math.max(1, h.examples);
  const acceptedRate = history.acceptedLabelRate ?? null;
  if (acceptedRate !== null && Math.abs(recentRate - acceptedRate) > config.maxLabelRateShift)
    reasons.push(
      `the recent label rate ${recentRate.toFixed(3)} is far from the ${acceptedRate.toFixed(3)} of the last accepted holdout (a label flip or an outage?)`,
    );

  // 6. The champion's ranking, unless it is failing.
  if (h.champion && bothLabels && h.champion.auc < config.flippedAuc && !championFailing)
    reasons.push(
      `the champion ranks the recent labels backwards (AUC ${h.champion.auc.toFixed(3)} < ${config.flippedAuc}): flipped labels?`,
    );

  // 7. Trusted labels.
  const r = reference && reference.labels.length > 0 ? trustedRule(reference, config, reasons) : null;
  return {
    accept: reasons.length === 0,
    reasons,
    holdout: h,
    reference: r,
    versusChampion,
    versusBaseline,
    versusConstant,
    championFailing,
  };
}

/** Rule 4: better than the champion by enough, and significantly, unless the champion fails. */
function championRule(
  holdout: ScoredSet,
  h: SetMetrics,
  constant: readonly number[],
  bothLabels: boolean,
  config: GateConfig,
  reasons: string[],
): { versusChampion: PairedTest | null; championFailing: boolean } {
  if (!holdout.champion || !h.champion) return { versusChampion: null, championFailing: false };
  const championFailing =
    bothLabels &&
    significantlyBetter(
      pairedTest(holdout.labels, constant, holdout.champion, 1, holdout.weights),
      config.alpha,
    );
  const versusChampion = pairedTest(holdout.labels, holdout.candidate, holdout.champion, 1, holdout.weights);
  const relative = versusChampion.meanDifference / h.champion.logLoss;
  if (championFailing) {
    // Rules 2 and 3 are the bar: the champion does worse than the constant.
  } else if (relative < config.minImprovement)
    reasons.push(
      `improves the champion's holdout log loss by ${(relative * 100).toFixed(2)}%, less than the ${(config.minImprovement * 100).toFixed(2)}% required`,
    );
  else if (versusChampion.pValue >= config.alpha)
    reasons.push(
      `the improvement over the champion is not significant (p=${versusChampion.pValue.toFixed(3)}, needs < ${config.alpha})`,
    );
  return { versusChampion, championFailing };
}

/**
 * Rule 7: not worse than the champion (or the baseline) on trusted labels beyond the tolerance.
 * No label-rate check here: reviewed cases are chosen for doubt, so their rate is not the stream's.
 */
function trustedRule(reference: ScoredSet, config: GateConfig, reasons: string[]): SetMetrics {
  const r = metricsOf(reference);
  if (r.examples < config.minReference) return r;
  const other = reference.champion ?? reference.baseline;
  const otherName = reference.champion ? 'the champion' : 'the baseline';
  const tolerated = pairedTest(
    reference.labels,
    reference.candidate,
    other,
    1 + config.referenceTolerance,
    reference.weights,
  );
  // Worse beyond the tolerance, and not by chance: z far below zero.
  const pWorse = normalCdf(tolerated.z);
  if (tolerated.meanDifference < 0 && pWorse < config.alpha) {
    const otherLoss = (r.champion ?? r.baseline).logLoss;
    const worse = (r.candidate.logLoss - otherLoss) / otherLoss;
    reasons.push(
      `is ${(worse * 100).toFixed(1)}% worse than ${otherName} on the trusted reference set of ${r.examples} (tolerance ${(config.referenceTolerance * 100).toFixed(1)}%, p=${pWorse.toFixed(3)})`,
    );
  }
  return r;
}

/** Rule 1: enough examples, and enough of each label. */
function evidenceRule(h: SetMetrics, config: GateConfig, reasons: string[]): void {
  const negatives = h.examples - h.positives;
  if (h.examples < config.minHoldout)
    reasons.push(`the holdout has ${h.examples} examples, fewer than ${config.minHoldout}`);
  if (h.positives < config.minPerLabel || negatives < config.minPerLabel)
    reasons.push(
      `the holdout has ${h.positives} positive and ${negatives} negative examples; each label needs ${config.minPerLabel}`,
    );
}
