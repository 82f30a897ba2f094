// An experiment's outcomes from fw.feedback.labeled (pure): each served prediction of the control
// or the candidate version, with its purchase (0/1) and the log loss of the score it served.
// Only outcome labels count (a purchase, or none in the window): human and uploaded labels are
// chosen for doubt or come from elsewhere, so they would bias the arms. Shadow predictions were
// never served. A correction (a higher revision of the same prediction) replaces its outcome,
// so the summaries are those of the latest labels, whatever order they were read in.
import type { LabeledExample } from '../common/contracts.js';
import type { Arm } from './experiment.js';
import { EMPTY_ARM, observe, unobserve, type ArmStats } from './sequential.js';

export interface OutcomeValues {
  purchaseRate: number;
  logLoss: number;
}

const SCORE_FLOOR = 1e-6;

/** The example as an outcome of one arm, or null when it does not count (see the file comment). */
export function outcomeOf(
  e: LabeledExample,
  versions: Readonly<Record<Arm, string>>,
): { arm: Arm; values: OutcomeValues } | null {
  if (e.labelSource !== 'outcome' && e.labelSource !== 'timeout') return null;
  if (e.arm === 'shadow' || e.score === null || e.modelVersion === null) return null;
  const arm =
    e.modelVersion === versions.candidate
      ? 'candidate'
      : e.modelVersion === versions.control
        ? 'control'
        : null;
  if (!arm) return null;
  const p = Math.min(1 - SCORE_FLOOR, Math.max(SCORE_FLOOR, e.score));
  const y = e.label >= 0.5 ? 1 : 0;
  return { arm, values: { purchaseRate: y, logLoss: -Math.log(y === 1 ? p : 1 - p) } };
}

/** The arms' summaries, kept up to date as labels and their corrections arrive. */
export class ExperimentOutcomes {
  private readonly latest = new Map<string, { arm: Arm; values: OutcomeValues; revision: number }>();
  private readonly summaries: Record<Arm, Record<keyof OutcomeValues, ArmStats>> = {
    control: { purchaseRate: EMPTY_ARM, logLoss: EMPTY_ARM },
    candidate: { purchaseRate: EMPTY_ARM, logLoss: EMPTY_ARM },
  };

  constructor(private readonly versions: Readonly<Record<Arm, string>>) {}

  /** Takes one labeled example; true when it changed the summaries. */
  take(e: LabeledExample): boolean {
    const outcome = outcomeOf(e, this.versions);
    if (!outcome) return false;
    const seen = this.latest.get(e.predictionId);
    if (seen && seen.revision >= e.revision) return false; // a duplicate, or older than what counts
    if (seen) this.apply(seen.arm, seen.values, unobserve);
    this.apply(outcome.arm, outcome.values, observe);
    this.latest.set(e.predictionId, { ...outcome, revision: e.revision });
    return true;
  }

  get stats(): Readonly<Record<Arm, Readonly<Record<keyof OutcomeValues, ArmStats>>>> {
    return this.summaries;
  }

  private apply(arm: Arm, values: OutcomeValues, change: (s: ArmStats, x: number) => ArmStats): void {
    const summary = this.summaries[arm];
    summary.purchaseRate = change(summary.purchaseRate, values.purchaseRate);
    summary.logLoss = change(summary.logLoss, values.logLoss);
  }
}
