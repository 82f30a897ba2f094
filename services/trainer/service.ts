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
import { RecordRejectedError, invariant } from '../common/errors.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { createProducer } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { FeatureSpec } from '../model/features.js';
import { initBackend } from '../model/backend.js';
import { loadRegistryConfig } from '../registry/config.js';
import { RegistryAdmin } from '../registry/admin.js';
import { FileModelRegistry } from '../registry/store.js';
import type { CandidateResult } from './candidates.js';
import { CheckpointStore } from './checkpoint.js';
import { loadTrainerConfig, type TrainerConfig } from './config.js';
import { TrainerCore, trainerCoreSettings, type CoreRecord } from './core.js';
import { buildTrainerApp } from './http.js';
import { DEFAULT_LABEL_POLICY, type LabelPolicy, type MergeCounters } from './label-policy.js';
import type { LabelerReport } from './labeler-reliability.js';
import { labelerReliabilityMetrics, trainerMetrics } from './metrics.js';
import { Proposals } from './proposals.js';
import { resumePoint } from './resume.js';
import type { CandidateTrigger } from './triggers.js';

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
  private core!: TrainerCore;
  private producer: Producer | undefined;
  private consumer: RecordConsumer<Subscriptions> | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  /** Checkpoints are written one at a time, in order. */
  private saving: Promise<void> = Promise.resolve();
  private proposals: Proposals | undefined;
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
    this.spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
    this.store = new CheckpointStore(this.config.FW_TRAINER_DIR);
    this.registry = new FileModelRegistry(loadRegistryConfig().FW_REGISTRY_DIR);
    this.policy = {
      ...DEFAULT_LABEL_POLICY,
      conflict: this.config.FW_TRAINER_HUMAN_POLICY,
      humanWeight: this.config.FW_TRAINER_HUMAN_WEIGHT,
      censoredSegments: this.config.FW_TRAINER_CENSORED_SEGMENTS,
      rememberOutcomes: this.config.FW_TRAINER_REMEMBER_OUTCOMES,
      reliability: {
        minJudged: this.config.FW_TRAINER_LABELER_MIN_JUDGED,
        windowDays: this.config.FW_TRAINER_LABELER_WINDOW_DAYS,
      },
    };
    this.metrics = trainerMetrics(options.runtime.metrics);
    // Read at scrape time; before start() there is no merger yet.
    labelerReliabilityMetrics(options.runtime.metrics, () =>
      (this.core as TrainerCore | undefined) ? this.core.pipeline.merger.reliability.reports() : [],
    );
  }

  get learned(): number {
    return this.core.learned;
  }

  /** Each labeler measured against outcomes, and what the merger did with human labels. */
  labelers(): { labelers: LabelerReport[]; counters: MergeCounters } {
    const { merger } = this.core.pipeline;
    return { labelers: merger.reliability.reports(), counters: { ...merger.counters } };
  }

  /** Examples in the holdout (taken in, not learned from yet). */
  get heldOut(): number {
    return this.core.pipeline.learner.holdout.length;
  }

  get waitingHumanLabels(): number {
    return this.core.pipeline.merger.waitingCount;
  }

  /** The HTTP port it listens on (FW_TRAINER_HTTP_PORT, or the one picked for 0). */
  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  /** The pipeline's learner (tests compare its weights with a replay). */
  get learner() {
    return this.core.pipeline.learner;
  }

  async start(): Promise<void> {
    const { runtime } = this.options;
    await initBackend(runtime.logger);
    const start = await resumePoint({
      store: this.store,
      registry: this.registry,
      kafka: runtime.kafka,
      spec: this.spec,
      inputs: [this.topics.feedback, this.topics.humanLabels],
      warmStart: this.config.FW_TRAINER_WARM_START,
      logger: this.log,
    });
    this.core = new TrainerCore(
      trainerCoreSettings(this.config, this.spec, this.policy, this.topics),
      start,
      Date.now(),
    );
    this.log.info(
      {
        checkpoint: this.store.path,
        seq: this.core.seq,
        learned: this.learned,
        offsets: this.core.offsets,
        warmStart: this.core.warmStart,
      },
      start.checkpoint
        ? 'resuming from the checkpoint'
        : start.warm
          ? `no checkpoint: starting from the champion ${start.warm.version}`
          : 'no checkpoint: starting from zero',
    );
    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();
    const admin = new RegistryAdmin(
      this.registry,
      this.spec,
      { producer: this.producer, codecs: runtime.codecs, topic: this.topics.modelUpdates },
      runtime.logger,
    );
    this.proposals = new Proposals({
      core: this.core,
      admin,
      spec: this.spec,
      config: this.config,
      metrics: this.metrics,
      log: this.log,
      onCandidate: (result) => this.emit('candidate', result),
    });
    this.consumer = this.createConsumer(this.producer);
    await this.consumer.start();
    // A quiet stream still gets its last examples checkpointed.
    this.ticker = setInterval(
      () => {
        if (this.core.checkpoints.dueOnTick(Date.now()))
          this.checkpoint().catch((err: unknown) => this.log.error({ err }, 'checkpoint failed'));
      },
      Math.min(1000, this.config.FW_TRAINER_CHECKPOINT_MS),
    );
    if (this.options.http !== false) await this.listen();
  }

  private createConsumer(producer: Producer): RecordConsumer<Subscriptions> {
    const { runtime } = this.options;
    const consumer = new RecordConsumer<Subscriptions>({
      kafka: runtime.kafka,
      groupId: this.config.FW_TRAINER_GROUP,
      service: 'trainer',
      subscriptions: { [this.topics.feedback]: 'labeledExample', [this.topics.humanLabels]: 'humanLabel' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, this.topics.deadLetters),
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
      handle: (records) => this.takeBatch(records),
    });
    // The checkpoint, not the group's committed offsets, says where to continue: a partition it
    // names resumes at its offset; one it does not name has taught the learner nothing, so it is
    // read from its first record (offset 0 is before the log start once retention deleted the
    // oldest; the consumer then resets to the earliest, as fromBeginning says). The group's
    // offsets are committed after every batch, ahead of the checkpoint: resuming from them would
    // skip what was learned after the last checkpoint and lost in a crash.
    const kafkaConsumer = consumer.consumer;
    kafkaConsumer.on(kafkaConsumer.events.GROUP_JOIN, ({ payload }) => {
      const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
      for (const [topic, partitions] of Object.entries(assignment))
        for (const partition of partitions ?? [])
          kafkaConsumer.seek({ topic, partition, offset: this.core.offsets[`${topic}:${partition}`] ?? '0' });
    });
    return consumer;
  }

  /** One batch through the core, then what it says is due. */
  private async takeBatch<R extends CoreRecord>(records: R[]): Promise<{ rejected: Rejection<R>[] }> {
    const taken = this.core.take(records);
    this.metrics.skipped.inc(taken.skipped);
    for (const e of taken.examples) this.metrics.examples.inc({ source: e.labelSource });
    for (const alarm of taken.alarms) {
      this.metrics.driftAlarms.inc();
      this.log.warn(alarm, 'progressive log loss rose significantly: proposing a candidate');
    }
    const { learner } = this.core.pipeline;
    this.metrics.learned.set(this.learned);
    if (Number.isFinite(learner.progressiveLogLoss)) this.metrics.progressive.set(learner.progressiveLogLoss);
    for (const [name, value] of Object.entries(learner.selection().progressiveLogLoss))
      if (value !== null) this.metrics.learners.set({ learner: name }, value);
    if (this.core.checkpoints.dueAfterBatch(Date.now())) await this.checkpoint();
    const trigger = this.core.candidates.due(Date.now());
    if (trigger) await this.proposer.propose(trigger);
    const { baselines } = this.core;
    if (baselines.due(this.core.taken) && baselines.on('examples')) await this.proposer.publishBaseline();
    this.emit('batch');
    return {
      rejected: taken.rejected.map(({ index, reason }) => ({
        record: records[index] as R,
        error: new RecordRejectedError(reason),
      })),
    };
  }

  private async listen(): Promise<void> {
    const app = buildTrainerApp({
      metrics: this.options.runtime.metrics,
      adminToken: loadRegistryConfig().FW_ADMIN_TOKEN,
      logger: this.log,
      health: () => ({ ok: true, learned: this.learned, heldOut: this.heldOut, seq: this.core.seq }),
      readiness: () =>
        this.consumer
          ? readinessOf(this.consumer.health(), 'labeled examples')
          : { ready: false, reason: 'starting' },
      propose: (trigger) => this.proposeCandidate(trigger),
      labelers: () => this.labelers(),
    });
    await app.listen({ host: '0.0.0.0', port: this.config.FW_TRAINER_HTTP_PORT });
    this.app = app;
  }

  /**
   * Resolves once the registry changes queued so far are done: candidates, and the baseline a
   * refused one publishes after it (a caller reading the champion then reads the settled one).
   */
  async registryChangesSettled(): Promise<void> {
    await this.proposals?.settled();
  }

  /**
   * Registers the learner's current weights as a candidate version, judged by the gate against
   * the champion and the baseline on the holdout (and against the champion on the trusted
   * reference set); promoted only when accepted. One at a time.
   */
  proposeCandidate(trigger: CandidateTrigger = 'operator'): Promise<CandidateResult | null> {
    return this.proposer.propose(trigger);
  }

  private get proposer(): Proposals {
    invariant(this.proposals, 'the trainer is not started');
    return this.proposals;
  }

  /** Learner state and the offsets it reflects, in one atomic file. */
  checkpoint(): Promise<void> {
    // Taken together, synchronously: the state and the offsets it reflects.
    const checkpoint = this.core.nextCheckpoint(Date.now());
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
    await this.proposals?.settled();
    if (this.core) await this.checkpoint();
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
