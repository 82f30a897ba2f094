// Off-policy estimate of a version's purchase rate from logged traffic (pure): what the rate
// would be if the version served every user, from the outcomes of the users it served at a share
// (a canary step, a challenger's weight). Each outcome is weighed by the inverse of its
// propensity (the probability its arm was chosen for that user), self-normalised (SNIPS: the
// weights' sum divides, not the count), with a delta-method interval. Corrections replace the
// label they correct; human and uploaded labels, and shadow predictions, do not count.
import type { LabeledExample } from '../common/contracts.js';

export interface RateEstimate {
  version: string;
  /** Outcomes of the version's served predictions. */
  outcomes: number;
  /** Their effective number under the weights (Kish): fewer when propensities differ. */
  effectiveOutcomes: number;
  estimate: number;
  lower: number;
  upper: number;
  /** Propensities seen, lowest and highest. */
  propensity: { min: number; max: number };
}

const Z_95 = 1.959963984540054;

/** The latest revision of each served outcome label of `version`. */
export function servedOutcomes(examples: Iterable<LabeledExample>, version: string): LabeledExample[] {
  const latest = new Map<string, LabeledExample>();
  for (const e of examples) {
    if (e.modelVersion !== version || e.arm === 'shadow') continue;
    if (e.labelSource !== 'outcome' && e.labelSource !== 'timeout') continue;
    const held = latest.get(e.predictionId);
    if (!held || e.revision > held.revision) latest.set(e.predictionId, e);
  }
  return [...latest.values()];
}

/** The self-normalised inverse-propensity estimate of the version's rate, at 95% (null: no data). */
export function estimateRate(examples: Iterable<LabeledExample>, version: string): RateEstimate | null {
  const served = servedOutcomes(examples, version);
  if (served.length === 0) return null;
  let weights = 0;
  let weighted = 0;
  let squares = 0;
  let min = 1;
  let max = 0;
  for (const e of served) {
    const w = 1 / e.propensity;
    weights += w;
    weighted += w * (e.label >= 0.5 ? 1 : 0);
    squares += w * w;
    min = Math.min(min, e.propensity);
    max = Math.max(max, e.propensity);
  }
  const estimate = weighted / weights;
  let variance = 0;
  for (const e of served) {
    const w = 1 / e.propensity;
    variance += w * w * ((e.label >= 0.5 ? 1 : 0) - estimate) ** 2;
  }
  const half = Z_95 * Math.sqrt(variance / (weights * weights));
  return {
    version,
    outcomes: served.length,
    effectiveOutcomes: (weights * weights) / squares,
    estimate,
    lower: Math.max(0, estimate - half),
    upper: Math.min(1, estimate + half),
    propensity: { min, max },
  };
}
