// The trainer's registry changes, one at a time: candidates judged by the gate (promoted when
// accepted), and the heuristic baseline published as champion while no learned model is. Each
// takes its inputs from the core at once, before anything awaits: the trainer goes on learning.
import { FlywheelError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { FeatureSpec } from '../model/features.js';
import type { RegistryAdmin } from '../registry/admin.js';
import { rampFor, rampProblems } from '../registry/experiment-admin.js';
import type { RampConfig } from '../registry/experiments.js';
import { proposeCandidate, publishServingBaseline, type CandidateResult } from './candidates.js';
import { encodeCheckpoint } from './checkpoint.js';
import type { TrainerConfig } from './config.js';
import type { CandidateInputs, TrainerCore } from './core.js';
import { DEFAULT_GATE } from './gate.js';
import type { trainerMetrics } from './metrics.js';
import type { CandidateTrigger } from './triggers.js';

export interface ProposalDeps {
  core: TrainerCore;
  admin: RegistryAdmin;
  spec: FeatureSpec;
  config: TrainerConfig;
  metrics: ReturnType<typeof trainerMetrics>;
  log: Logger;
  onCandidate: (result: CandidateResult) => void;
}

export class Proposals {
  /** Candidates (and serving baselines) are proposed one at a time. */
  private proposing: Promise<unknown> = Promise.resolve();

  /** The ramp of the experiments it queues, checked once: a wrong one stops the trainer at start. */
  private readonly ramp: RampConfig;

  constructor(private readonly deps: ProposalDeps) {
    this.ramp = rampFor({
      steps: deps.config.FW_TRAINER_EXPERIMENT_STEPS.split(',').map(Number),
      minOutcomes: deps.config.FW_TRAINER_EXPERIMENT_MIN_OUTCOMES,
    });
    const problems = rampProblems(this.ramp);
    if (problems.length > 0)
      throw new FlywheelError(
        'FW_CONFIG_INVALID',
        `FW_TRAINER_EXPERIMENT_STEPS / FW_TRAINER_EXPERIMENT_MIN_OUTCOMES: ${problems.join('; ')}`,
      );
  }

  /** A candidate now, after the proposals before it. */
  propose(trigger: CandidateTrigger): Promise<CandidateResult | null> {
    const run = this.proposing.catch(() => undefined).then(() => this.judge(trigger));
    this.proposing = run;
    return run;
  }

  /** Resolves once the proposals queued so far are done (failed ones included). */
  async settled(): Promise<void> {
    await this.proposing.catch(() => undefined);
  }

  private async judge(trigger: CandidateTrigger): Promise<CandidateResult | null> {
    // Taken at once, before anything awaits: the trainer goes on learning meanwhile.
    const inputs = this.deps.core.candidate(trigger, Date.now());
    const { pipeline } = this.deps.core;
    if (!inputs) {
      this.deps.log.info(
        { holdout: pipeline.learner.holdout.length, trigger },
        'not enough holdout examples for a candidate yet',
      );
      return null;
    }
    const judged = await proposeCandidate({
      admin: this.deps.admin,
      spec: this.deps.spec,
      learner: pipeline.learner,
      selected: inputs.selection.selected,
      baseline: pipeline.baseline,
      reference: pipeline.reference,
      history: this.deps.core.gateHistory,
      gate: {
        ...DEFAULT_GATE,
        minHoldout: this.deps.config.FW_TRAINER_GATE_MIN_HOLDOUT,
        minImprovement: this.deps.config.FW_TRAINER_GATE_MIN_IMPROVEMENT,
        alpha: this.deps.config.FW_TRAINER_GATE_ALPHA,
      },
      training: inputs.training,
      snapshot: encodeCheckpoint(inputs.snapshot),
      promoteTo: this.deps.config.FW_TRAINER_PROMOTE_TO,
      challengerWeight: this.deps.config.FW_TRAINER_CHALLENGER_WEIGHT,
      ramp: this.ramp,
    });
    const result = { ...judged, trigger };
    this.deps.core.registered(inputs, result.version);
    this.deps.metrics.candidates.inc({
      trigger,
      outcome: result.alias ?? (result.experiment ? 'experiment' : result.held ? 'held' : 'rejected'),
    });
    if (result.alias) this.promoted(result, inputs);
    this.deps.log.info(
      {
        version: result.version,
        alias: result.alias,
        trigger,
        learner: inputs.selection.selected,
        reasons: result.decision.reasons,
        holdout: result.decision.holdout,
        reference: result.decision.reference,
        ...(result.held ? { held: result.held } : {}),
        ...(result.experiment ? { experiment: result.experiment } : {}),
      },
      outcomeMessage(result),
    );
    this.deps.onCandidate(result);
    this.afterRefusal(result, inputs);
    return result;
  }

  private promoted(result: CandidateResult, inputs: CandidateInputs): void {
    this.deps.core.judgedServing(inputs);
    if (result.alias === 'champion') this.deps.core.baselines.on('learned-champion');
    const { newestLearnedTime, newestEventTime } = inputs.training;
    if (newestLearnedTime)
      this.deps.metrics.freshness.observe(Math.max(0, Date.now() - newestLearnedTime) / 1000);
    if (newestLearnedTime && newestEventTime)
      this.deps.metrics.freshnessEventTime.observe(Math.max(0, newestEventTime - newestLearnedTime) / 1000);
  }

  /** After a refused candidate, the baseline serves on, or replaces a failing champion. */
  private afterRefusal(result: CandidateResult, inputs: CandidateInputs): void {
    const { baselines } = this.deps.core;
    if (result.baselineReplacesChampion && baselines.on('champion-failing')) {
      // The champion does worse than a constant and no learned candidate passed: the baseline,
      // which passed the same rules, serves (and refreshes) until a learned model beats it.
      this.deps.core.judgedServing(inputs);
      const failing = result.decision.holdout.champion?.logLoss;
      this.deps.log.warn(
        { champion: result.decision.holdout, baseline: result.baselineReplacesChampion.holdout.candidate },
        'the champion is failing (worse than a constant on the recent holdout): the baseline replaces it',
      );
      void this.publishBaseline(
        `the champion is failing (holdout log loss ${failing?.toFixed(4) ?? '-'} vs ${result.decision.holdout.constant.logLoss.toFixed(4)} for a constant)`,
      );
    } else if (!result.decision.accept && baselines.on('refused')) {
      // A refused candidate while the baseline serves: the baseline, learned on since, serves on.
      void this.publishBaseline();
    }
  }

  /**
   * The heuristic baseline, learned from every example so far, as champion while no learned
   * model is (FW_TRAINER_BASELINE_FIRST); again each time the examples double and after each
   * refused candidate. In turn with candidates: one registry change at a time.
   */
  publishBaseline(replacing?: string): Promise<unknown> {
    // Taken now, before anything awaits: the trainer goes on learning meanwhile.
    const { taken, ...inputs } = this.deps.core.baselineInputs();
    const run = this.proposing
      .catch(() => undefined)
      .then(async () => {
        const version = await publishServingBaseline({
          admin: this.deps.admin,
          spec: this.deps.spec,
          ...inputs,
          ...(replacing ? { replacing } : {}),
        });
        if (version === null) {
          this.deps.core.baselines.on('learned-champion');
          return;
        }
        this.deps.log.info({ version, examples: taken }, `baseline ${version} serves as champion`);
      })
      .catch((err: unknown) =>
        this.deps.log.warn({ err }, 'publishing the baseline failed; trying again when the examples double'),
      );
    this.proposing = run;
    return run;
  }
}

function outcomeMessage(result: CandidateResult): string {
  if (result.alias) return `candidate ${result.version} promoted to ${result.alias}`;
  if (result.experiment)
    return `candidate ${result.version} accepted, queued for experiment ${result.experiment}`;
  if (result.held) return `candidate ${result.version} accepted, not promoted: ${result.held}`;
  return `candidate ${result.version} rejected`;
}
