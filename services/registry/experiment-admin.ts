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
  type ExperimentRecord,
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
    options: { actor: string; reason: string; config: RampConfig },
  ): Promise<ExperimentRecord> {
    const problems = rampProblems(options.config);
    if (problems.length > 0)
      throw new RegistryError('FW_BAD_REQUEST', `the experiment's ramp is wrong: ${problems.join('; ')}`);
    const metadata = await this.admin.show(candidate);
    if (metadata.status === 'rejected')
      throw new RegistryError(
        'FW_VERSION_REJECTED',
        `${candidate} was rejected (${metadata.statusReason ?? 'no reason'}) and cannot be tried`,
      );
    const { champion } = await this.admin.registry.routing();
    if (champion === candidate)
      throw new RegistryError('FW_EXPERIMENT_CONFLICT', `${candidate} is the champion already`);
    return this.store.queue({ candidate, ...options, now: this.now() });
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
      await this.route(experiment, options.actor, `${experiment.id} ${action}: ${options.reason}`);
      return experiment;
    });
  }

  /**
   * Moves the aliases to what the experiment's state says, if they are not there (idempotent):
   * running or paused, the candidate is challenger at its step's share; promoted, it is
   * champion; ended otherwise, it holds no alias. Call it holding the experiments lock.
   */
  async route(experiment: ExperimentRecord, actor: string, reason: string): Promise<void> {
    const routing = await this.admin.registry.routing();
    const { candidate } = experiment;
    if (ACTIVE_STATES.includes(experiment.state)) {
      const share = shareOf(experiment);
      if (routing.challenger !== candidate || routing.challengerWeight !== share)
        await this.admin.promote(candidate, 'challenger', {
          actor,
          reason,
          challengerWeight: share,
          experiment: experiment.id,
        });
      return;
    }
    if (experiment.state === 'promoted' && routing.champion !== candidate)
      await this.admin.promote(candidate, 'champion', { actor, reason, experiment: experiment.id });
    if (ENDED_STATES.includes(experiment.state) && routing.challenger === candidate)
      await this.admin.removeAlias('challenger', { actor, reason, experiment: experiment.id });
  }
}

/** The candidate's share in its state: its step's while it runs, none before or after. */
export function shareOf(experiment: ExperimentRecord): number {
  if (experiment.state === 'promoted') return 1;
  if (!ACTIVE_STATES.includes(experiment.state)) return 0;
  return experiment.config.steps[experiment.step] ?? 0;
}

/** The arm's outcome count (every metric summarises the same outcomes). */
export function firstCount(experiment: ExperimentRecord, arm: 'control' | 'candidate'): number {
  return Object.values(experiment.stats[arm])[0]?.n ?? 0;
}
