// Operator actions on experiments, shared by the CLI, the admin HTTP API and the rollout
// controller: start (queue) a candidate, pause, resume, abort, promote, and the routing that
// matches an experiment's state. Each action changes the record and moves the aliases while
// holding the experiments lock, so the controller's decisions and an operator's never interleave.
import { RegistryError } from '../common/errors.js';
import type { RegistryAdmin } from './admin.js';
import {
  ACTIVE_STATES,
  ENDED_STATES,
  nextState,
  type ExperimentEvent,
  endSiblings,
  groupOf,
  type ExperimentRecord,
  type ExperimentsFile,
  type ExperimentStore,
  type PrimaryMetric,
  type RampConfig,
  DEFAULT_RAMP,
  METRIC_PRESETS,
} from './experiments.js';

/** What an operator may set of a ramp; the rest is DEFAULT_RAMP's. */
export interface RampOverrides {
  primary?: PrimaryMetric;
  steps?: number[];
  minOutcomes?: number;
  minStepMs?: number;
  budget?: number;
  alpha?: number;
}

export function rampFor(overrides: RampOverrides, base: RampConfig = DEFAULT_RAMP): RampConfig {
  const { primary, ...rest } = overrides;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return { ...base, ...defined, ...(primary ? { metrics: METRIC_PRESETS[primary] } : {}) };
}

export type OperatorAction = Extract<ExperimentEvent, 'pause' | 'resume' | 'abort' | 'promote'>;
export const OPERATOR_ACTIONS: readonly OperatorAction[] = ['pause', 'resume', 'abort', 'promote'];

/** Problems of a ramp (empty when it is sound). */
export function rampProblems(config: RampConfig): string[] {
  const problems: string[] = [];
  const { steps } = config;
  if (steps.length === 0) problems.push('steps: at least one');
  steps.forEach((share, i) => {
    // Below 1: a step with the whole traffic leaves no control to compare with.
    if (!(share > 0 && share < 1)) problems.push(`steps[${i}]: ${share} is not in (0, 1)`);
    if (i > 0 && !(share > (steps[i - 1] as number))) problems.push(`steps[${i}]: not above the step before`);
  });
  if (!(config.alpha > 0 && config.alpha < 1)) problems.push(`alpha: ${config.alpha} is not in (0, 1)`);
  if (!(config.minOutcomes >= 1)) problems.push('minOutcomes: at least 1');
  // Every step needs its outcomes before the last can promote: a smaller budget ends it first.
  if (!(config.budget >= config.minOutcomes * Math.max(1, steps.length)))
    problems.push(`budget: at least minOutcomes × steps (${config.minOutcomes * steps.length})`);
  if (!(config.minStepMs >= 0)) problems.push('minStepMs: not negative');
  const metrics = Object.entries(config.metrics);
  if (!metrics.some(([, spec]) => spec.role === 'primary')) problems.push('metrics: no primary metric');
  for (const [name, spec] of metrics) {
    if (name !== 'purchaseRate' && name !== 'logLoss')
      problems.push(`metrics.${name}: unknown (purchaseRate, logLoss)`);
    if (!(spec.tau > 0)) problems.push(`metrics.${name}.tau: must be positive`);
  }
  return problems;
}

/** At most this many candidates in one experiment group. */
export const MAX_CANDIDATES = 8;

export interface GroupOptions {
  /** The heuristic baseline's share while the group runs (a permanent small control arm). */
  baselineShare?: number;
  /** Segments (country/device, '*' for any part) the split applies to. */
  segments?: readonly string[];
  /** 'shadow': scored beside the champion on every click, serving no one (one candidate). */
  mode?: 'shadow';
}

/** Problems of a group of candidates on one ramp (empty when sound). */
export function groupProblems(
  candidates: readonly string[],
  config: RampConfig,
  options: GroupOptions,
): string[] {
  const problems: string[] = [];
  if (candidates.length === 0) problems.push('at least one candidate');
  if (candidates.length > MAX_CANDIDATES) problems.push(`at most ${MAX_CANDIDATES} candidates`);
  if (new Set(candidates).size !== candidates.length) problems.push('a candidate is listed twice');
  if (options.mode === 'shadow' && (candidates.length !== 1 || options.baselineShare))
    problems.push('a shadow experiment has one candidate and no baseline share (it serves no one)');
  const baseline = options.baselineShare ?? 0;
  if (!(baseline >= 0 && baseline <= 0.2)) problems.push(`baseline share ${baseline} is not in [0, 0.2]`);
  // Every candidate at the last step together with the baseline must leave the control some.
  const last = config.steps.at(-1) ?? 0;
  const taken = candidates.length * last + baseline;
  if (!(taken < 1))
    problems.push(
      `${candidates.length} candidates at the last step ${last} and the baseline's ${baseline} leave the control nothing (${taken}): lower the steps`,
    );
  for (const s of options.segments ?? [])
    if (!/^[^/\s]+\/[^/\s]+$/.test(s))
      problems.push(`segment '${s}' is not country/device ('*' for any part)`);
  return problems;
}

export class ExperimentAdmin {
  constructor(
    readonly store: ExperimentStore,
    readonly admin: RegistryAdmin,
    private readonly now: () => number = Date.now,
  ) {}

  list(): Promise<ExperimentRecord[]> {
    return this.store.list();
  }

  get(id: string): Promise<ExperimentRecord> {
    return this.store.get(id);
  }

  /** Queues the candidate; the controller starts it when no other experiment runs. */
  async start(
    candidate: string,
    options: { actor: string; reason: string; config: RampConfig } & GroupOptions,
  ): Promise<ExperimentRecord> {
    return (await this.startGroup([candidate], options))[0] as ExperimentRecord;
  }

  /**
   * Queues several candidates to start together against the champion, each at alpha divided by
   * their number (Bonferroni: the chance of any false promotion in the group stays at alpha).
   */
  async startGroup(
    candidates: readonly string[],
    options: { actor: string; reason: string; config: RampConfig } & GroupOptions,
  ): Promise<ExperimentRecord[]> {
    const problems = [...rampProblems(options.config), ...groupProblems(candidates, options.config, options)];
    if (problems.length > 0)
      throw new RegistryError('FW_BAD_REQUEST', `the experiment's ramp is wrong: ${problems.join('; ')}`);
    const { champion } = await this.admin.registry.routing();
    for (const candidate of candidates) {
      const metadata = await this.admin.show(candidate);
      if (metadata.status === 'rejected')
        throw new RegistryError(
          'FW_VERSION_REJECTED',
          `${candidate} was rejected (${metadata.statusReason ?? 'no reason'}) and cannot be tried`,
        );
      if (champion === candidate)
        throw new RegistryError('FW_EXPERIMENT_CONFLICT', `${candidate} is the champion already`);
    }
    const config = { ...options.config, alpha: options.config.alpha / candidates.length };
    return this.store.queueGroup({ ...options, candidates, config, now: this.now() });
  }

  /** An operator's pause, resume, abort or promote; refused where the state has no such move. */
  async act(
    id: string,
    action: OperatorAction,
    options: { actor: string; reason: string },
  ): Promise<ExperimentRecord> {
    return this.store.transact(async (file) => {
      const experiment = file.experiments.find((e) => e.id === id);
      if (!experiment) throw new RegistryError('FW_UNKNOWN_EXPERIMENT', `no experiment ${id}`);
      const next = nextState(experiment.state, action);
      if (!next)
        throw new RegistryError(
          'FW_EXPERIMENT_CONFLICT',
          `experiment ${id} is ${experiment.state}: cannot ${action}`,
        );
      experiment.state = next;
      const now = this.now();
      if (ENDED_STATES.includes(next)) {
        experiment.endedAt = now;
        experiment.endReason = `${action} by ${options.actor}: ${options.reason}`;
      }
      experiment.decisions.push({
        at: now,
        action,
        actor: options.actor,
        share: shareOf(experiment),
        reasons: [options.reason],
        intervals: experiment.timeline.at(-1)?.intervals ?? {},
        outcomes: {
          control: firstCount(experiment, 'control'),
          candidate: firstCount(experiment, 'candidate'),
        },
      });
      if (action === 'promote') endSiblings(file, experiment, now);
      await this.route(file, experiment, options.actor, `${experiment.id} ${action}: ${options.reason}`);
      return experiment;
    });
  }

  /**
   * Moves the aliases to what the experiment's group says, if they are not there (idempotent): a
   * promoted candidate is champion; each running or paused one is a challenger at its step's
   * share, with the group's baseline share and segments; with none active the split is empty.
   * Call it holding the experiments lock, with the file read under it.
   */
  async route(
    file: ExperimentsFile,
    experiment: ExperimentRecord,
    actor: string,
    reason: string,
  ): Promise<void> {
    const options = { actor, reason, experiment: experiment.id };
    if (experiment.mode === 'shadow') return this.routeShadow(experiment, options);
    const members = groupOf(file, experiment);
    const promoted = members.find((e) => e.state === 'promoted');
    if (promoted && (await this.admin.registry.routing()).champion !== promoted.candidate)
      await this.admin.promote(promoted.candidate, 'champion', options);
    const active = members.filter((e) => ACTIVE_STATES.includes(e.state));
    const split = {
      challengers: active.map((e) => ({ version: e.candidate, weight: shareOf(e) })),
      baselineWeight: active.length > 0 ? (experiment.baselineShare ?? 0) : 0,
      segments: active.length > 0 ? [...(experiment.segments ?? [])] : [],
    };
    const routing = await this.admin.registry.routing();
    const current = {
      challengers: routing.challengers,
      baselineWeight: routing.baselineWeight,
      segments: routing.segments,
    };
    // Only the group's own candidates are replaced: an ended group leaves a stranger's alias be.
    const ours = routing.challenger === null || members.some((e) => e.candidate === routing.challenger);
    if (JSON.stringify(current) !== JSON.stringify(split) && (ours || active.length > 0))
      await this.admin.setSplit(split, options);
  }

  /** A shadow experiment's candidate is the shadow while it runs; it leaves the alias as it ends. */
  private async routeShadow(
    experiment: ExperimentRecord,
    options: { actor: string; reason: string; experiment: string },
  ): Promise<void> {
    const { shadow } = await this.admin.registry.routing();
    if (ACTIVE_STATES.includes(experiment.state)) {
      if (shadow !== experiment.candidate) await this.admin.promote(experiment.candidate, 'shadow', options);
    } else if (shadow === experiment.candidate) await this.admin.removeAlias('shadow', options);
  }
}

/** The candidate's share in its state: its step's while it runs, none before or after. */
export function shareOf(experiment: ExperimentRecord): number {
  if (experiment.mode === 'shadow') return 0;
  if (experiment.state === 'promoted') return 1;
  if (!ACTIVE_STATES.includes(experiment.state)) return 0;
  return experiment.config.steps[experiment.step] ?? 0;
}

/** The arm's outcome count (every metric summarises the same outcomes). */
export function firstCount(experiment: ExperimentRecord, arm: 'control' | 'candidate'): number {
  return Object.values(experiment.stats[arm])[0]?.n ?? 0;
}
