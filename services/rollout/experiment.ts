// An experiment's decision core (pure): a candidate against the control (the champion) on live
// outcomes, ramped through traffic steps, decided by always-valid intervals (sequential.ts), so
// it may be looked at after every outcome. Given the outcomes so far and the clock it says what
// to do: hold, advance to the next step, promote, roll back, or end inconclusive; the driver
// carries it out (routing in fw.models.updates) and records it with the numbers that drove it.
//
// Rules, in order:
// 1. Guardrail, at any step and while paused: a metric significantly worse for the candidate
//    (its interval excludes zero, or the metric's harm margin, on the harmful side) rolls it
//    back at once.
// 2. A step ends when the candidate has `minOutcomes` outcomes in it and `minStepMs` passed;
//    then the ramp advances (the candidate's share is the step's: a harmful candidate is caught
//    at the small shares before it reaches the large ones).
// 3. At the last step, the primary metric significantly better (and no guardrail harm) promotes.
// 4. `budget` candidate outcomes without a decision ends the experiment inconclusive.
// Each metric's interval is at level alpha / (number of metrics), so the chance of any false
// rollback, and of a false promotion, stays at most alpha however often it is looked at.
import {
  nextState,
  type ExperimentState,
  type MetricSpec,
  type RampConfig,
} from '../registry/experiments.js';
import {
  EMPTY_ARM,
  differenceInterval,
  merge,
  stratifiedInterval,
  type ArmStats,
  type Interval,
} from './sequential.js';

export type { MetricSpec, RampConfig, ExperimentState };
export { EXPERIMENT_TRANSITIONS, nextState, type ExperimentEvent } from '../registry/experiments.js';

export type Arm = 'control' | 'candidate';

export interface ExperimentProgress {
  state: ExperimentState;
  step: number;
  stepStartedAt: number;
  /** Candidate outcomes in the current step. */
  stepOutcomes: number;
  /** Per arm and metric, since the start. */
  stats: Record<Arm, Record<string, ArmStats>>;
  /**
   * The same by stratum (the candidate's traffic share that served the outcome): the intervals
   * compare the arms within strata (sequential.ts, stratifiedInterval). Absent, one stratum.
   */
  strata?: Readonly<Record<string, Record<Arm, Record<string, ArmStats>>>>;
}

export function startProgress(config: RampConfig, now: number): ExperimentProgress {
  const empty = () => Object.fromEntries(Object.keys(config.metrics).map((m) => [m, EMPTY_ARM]));
  return {
    state: 'running',
    step: 0,
    stepStartedAt: now,
    stepOutcomes: 0,
    stats: { control: empty(), candidate: empty() },
  };
}

/**
 * Outcomes of an arm summarised per metric (every metric over the same outcomes), served at the
 * traffic share `stratum` if given (then the intervals compare arms within strata).
 */
export function recordBatch(
  progress: ExperimentProgress,
  arm: Arm,
  batch: Readonly<Record<string, ArmStats>>,
  stratum?: string,
): ExperimentProgress {
  // Only the experiment's metrics (those its progress started with) are kept.
  const metrics = Object.keys(progress.stats[arm]);
  const merged = (into: Record<string, ArmStats>) => {
    const next = { ...into };
    for (const metric of metrics) {
      const summary = batch[metric];
      if (summary) next[metric] = merge(next[metric] ?? EMPTY_ARM, summary);
    }
    return next;
  };
  const stats = { ...progress.stats, [arm]: merged(progress.stats[arm]) };
  const outcomes = Object.values(batch)[0]?.n ?? 0;
  let strata = progress.strata;
  if (stratum !== undefined) {
    const current = strata?.[stratum] ?? { control: {}, candidate: {} };
    strata = { ...strata, [stratum]: { ...current, [arm]: merged(current[arm]) } };
  }
  return {
    ...progress,
    stats,
    ...(strata ? { strata } : {}),
    stepOutcomes: progress.stepOutcomes + (arm === 'candidate' ? outcomes : 0),
  };
}

export type Action = 'hold' | 'advance' | 'promote' | 'rollback' | 'inconclusive';

export interface Decision {
  action: Action;
  reasons: string[];
  /** The candidate's share after the decision. */
  share: number;
  /** Per metric: candidate − control, with its always-valid interval. */
  intervals: Record<string, Interval>;
}

/** What to do now (see the file comment). */
export function decide(config: RampConfig, progress: ExperimentProgress, now: number): Decision {
  const share = config.steps[progress.step] ?? 0;
  const intervals = intervalsOf(config, progress);
  const hold = (reasons: string[]): Decision => ({ action: 'hold', reasons, share, intervals });
  if (progress.state !== 'running' && progress.state !== 'paused')
    return hold([`the experiment is ${progress.state}`]);
  // The normal approximation needs data in both arms before an interval may decide anything.
  const thin =
    Math.min(armOutcomes(progress, 'control'), armOutcomes(progress, 'candidate')) < config.minOutcomes;
  const harm = thin ? [] : harmed(config, intervals);
  if (harm.length > 0) return { action: 'rollback', reasons: harm, share: 0, intervals };
  if (progress.state === 'paused') return hold(['paused']);
  const candidateOutcomes = armOutcomes(progress, 'candidate');
  const last = progress.step === config.steps.length - 1;
  const primary = thin ? [] : improved(config, intervals);
  if (last && primary.length > 0) return { action: 'promote', reasons: primary, share: 1, intervals };
  if (candidateOutcomes >= config.budget)
    return {
      action: 'inconclusive',
      reasons: [`${candidateOutcomes} candidate outcomes (the budget) without a significant difference`],
      share: 0,
      intervals,
    };
  if (progress.stepOutcomes < config.minOutcomes)
    return hold([`step ${progress.step + 1}: ${progress.stepOutcomes} of ${config.minOutcomes} outcomes`]);
  if (now - progress.stepStartedAt < config.minStepMs)
    return hold([`step ${progress.step + 1}: its minimum duration has not passed`]);
  if (last) return hold(['last step: waiting for a significant difference or the budget']);
  const next = config.steps[progress.step + 1] as number;
  return {
    action: 'advance',
    reasons: [`step ${progress.step + 1} passed without harm`],
    share: next,
    intervals,
  };
}

/** The progress after a decision was carried out. */
export function apply(progress: ExperimentProgress, decision: Decision, now: number): ExperimentProgress {
  if (decision.action === 'hold') return progress;
  const state = nextState(progress.state, decision.action) ?? progress.state;
  if (decision.action !== 'advance') return { ...progress, state };
  return { ...progress, state, step: progress.step + 1, stepStartedAt: now, stepOutcomes: 0 };
}

/**
 * The control against the heuristic baseline arm, per metric: control − baseline with its
 * always-valid interval at the experiment's level. Shown, not decided on: the baseline is the
 * floor every model must stay above.
 */
export function versusBaseline(
  config: RampConfig,
  control: Readonly<Record<string, ArmStats>>,
  baseline: Readonly<Record<string, ArmStats>>,
): Record<string, Interval> {
  const alpha = config.alpha / Object.keys(config.metrics).length;
  return Object.fromEntries(
    Object.entries(config.metrics).map(([metric, spec]) => [
      metric,
      differenceInterval(baseline[metric] ?? EMPTY_ARM, control[metric] ?? EMPTY_ARM, {
        alpha,
        tau: spec.tau,
      }),
    ]),
  );
}

/** Outcomes of the arm (every outcome carries every metric). */
function armOutcomes(progress: ExperimentProgress, arm: Arm): number {
  return Object.values(progress.stats[arm])[0]?.n ?? 0;
}

function intervalsOf(config: RampConfig, progress: ExperimentProgress): Record<string, Interval> {
  const alpha = config.alpha / Object.keys(config.metrics).length;
  const intervals: Record<string, Interval> = {};
  for (const [metric, spec] of Object.entries(config.metrics)) {
    const control = progress.stats.control[metric] ?? EMPTY_ARM;
    const candidate = progress.stats.candidate[metric] ?? EMPTY_ARM;
    const settings = { alpha, tau: spec.tau };
    const strata = Object.values(progress.strata ?? {});
    intervals[metric] =
      strata.length > 0
        ? stratifiedInterval(
            strata.map((s) => ({
              control: s.control[metric] ?? EMPTY_ARM,
              candidate: s.candidate[metric] ?? EMPTY_ARM,
            })),
            settings,
          )
        : differenceInterval(control, candidate, settings);
  }
  return intervals;
}

/** Metrics whose interval lies wholly on the candidate's worse side. */
function harmed(config: RampConfig, intervals: Record<string, Interval>): string[] {
  const reasons: string[] = [];
  for (const [metric, spec] of Object.entries(config.metrics)) {
    const i = intervals[metric] as Interval;
    const margin = spec.harmMargin ?? 0;
    const worse = spec.better === 'higher' ? i.upper < -margin : i.lower > margin;
    if (worse)
      reasons.push(
        `${metric} is significantly worse${margin > 0 ? ` by more than ${margin}` : ''}: ${describe(i)}`,
      );
  }
  return reasons;
}

/**
 * The reasons to promote: every primary metric significantly better and every guardrail with a
 * tolerance shown within it; empty when any of that is not yet so.
 */
function improved(config: RampConfig, intervals: Record<string, Interval>): string[] {
  const reasons: string[] = [];
  for (const [metric, spec] of Object.entries(config.metrics)) {
    const i = intervals[metric] as Interval;
    const sign = spec.better === 'higher' ? 1 : -1;
    // On the candidate-better scale: positive is better.
    const worst = Math.min(sign * i.lower, sign * i.upper);
    if (spec.role === 'primary') {
      if (!(worst > 0)) return [];
      reasons.push(`${metric} is significantly better: ${describe(i)}`);
    } else if (spec.tolerance !== undefined) {
      if (!(worst > -spec.tolerance)) return [];
      reasons.push(`${metric} is within its tolerance ${spec.tolerance}: ${describe(i)}`);
    }
  }
  return reasons;
}

function describe(i: Interval): string {
  return `candidate − control ${i.estimate.toFixed(5)} in [${i.lower.toFixed(5)}, ${i.upper.toFixed(5)}]`;
}
