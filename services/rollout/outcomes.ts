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
// An outcome counts once its click's attribution window has closed: a purchase labels its click
// at once, a click without one only when the window closes, so the freshest outcomes are nearly
// all purchases, and a look at them would see log loss and rates of a positives-only sample (a
// model that says yes to everything looks best). Outcomes wait by click-time bucket until a
// timeout label (of any prediction) shows the window closed past the bucket's end; the waiting
// ones are stored with the rest, so a restart counts each once.
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
import { EMPTY_ARM, merge, observe, unobserve, type ArmStats } from './sequential.js';

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

/** Click time per waiting bucket: outcomes of one bucket are counted together. */
export const MATURITY_BUCKET_MS = 5000;

/** Outcomes of one arm in one stratum and click-time bucket whose window has not closed yet. */
export interface PendingOutcomes {
  bucket: number;
  arm: Arm | 'baseline';
  stratum: string;
  stats: Record<keyof OutcomeValues, ArmStats>;
}

/** What of the traffic is the experiment's. */
export interface ExperimentScope {
  /** Clicks before this time (ms) are not the experiment's. */
  since: number;
  segments?: readonly string[];
  /** The heuristic baseline's share, when it is an arm. */
  baselineShare?: number;
  /** Click time per waiting bucket (MATURITY_BUCKET_MS). */
  bucketMs?: number;
}

/** The arms' summaries, kept up to date as labels and their corrections arrive in order. */
export class ExperimentOutcomes {
  private readonly summaries: Summaries;
  private readonly baseline: Record<keyof OutcomeValues, ArmStats> | null;
  private readonly scope: ExperimentScope;
  private readonly bucketMs: number;
  /** The newest click time whose window is known closed (a timeout label's click). */
  private closedUntil: number;
  private readonly pending = new Map<string, PendingOutcomes>();
  private readonly strata = new Map<string, Summaries>();
  private readonly bins: Record<Arm, ReliabilityBin[]>;

  constructor(
    private versions: Readonly<ArmVersions>,
    scope: number | ExperimentScope,
    restored?: Partial<OutcomeSummaries>,
  ) {
    this.scope = typeof scope === 'number' ? { since: scope } : scope;
    this.bucketMs = this.scope.bucketMs ?? MATURITY_BUCKET_MS;
    this.closedUntil = restored?.closedUntil ?? -Infinity;
    for (const p of restored?.pending ?? [])
      this.pending.set(pendingKey(p.bucket, p.arm, p.stratum), {
        ...p,
        stats: {
          purchaseRate: p.stats['purchaseRate'] ?? EMPTY_ARM,
          logLoss: p.stats['logLoss'] ?? EMPTY_ARM,
        },
      });
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

  /** Takes one labeled example; true when it changed the summaries or the waiting outcomes. */
  take(e: LabeledExample): boolean {
    const closed = this.close(e);
    if (e.clickTime < this.scope.since) return closed;
    if (!inSegments(e.segment, this.scope.segments ?? []) || e.split?.endsWith('.out')) return closed;
    const y = e.label >= 0.5 ? 1 : 0;
    if (this.baseline && this.isBaselineArm(e)) {
      const into = this.waiting(e, 'baseline', 'baseline') ?? this.baseline;
      if (e.revision > 0) apply(into, valuesOf(e.score as number, y === 1 ? 0 : 1), unobserve);
      apply(into, valuesOf(e.score as number, y), observe);
      return true;
    }
    const outcome = outcomeOf(e, this.versions);
    if (!outcome) return closed;
    const key = stratumOf(e, outcome.arm);
    const into = this.waiting(e, outcome.arm, key);
    const targets = into ? [into] : [this.summaries[outcome.arm], this.stratum(key)[outcome.arm]];
    for (const target of targets) {
      if (e.revision > 0) apply(target, valuesOf(e.score as number, y === 1 ? 0 : 1), unobserve);
      apply(target, outcome.values, observe);
    }
    this.calibrate(outcome.arm, e.score as number, outcome.values.purchaseRate, e.revision > 0);
    return true;
  }

  /** Outcomes still waiting for their window to close. */
  get waitingOutcomes(): number {
    let n = 0;
    for (const p of this.pending.values()) n += p.stats.purchaseRate.n;
    return n;
  }

  /** The summaries of an example's bucket while its window is open; null once it has closed. */
  private waiting(
    e: LabeledExample,
    arm: Arm | 'baseline',
    stratum: string,
  ): Record<keyof OutcomeValues, ArmStats> | null {
    const bucket = Math.floor(e.clickTime / this.bucketMs);
    if (this.isClosed(bucket)) return null;
    const key = pendingKey(bucket, arm, stratum);
    let entry = this.pending.get(key);
    if (!entry) {
      entry = { bucket, arm, stratum, stats: { purchaseRate: EMPTY_ARM, logLoss: EMPTY_ARM } };
      this.pending.set(key, entry);
    }
    return entry.stats;
  }

  private isClosed(bucket: number): boolean {
    return (bucket + 1) * this.bucketMs - 1 <= this.closedUntil;
  }

  /** A timeout label moves the closed window on: buckets wholly before it are counted. */
  private close(e: LabeledExample): boolean {
    if (e.labelSource !== 'timeout' || e.revision > 0 || e.clickTime <= this.closedUntil) return false;
    this.closedUntil = e.clickTime;
    let changed = false;
    for (const [key, p] of this.pending) {
      if (!this.isClosed(p.bucket)) continue;
      this.pending.delete(key);
      changed = true;
      if (p.arm === 'baseline') {
        if (this.baseline) mergeInto(this.baseline, p.stats);
        continue;
      }
      mergeInto(this.summaries[p.arm], p.stats);
      mergeInto(this.stratum(p.stratum)[p.arm], p.stats);
    }
    return changed;
  }

  private stratum(key: string): Summaries {
    let stratum = this.strata.get(key);
    if (!stratum) this.strata.set(key, (stratum = summariesOf(undefined)));
    return stratum;
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
      pending: [...this.pending.values()].map((p) => ({ ...p, stats: { ...p.stats } })),
      ...(Number.isFinite(this.closedUntil) ? { closedUntil: this.closedUntil } : {}),
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

function pendingKey(bucket: number, arm: string, stratum: string): string {
  return `${bucket}\u0000${arm}\u0000${stratum}`;
}

function mergeInto(
  into: Record<keyof OutcomeValues, ArmStats>,
  from: Record<keyof OutcomeValues, ArmStats>,
): void {
  into.purchaseRate = merge(into.purchaseRate, from.purchaseRate);
  into.logLoss = merge(into.logLoss, from.logLoss);
}
