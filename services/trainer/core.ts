// The trainer's state and decisions, without I/O: records come in with their offsets and go
// through the learning pipeline; the core keeps the read order (a version's lineage) and the
// offsets to resume from, and answers what is due (a checkpoint, a candidate and why, the serving
// baseline) and what a candidate or the baseline is made of, taken at once. service.ts drives it
// with the at-least-once consumer, the checkpoint store and the registry.
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { DEFAULT_FTRL, type FtrlParams } from '../model/ftrl.js';
import type { FeatureSpec } from '../model/features.js';
import type { TrainingData } from '../registry/store.js';
import { pipelineStateOf, type Checkpoint } from './checkpoint.js';
import type { TrainerConfig } from './config.js';
import { DEFAULT_DRIFT, LossDriftDetector, type DriftAlarm, type DriftSettings } from './drift.js';
import { resolveLearners } from './learners.js';
import type { LabelPolicy } from './label-policy.js';
import type { LearnerSelection } from './online.js';
import { TrainingPipeline, exampleProblems, type PipelineSettings, type PipelineState } from './pipeline.js';
import { ReadOrder, type ReadOrderCut } from './read-order.js';
import {
  BaselineSchedule,
  CandidatePolicy,
  CheckpointPolicy,
  type CandidatePolicyConfig,
  type CandidateTrigger,
} from './triggers.js';

export interface TrainerCoreSettings {
  spec: { hash: string; dimension: number };
  pipeline: Omit<PipelineSettings, 'params' | 'dimension' | 'featureSpecHash'>;
  policy: LabelPolicy;
  topics: { feedback: string; humanLabels: string };
  candidates: CandidatePolicyConfig;
  checkpoints: { every: number; intervalMs: number };
  /** Examples before the first serving baseline (0: never). */
  baselineFirst: number;
  /** The drift alarm on progressive loss (null: none). */
  drift: DriftSettings | null;
  /** Fewest holdout examples for a candidate. */
  minHoldout: number;
}

/** A version to start from when there is no checkpoint (the champion's FTRL state). */
export interface WarmStart {
  version: string;
  params: FtrlParams;
  state: PipelineState;
  /** Where each input partition resumes: the end of what the version learned from it. */
  offsets: Record<string, string>;
}

export interface CoreRecord {
  topic: string;
  partition: number;
  offset: string;
  kind: 'labeledExample' | 'humanLabel';
  value: unknown;
}

export interface Taken {
  /** Records the stream must dead-letter (the pipeline skipped them), by index, with why. */
  rejected: { index: number; reason: string }[];
  /** Records before the resume offsets, read again after a restart and skipped. */
  skipped: number;
  /** Examples the records produced (labels merged), before the holdout. */
  examples: LabeledExample[];
  alarms: DriftAlarm[];
}

/** What a candidate is made of: the lineage and the snapshot taken with the learner's state. */
export interface CandidateInputs {
  trigger: CandidateTrigger;
  /** Where the read order is cut: the next lineage starts after it. */
  cut: ReadOrderCut;
  snapshot: Checkpoint;
  selection: LearnerSelection;
  training: TrainingData & { source: 'kafka' };
  /** Label rate of the holdout it is judged on. */
  holdoutRate: number;
}

export class TrainerCore {
  readonly pipeline: TrainingPipeline;
  private readonly order: ReadOrder;
  /** Whether the read order covers everything the learner learned (false after an old checkpoint). */
  private orderComplete: boolean;
  /** The version the learner started from, when it did not start from zero. */
  readonly warmStart: string | null;
  /** The candidate whose snapshot the read order starts from (null: from the start). */
  private orderBase: string | null;
  /** `topic:partition` → next offset to read; what the learner's state reflects. */
  readonly offsets: Record<string, string>;
  seq: number;
  private acceptedLabelRate: number | null;
  readonly checkpoints: CheckpointPolicy;
  readonly candidates: CandidatePolicy;
  readonly baselines: BaselineSchedule;
  private readonly drift: LossDriftDetector | null;

  constructor(
    private readonly settings: TrainerCoreSettings,
    start: { checkpoint: Checkpoint | null; warm: WarmStart | null },
    now: number,
  ) {
    const { checkpoint, warm } = start;
    this.warmStart = checkpoint ? (checkpoint.warmStart ?? null) : (warm?.version ?? null);
    this.pipeline = new TrainingPipeline(
      {
        ...settings.pipeline,
        dimension: settings.spec.dimension,
        featureSpecHash: settings.spec.hash,
        params: checkpoint?.params ?? warm?.params ?? DEFAULT_FTRL,
      },
      checkpoint ? pipelineStateOf(checkpoint) : warm?.state,
    );
    this.order = new ReadOrder(checkpoint?.order);
    this.orderBase = checkpoint?.orderBase ?? null;
    this.orderComplete = !checkpoint || checkpoint.orderComplete === true;
    this.acceptedLabelRate = checkpoint?.acceptedLabelRate ?? null;
    // Where each partition resumes: the checkpoint's offsets; after a warm start, the end of what
    // the champion learned from these topics (its lineage); anywhere else, the partition's start.
    this.offsets = { ...(checkpoint?.offsets ?? warm?.offsets ?? {}) };
    this.seq = checkpoint?.seq ?? 0;
    this.checkpoints = new CheckpointPolicy(settings.checkpoints, now);
    this.candidates = new CandidatePolicy(settings.candidates, now);
    this.baselines = new BaselineSchedule(settings.baselineFirst);
    this.drift = settings.drift ? new LossDriftDetector(settings.drift) : null;
  }

  get learned(): number {
    return this.pipeline.learner.learned;
  }

  /** Examples taken in: learned and held out. */
  get taken(): number {
    return this.pipeline.learner.learned + this.pipeline.learner.holdout.length;
  }

  take(records: readonly CoreRecord[]): Taken {
    const taken: Taken = { rejected: [], skipped: 0, examples: [], alarms: [] };
    records.forEach((record, index) => {
      const key = `${record.topic}:${record.partition}`;
      const next = this.offsets[key];
      if (next !== undefined && BigInt(record.offset) < BigInt(next)) {
        taken.skipped++;
        return;
      }
      if (record.kind === 'labeledExample') {
        // The pipeline skips it (a replay does too); the stream shows why in fw.dlq.
        const problems = exampleProblems(record.value as LabeledExample, this.settings.spec);
        if (problems.length > 0) taken.rejected.push({ index, reason: problems.join('; ') });
      }
      const learnedBefore = this.pipeline.learner.learned;
      taken.examples.push(
        ...this.pipeline.take(
          record.kind === 'humanLabel'
            ? { kind: 'humanLabel', value: record.value as HumanLabel }
            : { kind: 'labeledExample', value: record.value as LabeledExample },
        ),
      );
      const learnedNow = this.pipeline.learner.learned - learnedBefore;
      taken.alarms.push(...this.watchDrift(learnedNow));
      this.checkpoints.taken(learnedNow);
      this.candidates.learned(learnedNow);
      this.order.note(key, record.offset);
      this.offsets[key] = String(BigInt(record.offset) + 1n);
    });
    return taken;
  }

  private watchDrift(learnedNow: number): DriftAlarm[] {
    if (!this.drift) return [];
    const alarms: DriftAlarm[] = [];
    for (const { loss, weight } of this.pipeline.learner.recentLosses(learnedNow)) {
      const alarm = this.drift.add(loss / weight);
      if (!alarm) continue;
      alarms.push(alarm);
      this.candidates.driftAlarm();
    }
    return alarms;
  }

  /** Everything the trainer's state is, with the offsets it reflects (copies, taken at once). */
  snapshot(seq: number, now: number): Checkpoint {
    const state = this.pipeline.state();
    return {
      seq,
      writtenAt: now,
      featureSpecHash: this.settings.spec.hash,
      params: this.pipeline.learner.options.params,
      offsets: { ...this.offsets },
      state: state.learner,
      waitingHumanLabels: state.waitingHumanLabels,
      ...(state.baseline ? { baseline: state.baseline } : {}),
      remembered: state.remembered,
      reference: state.reference,
      labelSources: state.labelSources,
      newestEventTime: state.newestEventTime,
      newestLearnedTime: state.newestLearnedTime,
      order: this.order.state(),
      orderComplete: this.orderComplete,
      warmStart: this.warmStart,
      orderBase: this.orderBase,
      acceptedLabelRate: this.acceptedLabelRate,
      ...(state.merger ? { merger: state.merger } : {}),
    };
  }

  /** The next checkpoint (its sequence number taken), due or not. */
  nextCheckpoint(now: number): Checkpoint {
    const checkpoint = this.snapshot(++this.seq, now);
    this.checkpoints.written(now);
    return checkpoint;
  }

  /** What the learner's state was read from, now (the lineage of a version taken now). */
  lineage(trigger: string): TrainingData & { source: 'kafka' } {
    const { feedback, humanLabels } = this.settings.topics;
    return {
      source: 'kafka',
      ranges: this.order.ranges(),
      examples: this.learned,
      labelSources: { ...this.pipeline.labelSources },
      newestEventTime: this.pipeline.newestEventTime,
      newestLearnedTime: this.pipeline.newestLearnedTime,
      trigger,
      kinds: { [feedback]: 'labeledExample', [humanLabels]: 'humanLabel' },
    };
  }

  get gateHistory(): { acceptedLabelRate: number | null } {
    return { acceptedLabelRate: this.acceptedLabelRate };
  }

  /**
   * A candidate's inputs, taken at once (the trainer goes on learning while it is judged); null
   * when the holdout is too small to judge one. Either way the count and the interval restart.
   */
  candidate(trigger: CandidateTrigger, now: number): CandidateInputs | null {
    this.candidates.proposed(now);
    const { learner } = this.pipeline;
    const holdout = learner.holdout;
    if (holdout.length < this.settings.minHoldout) return null;
    const selection = learner.selection();
    return {
      trigger,
      cut: this.order.cut(),
      // The snapshot of the whole state goes with the version: the next lineage starts from it.
      snapshot: this.snapshot(this.seq, now),
      selection,
      training: {
        ...this.lineage(trigger),
        online: {
          runs: this.orderComplete ? this.order.state().runs : null,
          base: this.orderBase,
          warmStart: this.orderBase ? null : this.warmStart,
          holdoutSize: this.settings.pipeline.holdoutSize,
          policy: { ...this.settings.policy },
          primary: { ...learner.options.params },
          learners: [...(learner.options.side ?? [])],
          selectionWindow: learner.selectionWindow,
          selection,
        },
      },
      holdoutRate: holdout.filter((e) => e.label === 1).length / holdout.length,
    };
  }

  /**
   * A candidate was registered as `version`: the next lineage starts from its snapshot and holds
   * only what is read from here on (the order stays small however long the trainer runs).
   */
  registered(inputs: CandidateInputs, version: string): void {
    this.order.rebase(inputs.cut);
    this.orderBase = version;
    this.orderComplete = true;
    this.checkpoints.touched();
  }

  /** A version judged on that holdout now serves (a candidate, or the baseline in its place). */
  judgedServing(inputs: CandidateInputs): void {
    this.acceptedLabelRate = inputs.holdoutRate;
  }

  /** The serving baseline's inputs, taken now; the schedule moves on (doubling from here). */
  baselineInputs() {
    const taken = this.taken;
    this.baselines.published(taken);
    return {
      taken,
      holdout: this.pipeline.learner.holdout,
      baseline: this.pipeline.baseline.clone(),
      training: {
        ...this.lineage('baseline'),
        examples: taken,
        newestLearnedTime: this.pipeline.newestEventTime,
      },
    };
  }
}

/** The core's settings from the trainer's configuration. */
export function trainerCoreSettings(
  config: TrainerConfig,
  spec: FeatureSpec,
  policy: LabelPolicy,
  topics: { feedback: string; humanLabels: string },
): TrainerCoreSettings {
  return {
    spec: spec,
    pipeline: {
      holdoutSize: config.FW_TRAINER_HOLDOUT,
      policy: policy,
      referenceSize: config.FW_TRAINER_REFERENCE_SIZE,
      // The side learners (FW_TRAINER_LEARNERS), absolute: resolved against the default FTRL.
      side: {
        learners: resolveLearners(config.FW_TRAINER_LEARNERS, DEFAULT_FTRL),
        space: {
          hashBits: spec.hashBits,
          denseCount: spec.denseNames.length,
          biasSlot: spec.biasSlot,
        },
        selectionWindow: config.FW_TRAINER_SELECTION_WINDOW,
      },
    },
    policy: policy,
    topics: topics,
    candidates: { every: config.FW_TRAINER_CANDIDATE_EVERY, intervalMs: config.FW_TRAINER_CANDIDATE_MS },
    checkpoints: { every: config.FW_TRAINER_CHECKPOINT_EVERY, intervalMs: config.FW_TRAINER_CHECKPOINT_MS },
    baselineFirst: config.FW_TRAINER_BASELINE_FIRST,
    drift:
      config.FW_TRAINER_DRIFT_Z > 0
        ? { ...DEFAULT_DRIFT, z: config.FW_TRAINER_DRIFT_Z, minRise: config.FW_TRAINER_DRIFT_MIN_RISE }
        : null,
    minHoldout: config.FW_TRAINER_GATE_MIN_HOLDOUT,
  };
}
