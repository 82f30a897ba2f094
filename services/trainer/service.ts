// `flywheel trainer`: consumes fw.feedback.labeled and fw.labels.human, merges human and outcome
// labels by the configured policy and learns online (pipeline.ts); checkpoints the learner with
// the input offsets it reflects, atomically; proposes candidate versions, judged by the gate
// against the champion and the baseline, on a trigger: a count of examples, time, a rise of its
// own progressive loss (drift), or a request over HTTP (an operator, or a monitoring alarm).
// Exactly-once learning across restarts: on start the checkpoint is loaded and every input
// partition is sought to its offset in it, and records before those offsets are skipped, so an
// example is learned once whatever was fetched or committed before a crash. One trainer per
// group: the checkpoint covers every partition. The read order is kept with the checkpoint, so
// each candidate can be trained again from Kafka (`flywheel models retrain`).
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import { RecordConsumer, groupTimeouts, readinessOf, type Rejection } from '../common/consumer.js';
import { RecordRejectedError } from '../common/errors.js';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { createProducer } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { DEFAULT_FTRL, type FtrlParams } from '../model/ftrl.js';
import { FeatureSpec } from '../model/features.js';
import { loadRegistryConfig } from '../registry/config.js';
import { initBackend } from '../model/backend.js';
import { RegistryAdmin } from '../registry/admin.js';
import { FileModelRegistry, type TrainingData } from '../registry/store.js';
import { proposeCandidate, publishServingBaseline, type CandidateResult } from './candidates.js';
import { CheckpointStore, encodeCheckpoint, pipelineStateOf, type Checkpoint } from './checkpoint.js';
import { loadTrainerConfig, type TrainerConfig } from './config.js';
import { LossDriftDetector, DEFAULT_DRIFT } from './drift.js';
import { resolveLearners } from './learners.js';
import { trainerMetrics } from './metrics.js';
import { buildTrainerApp } from './http.js';
import { BaselineSchedule, CandidatePolicy, CheckpointPolicy, type CandidateTrigger } from './triggers.js';
import { DEFAULT_GATE } from './gate.js';
import { DEFAULT_LABEL_POLICY, type LabelPolicy } from './label-policy.js';
import { TrainingPipeline, exampleProblems } from './pipeline.js';
import { ReadOrder } from './read-order.js';
import { warmStartFrom } from './replay.js';
import type { PipelineState } from './pipeline.js';

export type { CandidateTrigger };

export interface TrainerTopics {
  feedback: string;
  humanLabels: string;
  deadLetters: string;
  modelUpdates: string;
}

export interface TrainerOptions {
  runtime: Runtime;
  config?: TrainerConfig;
  topics?: Partial<TrainerTopics>;
  http?: boolean;
  /** Told after each checkpoint is durable (tests wait on it). */
  onCheckpoint?: (summary: {
    seq: number;
    learned: number;
    holdout: number;
    offsets: Record<string, string>;
  }) => void;
}

type Subscriptions = Record<string, 'labeledExample' | 'humanLabel'>;

/** Emits 'batch' after each batch of records is taken in, 'candidate' after each proposal. */
export class Trainer extends EventEmitter<{ batch: []; candidate: [CandidateResult] }> {
  readonly topics: TrainerTopics;
  readonly config: TrainerConfig;
  private readonly log: Logger;
  private readonly spec: FeatureSpec;
  private readonly store: CheckpointStore;
  private readonly registry: FileModelRegistry;
  private readonly policy: LabelPolicy;
  private pipeline!: TrainingPipeline;
  private order = new ReadOrder();
  /** Whether the read order covers everything the learner learned (false after an old checkpoint). */
  private orderComplete = true;
  /** The version the learner started from, when it did not start from zero. */
  private warmStart: string | null = null;
  /** The candidate whose snapshot the read order starts from (null: from the start). */
  private orderBase: string | null = null;
  /** `topic:partition` → next offset to read; what the learner's state reflects. */
  private offsets: Record<string, string> = {};
  private seq = 0;
  private readonly checkpoints: CheckpointPolicy;
  private producer: Producer | undefined;
  private consumer: RecordConsumer<Subscriptions> | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  /** Checkpoints are written one at a time, in order. */
  private saving: Promise<void> = Promise.resolve();
  /** Candidates are proposed one at a time. */
  private proposing: Promise<unknown> = Promise.resolve();
  private readonly triggers: CandidatePolicy;
  private acceptedLabelRate: number | null = null;
  private baselines = new BaselineSchedule(0);
  private drift: LossDriftDetector | null;
  private admin: RegistryAdmin | undefined;
  private readonly metrics: ReturnType<typeof trainerMetrics>;

  constructor(private readonly options: TrainerOptions) {
    super();
    this.config = options.config ?? loadTrainerConfig();
    this.topics = {
      feedback: TOPICS.feedback,
      humanLabels: TOPICS.humanLabels,
      deadLetters: TOPICS.deadLetters,
      modelUpdates: TOPICS.modelUpdates,
      ...options.topics,
    };
    this.log = options.runtime.logger.child({ component: 'trainer' });
    this.checkpoints = new CheckpointPolicy(
      { every: this.config.FW_TRAINER_CHECKPOINT_EVERY, intervalMs: this.config.FW_TRAINER_CHECKPOINT_MS },
      Date.now(),
    );
    this.triggers = new CandidatePolicy(
      { every: this.config.FW_TRAINER_CANDIDATE_EVERY, intervalMs: this.config.FW_TRAINER_CANDIDATE_MS },
      Date.now(),
    );
    this.spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
    this.store = new CheckpointStore(this.config.FW_TRAINER_DIR);
    this.registry = new FileModelRegistry(loadRegistryConfig().FW_REGISTRY_DIR);
    this.policy = {
      ...DEFAULT_LABEL_POLICY,
      conflict: this.config.FW_TRAINER_HUMAN_POLICY,
      humanWeight: this.config.FW_TRAINER_HUMAN_WEIGHT,
      rememberOutcomes: this.config.FW_TRAINER_REMEMBER_OUTCOMES,
    };
    this.drift =
      this.config.FW_TRAINER_DRIFT_Z > 0
        ? new LossDriftDetector({
            ...DEFAULT_DRIFT,
            z: this.config.FW_TRAINER_DRIFT_Z,
            minRise: this.config.FW_TRAINER_DRIFT_MIN_RISE,
          })
        : null;
    this.metrics = trainerMetrics(options.runtime.metrics);
  }

  get learned(): number {
    return this.pipeline.learner.learned;
  }

  /** Examples in the holdout (taken in, not learned from yet). */
  get heldOut(): number {
    return this.pipeline.learner.holdout.length;
  }

  get waitingHumanLabels(): number {
    return this.pipeline.merger.waitingCount;
  }

  /** The HTTP port it listens on (FW_TRAINER_HTTP_PORT, or the one picked for 0). */
  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  /** The pipeline's learner (tests compare its weights with a replay). */
  get learner() {
    return this.pipeline.learner;
  }

  async start(): Promise<void> {
    const { runtime } = this.options;
    await initBackend(runtime.logger);
    let checkpoint = await this.store.load();
    if (checkpoint && (await this.pastTheEnd(checkpoint.offsets))) {
      // Offsets beyond the end of a partition: the topics were recreated; the checkpoint is of another stream.
      this.log.warn(
        { checkpoint: this.store.path, offsets: checkpoint.offsets },
        'checkpoint is ahead of the topics (were they recreated?); starting from scratch',
      );
      checkpoint = null;
    }
    if (checkpoint && checkpoint.featureSpecHash !== this.spec.hash)
      throw new Error(
        `checkpoint ${this.store.path} was made with feature spec ${checkpoint.featureSpecHash}, not ${this.spec.hash}`,
      );
    const warm = checkpoint || !this.config.FW_TRAINER_WARM_START ? null : await this.championState();
    this.warmStart = checkpoint ? (checkpoint.warmStart ?? null) : (warm?.version ?? null);
    this.pipeline = new TrainingPipeline(
      {
        dimension: this.spec.dimension,
        params: checkpoint?.params ?? warm?.params ?? DEFAULT_FTRL,
        holdoutSize: this.config.FW_TRAINER_HOLDOUT,
        policy: this.policy,
        referenceSize: this.config.FW_TRAINER_REFERENCE_SIZE,
        featureSpecHash: this.spec.hash,
        side: this.sideSettings(),
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
    this.baselines = new BaselineSchedule(this.config.FW_TRAINER_BASELINE_FIRST);
    this.log.info(
      {
        checkpoint: this.store.path,
        seq: this.seq,
        learned: this.learned,
        offsets: this.offsets,
        warmStart: this.warmStart,
      },
      checkpoint
        ? 'resuming from the checkpoint'
        : warm
          ? `no checkpoint: starting from the champion ${warm.version}`
          : 'no checkpoint: starting from zero',
    );

    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();
    this.admin = new RegistryAdmin(
      this.registry,
      this.spec,
      { producer: this.producer, codecs: runtime.codecs, topic: this.topics.modelUpdates },
      runtime.logger,
    );
    this.consumer = new RecordConsumer<Subscriptions>({
      kafka: runtime.kafka,
      groupId: this.config.FW_TRAINER_GROUP,
      service: 'trainer',
      subscriptions: { [this.topics.feedback]: 'labeledExample', [this.topics.humanLabels]: 'humanLabel' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(this.producer, runtime.codecs.deadLetter, this.topics.deadLetters),
      logger: runtime.logger,
      metrics: runtime.metrics,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      maxRetryDelayMs: runtime.config.FW_RETRY_MAX_BACKOFF_MS,
      onCrash: (error) => runtime.lifecycle.fail('trainer consumer', error),
      consumerConfig: {
        ...groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
        // Larger fetches: learning is cheap next to a fetch round trip.
        maxBytesPerPartition: this.config.FW_TRAINER_FETCH_BYTES,
      },
      handle: async (records) => {
        const rejected: Rejection<(typeof records)[number]>[] = [];
        for (const record of records) {
          const key = `${record.topic}:${record.partition}`;
          const next = this.offsets[key];
          if (next !== undefined && BigInt(record.offset) < BigInt(next)) {
            this.metrics.skipped.inc();
            continue;
          }
          if (record.kind === 'labeledExample') {
            // The pipeline skips it (a replay does too); the stream shows why in fw.dlq.
            const problems = exampleProblems(record.value as LabeledExample, this.spec);
            if (problems.length > 0)
              rejected.push({ record, error: new RecordRejectedError(problems.join('; ')) });
          }
          const learnedBefore = this.pipeline.learner.learned;
          const examples = this.pipeline.take(
            record.kind === 'humanLabel'
              ? { kind: 'humanLabel', value: record.value as HumanLabel }
              : { kind: 'labeledExample', value: record.value as LabeledExample },
          );
          for (const e of examples) this.metrics.examples.inc({ source: e.labelSource });
          const learnedNow = this.pipeline.learner.learned - learnedBefore;
          if (this.drift) this.watchDrift(learnedNow);
          this.checkpoints.taken(learnedNow);
          this.triggers.learned(learnedNow);
          this.order.note(key, record.offset);
          this.offsets[key] = String(BigInt(record.offset) + 1n);
        }
        this.metrics.learned.set(this.learned);
        const loss = this.pipeline.learner.progressiveLogLoss;
        if (Number.isFinite(loss)) this.metrics.progressive.set(loss);
        for (const [learner, value] of Object.entries(this.pipeline.learner.selection().progressiveLogLoss))
          if (value !== null) this.metrics.learners.set({ learner }, value);
        if (this.checkpoints.dueAfterBatch(Date.now())) await this.checkpoint();
        const trigger = this.triggers.due(Date.now());
        if (trigger) await this.proposeCandidate(trigger);
        if (this.baselines.due(this.learned + this.heldOut)) await this.publishBaseline();
        this.emit('batch');
        return { rejected };
      },
    });
    // The checkpoint, not the group's committed offsets, says where to continue: a partition it
    // names resumes at its offset; one it does not name has taught the learner nothing, so it is
    // read from its first record (offset 0 is before the log start once retention deleted the
    // oldest; the consumer then resets to the earliest, as fromBeginning says). The group's
    // offsets are committed after every batch, ahead of the checkpoint: resuming from them would
    // skip what was learned after the last checkpoint and lost in a crash.
    const kafkaConsumer = this.consumer.consumer;
    kafkaConsumer.on(kafkaConsumer.events.GROUP_JOIN, ({ payload }) => {
      const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions ?? []) {
          const offset = this.offsets[`${topic}:${partition}`] ?? '0';
          kafkaConsumer.seek({ topic, partition, offset });
        }
      }
    });
    await this.consumer.start();
    // A quiet stream still gets its last examples checkpointed.
    this.ticker = setInterval(
      () => {
        if (this.checkpoints.dueOnTick(Date.now()))
          this.checkpoint().catch((err: unknown) => this.log.error({ err }, 'checkpoint failed'));
      },
      Math.min(1000, this.config.FW_TRAINER_CHECKPOINT_MS),
    );
    if (this.options.http !== false) await this.listen();
  }

  /** The side learners (FW_TRAINER_LEARNERS), absolute: resolved against the default FTRL. */
  private sideSettings() {
    return {
      learners: resolveLearners(this.config.FW_TRAINER_LEARNERS, DEFAULT_FTRL),
      space: {
        hashBits: this.spec.hashBits,
        denseCount: this.spec.denseNames.length,
        biasSlot: this.spec.biasSlot,
      },
      selectionWindow: this.config.FW_TRAINER_SELECTION_WINDOW,
    };
  }

  /** The champion's FTRL state, to start from when there is no checkpoint. */
  private async championState(): Promise<{
    version: string;
    params: FtrlParams;
    state: PipelineState;
    offsets: Record<string, string>;
  } | null> {
    const champion = (await this.registry.routing()).champion;
    if (!champion) return null;
    const { metadata, files } = await this.registry.loadArtifacts(champion);
    if (metadata.kind !== 'ftrl' || metadata.featureSpecHash !== this.spec.hash) {
      this.log.info(
        { champion, kind: metadata.kind },
        'the champion is not an FTRL model of this feature spec: starting from zero',
      );
      return null;
    }
    const warm = await warmStartFrom(files, this.spec);
    const offsets: Record<string, string> = {};
    const inputs = new Set([this.topics.feedback, this.topics.humanLabels]);
    if (metadata.training.source === 'kafka')
      for (const range of metadata.training.ranges) {
        if (!inputs.has(range.topic)) continue;
        const key = `${range.topic}:${range.partition}`;
        const known = offsets[key];
        if (known === undefined || BigInt(range.to) > BigInt(known)) offsets[key] = range.to;
      }
    return warm && { version: champion, ...warm, offsets };
  }

  private watchDrift(learnedNow: number): void {
    for (const { loss, weight } of this.pipeline.learner.recentLosses(learnedNow)) {
      const alarm = (this.drift as LossDriftDetector).add(loss / weight);
      if (!alarm) continue;
      this.metrics.driftAlarms.inc();
      this.triggers.driftAlarm();
      this.log.warn(alarm, 'progressive log loss rose significantly: proposing a candidate');
    }
  }

  private async listen(): Promise<void> {
    const app = buildTrainerApp({
      metrics: this.options.runtime.metrics,
      adminToken: loadRegistryConfig().FW_ADMIN_TOKEN,
      logger: this.log,
      health: () => ({ ok: true, learned: this.learned, heldOut: this.heldOut, seq: this.seq }),
      readiness: () =>
        this.consumer
          ? readinessOf(this.consumer.health(), 'labeled examples')
          : { ready: false, reason: 'starting' },
      propose: (trigger) => this.proposeCandidate(trigger),
    });
    await app.listen({ host: '0.0.0.0', port: this.config.FW_TRAINER_HTTP_PORT });
    this.app = app;
  }

  /**
   * Registers the learner's current weights as a candidate version, judged by the gate against
   * the champion and the baseline on the holdout (and against the champion on the trusted
   * reference set); promoted only when accepted. One at a time.
   */
  proposeCandidate(trigger: CandidateTrigger = 'operator'): Promise<CandidateResult | null> {
    const run = this.proposing.catch(() => undefined).then(() => this.propose(trigger));
    this.proposing = run;
    return run;
  }

  private async propose(trigger: CandidateTrigger): Promise<CandidateResult | null> {
    this.triggers.proposed(Date.now());
    const { learner } = this.pipeline;
    if (learner.holdout.length < this.config.FW_TRAINER_GATE_MIN_HOLDOUT) {
      this.log.info(
        { holdout: learner.holdout.length, trigger },
        'not enough holdout examples for a candidate yet',
      );
      return null;
    }
    // The lineage is taken with the learner's state, before anything awaits; the snapshot of the
    // whole state goes with the version, so the next version's lineage can start from it.
    const cut = this.order.cut();
    const snapshot = encodeCheckpoint(this.snapshot(this.seq));
    const selection = learner.selection();
    const training: TrainingData = {
      ...this.lineage(trigger),
      online: {
        runs: this.orderComplete ? this.order.state().runs : null,
        base: this.orderBase,
        warmStart: this.orderBase ? null : this.warmStart,
        holdoutSize: this.config.FW_TRAINER_HOLDOUT,
        policy: { ...this.policy },
        primary: { ...learner.options.params },
        learners: [...(learner.options.side ?? [])],
        selectionWindow: learner.selectionWindow,
        selection,
      },
    };
    const holdoutPositives = learner.holdout.filter((e) => e.label === 1).length;
    const holdoutSize = learner.holdout.length;
    const judged = await proposeCandidate({
      admin: this.admin as RegistryAdmin,
      spec: this.spec,
      learner,
      selected: selection.selected,
      baseline: this.pipeline.baseline,
      reference: this.pipeline.reference,
      history: { acceptedLabelRate: this.acceptedLabelRate },
      gate: {
        ...DEFAULT_GATE,
        minHoldout: this.config.FW_TRAINER_GATE_MIN_HOLDOUT,
        minImprovement: this.config.FW_TRAINER_GATE_MIN_IMPROVEMENT,
        alpha: this.config.FW_TRAINER_GATE_ALPHA,
      },
      training,
      snapshot,
      promoteTo: this.config.FW_TRAINER_PROMOTE_TO,
      challengerWeight: this.config.FW_TRAINER_CHALLENGER_WEIGHT,
    });
    const result = { ...judged, trigger };
    // Registered: the next lineage starts from this version's snapshot, and holds only what
    // is read from here on (the order stays small however long the trainer runs).
    this.order.rebase(cut);
    this.orderBase = result.version;
    this.orderComplete = true;
    this.checkpoints.touched();
    this.metrics.candidates.inc({ trigger, outcome: result.alias ?? 'rejected' });
    if (result.alias) {
      this.acceptedLabelRate = holdoutPositives / holdoutSize;
      if (training.newestLearnedTime)
        this.metrics.freshness.observe(Math.max(0, Date.now() - training.newestLearnedTime) / 1000);
      if (training.newestLearnedTime && training.newestEventTime)
        this.metrics.freshnessEventTime.observe(
          Math.max(0, training.newestEventTime - training.newestLearnedTime) / 1000,
        );
    }
    this.log.info(
      {
        version: result.version,
        alias: result.alias,
        trigger,
        reasons: result.decision.reasons,
        holdout: result.decision.holdout,
        reference: result.decision.reference,
      },
      result.alias
        ? `candidate ${result.version} promoted to ${result.alias}`
        : `candidate ${result.version} rejected`,
    );
    this.emit('candidate', result);
    if (result.baselineReplacesChampion && this.config.FW_TRAINER_BASELINE_FIRST > 0) {
      // The champion does worse than a constant and no learned candidate passed: the baseline,
      // which passed the same rules, serves (and refreshes) until a learned model beats it.
      this.acceptedLabelRate = holdoutPositives / holdoutSize;
      const failing = result.decision.holdout.champion?.logLoss;
      this.log.warn(
        { champion: result.decision.holdout, baseline: result.baselineReplacesChampion.holdout.candidate },
        'the champion is failing (worse than a constant on the recent holdout): the baseline replaces it',
      );
      void this.publishBaseline(
        `the champion is failing (holdout log loss ${failing?.toFixed(4) ?? '-'} vs ${result.decision.holdout.constant.logLoss.toFixed(4)} for a constant)`,
      );
    } else if (!result.alias && this.baselines.active) {
      // A refused candidate while the baseline serves: the baseline, learned on since, serves on.
      void this.publishBaseline();
    }
    return result;
  }

  /** What the learner's state was read from, now (the lineage of a version taken now). */
  private lineage(trigger: string): TrainingData & { source: 'kafka' } {
    return {
      source: 'kafka',
      ranges: this.order.ranges(),
      examples: this.learned,
      labelSources: { ...this.pipeline.labelSources },
      newestEventTime: this.pipeline.newestEventTime,
      newestLearnedTime: this.pipeline.newestLearnedTime,
      trigger,
      kinds: { [this.topics.feedback]: 'labeledExample', [this.topics.humanLabels]: 'humanLabel' },
    };
  }

  /**
   * The heuristic baseline, learned from every example so far, as champion while no learned
   * model is (FW_TRAINER_BASELINE_FIRST); again each time the examples double and after each
   * refused candidate. In turn with candidates: one registry change at a time.
   */
  private publishBaseline(replacing?: string): Promise<unknown> {
    const taken = this.learned + this.heldOut;
    this.baselines.published(taken);
    // Taken now, before anything awaits: the trainer goes on learning meanwhile.
    const holdout = this.pipeline.learner.holdout;
    const baseline = this.pipeline.baseline.clone();
    const training = {
      ...this.lineage('baseline'),
      examples: taken,
      newestLearnedTime: this.pipeline.newestEventTime,
    };
    const run = this.proposing
      .catch(() => undefined)
      .then(async () => {
        const version = await publishServingBaseline({
          admin: this.admin as RegistryAdmin,
          spec: this.spec,
          baseline,
          holdout,
          training,
          ...(replacing ? { replacing } : {}),
        });
        if (version === null) {
          this.baselines.over(); // a learned model is champion
          return;
        }
        this.log.info({ version, examples: taken }, `baseline ${version} serves as champion`);
      })
      .catch((err: unknown) =>
        this.log.warn({ err }, 'publishing the baseline failed; trying again when the examples double'),
      );
    this.proposing = run;
    return run;
  }

  private async pastTheEnd(offsets: Record<string, string>): Promise<boolean> {
    const admin = this.options.runtime.kafka.admin();
    await admin.connect();
    try {
      for (const topic of [this.topics.feedback, this.topics.humanLabels]) {
        for (const { partition, high } of await admin.fetchTopicOffsets(topic)) {
          const at = offsets[`${topic}:${partition}`];
          if (at !== undefined && BigInt(at) > BigInt(high)) return true;
        }
      }
      return false;
    } finally {
      await admin.disconnect();
    }
  }

  /** Everything the trainer's state is, with the offsets it reflects (copies, taken at once). */
  private snapshot(seq: number): Checkpoint {
    const state = this.pipeline.state();
    return {
      seq,
      writtenAt: Date.now(),
      featureSpecHash: this.spec.hash,
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
    };
  }

  /** Learner state and the offsets it reflects, in one atomic file. */
  checkpoint(): Promise<void> {
    // Taken together, synchronously: the state and the offsets it reflects.
    const checkpoint = this.snapshot(++this.seq);
    this.checkpoints.written(Date.now());
    const save = async () => {
      await this.store.save(checkpoint);
      this.metrics.checkpoints.inc();
      this.options.onCheckpoint?.({
        seq: checkpoint.seq,
        learned: checkpoint.state.learned,
        holdout: checkpoint.state.holdout.length,
        offsets: checkpoint.offsets,
      });
    };
    this.saving = this.saving.catch(() => undefined).then(save);
    return this.saving;
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    await this.app?.close();
    await this.consumer?.stop();
    await this.proposing.catch(() => undefined);
    if (this.pipeline) await this.checkpoint();
    await this.producer?.disconnect();
  }
}

export async function runTrainer(runtime: Runtime): Promise<number> {
  const trainer = new Trainer({ runtime });
  runtime.lifecycle.add('trainer', () => trainer.stop());
  runtime.lifecycle.installSignalHandlers();
  await trainer.start();
  process.send?.({ ready: true });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
