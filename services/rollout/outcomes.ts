// An experiment's outcomes from fw.feedback.labeled (pure): each served prediction of the control
// or the candidate version, with its purchase (0/1) and the log loss of the score it served.
// Only outcome labels count (a purchase, or none in the window): human and uploaded labels are
// chosen for doubt or come from elsewhere, so they would bias the arms. Shadow predictions were
// never served: they count only as a shadow experiment's candidate, scored on the very clicks the
// control served. Clicks before the experiment began are not its outcomes.
//
// A correction (revision n > 0) flips the label of revision n − 1 of the same prediction, which
// the joiner published before it, exactly once, in the same partition (a prediction's revisions
// share its user's key): so the correction takes the old outcome out and puts the new one in
// without remembering any prediction, and the summaries stay a few numbers per arm.
//
// Outcomes are summed in all and by stratum: the traffic split that served the prediction (its
// `split`, LabeledExample v4), so the decisions compare arms served under the same shares, over
// the same time (sequential.ts, stratifiedInterval); before v4, the candidate's share (its
// propensity, or one minus it for the control). An experiment restricted to segments counts
// only outcomes in them. The heuristic baseline's arm, when it has a share, is summed apart: it
// is shown against the control, not decided on.
import type { LabeledExample } from '../common/contracts.js';
import { inSegments } from '../common/routing.js';
import {
  RELIABILITY_BINS,
  type ArmSummaries,
  type OutcomeSummaries,
  type ReliabilityBin,
} from '../registry/experiments.js';
import type { Arm } from './experiment.js';
import { EMPTY_ARM, observe, unobserve, type ArmStats } from './sequential.js';

export interface OutcomeValues {
  purchaseRate: number;
  logLoss: number;
}
export const OUTCOME_METRICS: readonly (keyof OutcomeValues)[] = ['purchaseRate', 'logLoss'];

const SCORE_FLOOR = 1e-6;

/** The candidate's version and the control's (more than one when the serving baseline was refreshed). */
export interface ArmVersions {
  control: string | readonly string[];
  candidate: string;
  /** The candidate scores as the shadow: its shadow predictions are its arm (never served). */
  shadow?: boolean;
}

/** The example as an outcome of one arm, or null when it does not count (see the file comment). */
export function outcomeOf(
  e: LabeledExample,
  versions: Readonly<ArmVersions>,
): { arm: Arm; values: OutcomeValues } | null {
  if (e.labelSource !== 'outcome' && e.labelSource !== 'timeout') return null;
  if (e.score === null || e.modelVersion === null) return null;
  const controls = typeof versions.control === 'string' ? [versions.control] : versions.control;
  // A shadow's predictions were never served: they count only as a shadow experiment's candidate.
  const shadowed = e.arm === 'shadow';
  const arm =
    e.modelVersion === versions.candidate && shadowed === (versions.shadow ?? false)
      ? 'candidate'
      : !shadowed && controls.includes(e.modelVersion)
        ? 'control'
        : null;
  if (!arm) return null;
  return { arm, values: valuesOf(e.score, e.label >= 0.5 ? 1 : 0) };
}

function valuesOf(score: number, y: 0 | 1): OutcomeValues {
  const p = Math.min(1 - SCORE_FLOOR, Math.max(SCORE_FLOOR, score));
  return { purchaseRate: y, logLoss: -Math.log(y === 1 ? p : 1 - p) };
}

type Summaries = Record<Arm, Record<keyof OutcomeValues, ArmStats>>;

/** The split that served the example (before LabeledExample v4, the candidate's share): its stratum. */
export function stratumOf(e: LabeledExample, arm: Arm): string {
  if (e.split) return e.split;
  const share = arm === 'candidate' ? e.propensity : 1 - e.propensity;
  return String(Math.round(share * 1e4) / 1e4);
}

/** What of the traffic is the experiment's. */
export interface ExperimentScope {
  /** Clicks before this time (ms) are not the experiment's. */
  since: number;
  segments?: readonly string[];
  /** The heuristic baseline's share, when it is an arm. */
  baselineShare?: number;
}

/** The arms' summaries, kept up to date as labels and their corrections arrive in order. */
export class ExperimentOutcomes {
  private readonly summaries: Summaries;
  private readonly baseline: Record<keyof OutcomeValues, ArmStats> | null;
  private readonly scope: ExperimentScope;
  private readonly strata = new Map<string, Summaries>();
  private readonly bins: Record<Arm, ReliabilityBin[]>;

  constructor(
    private versions: Readonly<ArmVersions>,
    scope: number | ExperimentScope,
    restored?: Partial<OutcomeSummaries>,
  ) {
    this.scope = typeof scope === 'number' ? { since: scope } : scope;
    this.summaries = summariesOf(restored?.stats);
    this.baseline = this.scope.baselineShare
      ? {
          purchaseRate: restored?.baseline?.['purchaseRate'] ?? EMPTY_ARM,
          logLoss: restored?.baseline?.['logLoss'] ?? EMPTY_ARM,
        }
      : null;
    for (const [key, summaries] of Object.entries(restored?.strata ?? {}))
      this.strata.set(key, summariesOf(summaries));
    const bins = (arm: Arm) =>
      restored?.calibration?.[arm].map((b) => ({ ...b })) ??
      Array.from({ length: RELIABILITY_BINS }, () => ({ n: 0, score: 0, label: 0 }));
    this.bins = { control: bins('control'), candidate: bins('candidate') };
  }

  /** The control's versions from now on (a refreshed baseline joins the control). */
  setControls(controls: readonly string[]): void {
    this.versions = { ...this.versions, control: controls };
  }

  /** Takes one labeled example; true when it changed the summaries. */
  take(e: LabeledExample): boolean {
    if (e.clickTime < this.scope.since) return false;
    if (!inSegments(e.segment, this.scope.segments ?? []) || e.split?.endsWith('.out')) return false;
    if (this.baseline && this.isBaselineArm(e)) {
      const y = e.label >= 0.5 ? 1 : 0;
      if (e.revision > 0) apply(this.baseline, valuesOf(e.score as number, y === 1 ? 0 : 1), unobserve);
      apply(this.baseline, valuesOf(e.score as number, y), observe);
      return true;
    }
    const outcome = outcomeOf(e, this.versions);
    if (!outcome) return false;
    const key = stratumOf(e, outcome.arm);
    let stratum = this.strata.get(key);
    if (!stratum) this.strata.set(key, (stratum = summariesOf(undefined)));
    if (e.revision > 0) {
      const before = valuesOf(e.score as number, outcome.values.purchaseRate === 1 ? 0 : 1);
      apply(this.summaries[outcome.arm], before, unobserve);
      apply(stratum[outcome.arm], before, unobserve);
    }
    apply(this.summaries[outcome.arm], outcome.values, observe);
    apply(stratum[outcome.arm], outcome.values, observe);
    this.calibrate(outcome.arm, e.score as number, outcome.values.purchaseRate, e.revision > 0);
    return true;
  }

  get stats(): Readonly<Record<Arm, Readonly<Record<keyof OutcomeValues, ArmStats>>>> {
    return this.summaries;
  }

  /**
   * The baseline arm's served outcome: its share's propensity (a champion that failed to load
   * also falls back to the baseline, at the champion's propensity: not this arm).
   */
  private isBaselineArm(e: LabeledExample): boolean {
    if (e.labelSource !== 'outcome' && e.labelSource !== 'timeout') return false;
    if (e.arm !== 'baseline' || e.score === null) return false;
    return Math.abs(e.propensity - (this.scope.baselineShare ?? 0)) < 1e-9;
  }

  /** A copy to store (the experiment's record). */
  snapshot(): OutcomeSummaries {
    return {
      ...(this.baseline ? { baseline: { ...this.baseline } } : {}),
      stats: copyOf(this.summaries),
      strata: Object.fromEntries([...this.strata].map(([key, s]) => [key, copyOf(s)])),
      calibration: {
        control: this.bins.control.map((b) => ({ ...b })),
        candidate: this.bins.candidate.map((b) => ({ ...b })),
      },
    };
  }

  /** The served score in its reliability bin; a correction only flips the outcome it counted. */
  private calibrate(arm: Arm, score: number, y: number, correction: boolean): void {
    const bin =
      this.bins[arm][Math.min(RELIABILITY_BINS - 1, Math.max(0, Math.floor(score * RELIABILITY_BINS)))];
    if (!bin) return;
    if (correction) {
      bin.label += y === 1 ? 1 : -1;
      return;
    }
    bin.n++;
    bin.score += score;
    bin.label += y;
  }
}

function summariesOf(restored: ArmSummaries | undefined): Summaries {
  const arm = (name: Arm) => ({
    purchaseRate: restored?.[name]['purchaseRate'] ?? EMPTY_ARM,
    logLoss: restored?.[name]['logLoss'] ?? EMPTY_ARM,
  });
  return { control: arm('control'), candidate: arm('candidate') };
}

function copyOf(s: Summaries): ArmSummaries {
  return { control: { ...s.control }, candidate: { ...s.candidate } };
}

function apply(
  summary: Record<keyof OutcomeValues, ArmStats>,
  values: OutcomeValues,
  change: (s: ArmStats, x: number) => ArmStats,
): void {
  summary.purchaseRate = change(summary.purchaseRate, values.purchaseRate);
  summary.logLoss = change(summary.logLoss, values.logLoss);
}
