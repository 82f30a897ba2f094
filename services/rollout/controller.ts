// The rollout controller's look at its experiments (pure): given the registry's experiments, the
// champion, the arms' summaries and the clock, it decides each active experiment (experiment.ts),
// ends one whose control is no longer the champion, starts the oldest queued one when none is
// active, and returns the experiments whose routing must follow. The driver (service.ts) holds
// the experiments lock around it and moves the aliases.
import {
  ACTIVE_STATES,
  EMPTY_SUMMARY,
  addExperiment,
  appendTimeline,
  endSiblings,
  shadowConfig,
  groupOf,
  intervalRecords,
  type ArmSummaries,
  type ExperimentRecord,
  type ExperimentsFile,
  type OutcomeSummaries,
} from '../registry/experiments.js';
import { apply, decide, versusBaseline, type Decision, type ExperimentProgress } from './experiment.js';

export const CONTROLLER_ACTOR = 'rollout';
/** Who the trainer's experiments are created by (ExperimentStore.queue supersedes among them). */
const TRAINER_ACTOR = 'trainer';

export interface TickInput {
  champion: string | null;
  /** The challenger alias now if someone other than the controller placed it: it blocks starts. */
  challenger?: string | null;
  /**
   * Whether champion `to` continues control `from`: a refresh of the serving heuristic baseline
   * (the same model, more counts) keeps the experiment; any other change of champion ends it.
   */
  continues?: (from: string, to: string) => boolean;
  now: number;
  /** The controller's summaries of the experiments it follows, by id. */
  summaries: ReadonlyMap<string, OutcomeSummaries>;
}

export interface TickResult {
  /** Experiments whose state or share changed: their routing must follow. */
  changed: ExperimentRecord[];
  /** Decisions other than hold, for the log and the metrics. */
  decisions: { experiment: ExperimentRecord; decision: Decision }[];
  started: ExperimentRecord | null;
  /** Experiments queued by the look: the canary a passed shadow earned. */
  queued: ExperimentRecord[];
  /** Why a queued experiment could not start, if one is waiting. */
  waiting: string | null;
}

export function tick(file: ExperimentsFile, input: TickInput): TickResult {
  const result: TickResult = { changed: [], decisions: [], started: null, waiting: null, queued: [] };
  for (const experiment of file.experiments) {
    if (!ACTIVE_STATES.includes(experiment.state)) continue;
    const summaries = input.summaries.get(experiment.id);
    if (summaries) {
      experiment.stats = summaries.stats;
      experiment.strata = summaries.strata;
      if (summaries.calibration) experiment.calibration = summaries.calibration;
      if (summaries.baseline) experiment.baseline = summaries.baseline;
      if (summaries.pending) experiment.pending = summaries.pending;
      if (summaries.closedUntil !== undefined) experiment.closedUntil = summaries.closedUntil;
    }
    if (
      experiment.control !== null &&
      input.champion !== null &&
      experiment.control !== input.champion &&
      input.continues?.(experiment.control, input.champion)
    ) {
      experiment.controls = [...(experiment.controls ?? [experiment.control]), input.champion];
      experiment.control = input.champion;
    }
    if (experiment.control !== input.champion) {
      end(experiment, 'aborted', input.now, [
        `the champion moved from ${experiment.control} to ${input.champion ?? 'none'}: the arms no longer compare`,
      ]);
      result.changed.push(experiment);
      continue;
    }
    const decision = look(experiment, input.now);
    if (decision.action === 'hold') continue;
    result.changed.push(experiment);
    result.decisions.push({ experiment, decision });
    if (decision.action === 'promote') result.changed.push(...endSiblings(file, experiment, input.now));
    if (decision.action === 'promote' && experiment.mode === 'shadow')
      result.queued.push(canaryOf(file, experiment, input.now));
  }
  // A promotion moves the champion only once routed: the queue starts against it next look.
  const promoted = result.decisions.some((d) => d.decision.action === 'promote');
  if (!promoted && !file.experiments.some((e) => ACTIVE_STATES.includes(e.state))) {
    result.waiting = waitingReason(file, input);
    result.started = result.waiting === null ? startNext(file, input) : null;
    if (result.started) {
      // A group starts whole: its other queued members with it, against the same champion.
      for (const member of groupOf(file, result.started))
        if (member !== result.started && member.state === 'queued') {
          begin(member, input);
          result.changed.push(member);
        }
      result.changed.push(result.started);
    }
  }
  return result;
}

/** Why no queued experiment may start now (null: one may, or none is queued). */
function waitingReason(file: ExperimentsFile, input: TickInput): string | null {
  if (!file.experiments.some((e) => e.state === 'queued')) return null;
  if (input.champion === null)
    return 'no champion to compare with (the first model becomes champion directly)';
  if (input.challenger)
    return `the challenger alias is held by ${input.challenger} outside any experiment: an operator's, not overwritten (clear it to start the queue)`;
  return null;
}

/** Decides the experiment now, records the look on its timeline and the decision if any. */
function look(experiment: ExperimentRecord, now: number): Decision {
  const progress = progressOf(experiment);
  const shadow = experiment.mode === 'shadow';
  const decided = decide(shadow ? shadowConfig(experiment.config) : experiment.config, progress, now);
  // A shadow serves no one, whatever it earns.
  const decision = shadow ? { ...decided, share: 0 } : decided;
  const after = apply(progress, decision, now);
  experiment.timeline = appendTimeline(experiment.timeline, {
    at: now,
    share: decision.share,
    arms: {
      control: armPoint(experiment.stats.control),
      candidate: armPoint(experiment.stats.candidate),
      ...(experiment.baseline ? { baseline: armPoint(experiment.baseline) } : {}),
    },
    intervals: intervalRecords(decision.intervals),
    ...(experiment.baseline
      ? {
          baselineIntervals: intervalRecords(
            versusBaseline(experiment.config, experiment.stats.control, experiment.baseline),
          ),
        }
      : {}),
  });
  if (decision.action === 'hold') return decision;
  const candidateOutcomes = countOf(experiment.stats.candidate);
  experiment.decisions.push({
    at: now,
    action: decision.action,
    actor: CONTROLLER_ACTOR,
    share: decision.share,
    reasons: decision.reasons,
    intervals: intervalRecords(decision.intervals),
    outcomes: { control: countOf(experiment.stats.control), candidate: candidateOutcomes },
  });
  if (decision.action === 'advance') {
    experiment.step = after.step;
    experiment.stepStartedAt = now;
    experiment.stepStartOutcomes = candidateOutcomes;
  } else {
    end(experiment, after.state, now, decision.reasons);
  }
  return decision;
}

/** The canary a shadow earned: its candidate queued on the ramp its creator gave. */
function canaryOf(file: ExperimentsFile, shadow: ExperimentRecord, now: number): ExperimentRecord {
  return addExperiment(file, {
    candidate: shadow.candidate,
    config: shadow.config,
    actor: shadow.createdBy,
    reason: `passed its shadow experiment ${shadow.id}: ${shadow.endReason ?? ''}`,
    now,
    ...(shadow.segments ? { segments: shadow.segments } : {}),
  });
}

function end(
  experiment: ExperimentRecord,
  state: ExperimentRecord['state'],
  now: number,
  reasons: string[],
): void {
  experiment.state = state;
  experiment.endedAt = now;
  experiment.endReason = reasons.join('; ');
}

/**
 * The next queued experiment, started against the champion: an operator's before the trainer's
 * (a person asked for it; the trainer's come often and supersede each other), oldest first.
 */
function startNext(file: ExperimentsFile, input: TickInput): ExperimentRecord | null {
  if (input.champion === null) return null;
  const byTrainer = (e: ExperimentRecord) => (e.createdBy === TRAINER_ACTOR ? 1 : 0);
  const queue = file.experiments.filter((e) => e.state === 'queued');
  queue.sort((a, b) => byTrainer(a) - byTrainer(b)); // stable: file order (oldest first) within each
  for (const experiment of queue) {
    if (experiment.state !== 'queued') continue;
    if (experiment.candidate === input.champion) {
      end(experiment, 'aborted', input.now, [`${experiment.candidate} became champion while it was queued`]);
      continue;
    }
    begin(experiment, input);
    return experiment;
  }
  return null;
}

/** The queued experiment running from now, against the champion. */
function begin(experiment: ExperimentRecord, input: TickInput): void {
  const empty = Object.fromEntries(Object.keys(experiment.config.metrics).map((m) => [m, EMPTY_SUMMARY]));
  Object.assign(experiment, {
    state: 'running',
    control: input.champion,
    startedAt: input.now,
    step: 0,
    stepStartedAt: input.now,
    stepStartOutcomes: 0,
    stats: { control: { ...empty }, candidate: { ...empty } },
    strata: {},
    ...(experiment.baselineShare ? { baseline: { ...empty } } : {}),
  });
  experiment.decisions.push({
    at: input.now,
    action: 'start',
    actor: CONTROLLER_ACTOR,
    share: experiment.config.steps[0] ?? 0,
    reasons: [`against the champion ${input.champion}`],
    intervals: {},
    outcomes: { control: 0, candidate: 0 },
  });
}

export function progressOf(experiment: ExperimentRecord): ExperimentProgress {
  return {
    state: experiment.state,
    step: experiment.step,
    stepStartedAt: experiment.stepStartedAt,
    stepOutcomes: countOf(experiment.stats.candidate) - experiment.stepStartOutcomes,
    stats: experiment.stats,
    strata: experiment.strata ?? {},
  };
}

function countOf(arm: ArmSummaries['control']): number {
  return Object.values(arm)[0]?.n ?? 0;
}

function armPoint(arm: ArmSummaries['control']): { n: number; means: Record<string, number> } {
  return {
    n: countOf(arm),
    means: Object.fromEntries(Object.entries(arm).map(([metric, s]) => [metric, s.mean])),
  };
}
