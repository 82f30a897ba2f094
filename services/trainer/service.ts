// `flywheel trainer` (first part: continuous learning): consumes fw.feedback.labeled and
// fw.labels.human, merges human and outcome labels by the configured policy, and feeds the
// online learner; checkpoints the learner with the input offsets it reflects, atomically.
// Exactly-once learning across restarts: on start the checkpoint is loaded and every input
// partition is sought to its offset in it, and records before those offsets are skipped, so an
// example is learned once whatever was fetched or committed before a crash. One trainer per
// group: the checkpoint covers every partition. Candidate versions, the gate and promotion come
// next (gate.ts is ready).
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Producer } from 'kafkajs';
import { RecordConsumer, groupTimeouts } from '../common/consumer.js';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { createProducer } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import { counter, gauge } from '../common/metrics.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { DEFAULT_FTRL } from '../model/ftrl.js';
import { FeatureSpec } from '../model/features.js';
import { loadRegistryConfig } from '../registry/config.js';
import { initBackend } from '../model/backend.js';
import { HeuristicBaseline } from '../model/baseline.js';
import { RegistryAdmin } from '../registry/admin.js';
import { FileModelRegistry } from '../registry/store.js';
import { proposeCandidate, type CandidateResult } from './candidates.js';
import { CheckpointStore } from './checkpoint.js';
import { DEFAULT_GATE } from './gate.js';
import { loadTrainerConfig, type TrainerConfig } from './config.js';
import { DEFAULT_LABEL_POLICY, LabelMerger } from './label-policy.js';
import { OnlineLearner, heldExample } from './online.js';

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

/** Emits 'batch' after each batch of records is taken in. */
export class Trainer extends EventEmitter<{ batch: [] }> {
  readonly topics: TrainerTopics;
  readonly config: TrainerConfig;
  private readonly log: Logger;
  private readonly spec: FeatureSpec;
  private readonly store: CheckpointStore;
  private learner!: OnlineLearner;
  private merger!: LabelMerger;
  /** `topic:partition` → next offset to read; what the learner's state reflects. */
  private offsets: Record<string, string> = {};
  private seq = 0;
  private sinceCheckpoint = 0;
  private lastCheckpointAt = Date.now();
  private producer: Producer | undefined;
  private consumer: RecordConsumer<Subscriptions> | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  /** Checkpoints are written one at a time, in order. */
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  private sinceCandidate = 0;
  private baseline = new HeuristicBaseline();
  private readonly labelSources: Record<string, number> = {};
  private admin: RegistryAdmin | undefined;
  private readonly metrics;

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
    const registry = options.runtime.metrics;
    this.metrics = {
      examples: counter(registry, {
        name: 'flywheel_trainer_examples_total',
        help: 'Examples taken into training, by label source',
        labelNames: ['source'],
      }),
      learned: gauge(registry, { name: 'flywheel_trainer_learned', help: 'Examples learned from in total' }),
      progressive: gauge(registry, {
        name: 'flywheel_trainer_progressive_logloss',
        help: 'Log loss of predictions made just before learning (recent window)',
      }),
      checkpoints: counter(registry, {
        name: 'flywheel_trainer_checkpoints_total',
        help: 'Checkpoints written',
      }),
      candidates: counter(registry, {
        name: 'flywheel_trainer_candidates_total',
        help: 'Candidate versions registered, by what the gate made of them',
        labelNames: ['outcome'],
      }),
      skipped: counter(registry, {
        name: 'flywheel_trainer_replayed_records_total',
        help: 'Records read again after a restart and skipped (already in the checkpoint)',
      }),
    };
  }

  get learned(): number {
    return this.learner.learned;
  }

  /** Examples in the holdout (taken in, not learned from yet). */
  get heldOut(): number {
    return this.learner.holdout.length;
  }

  get waitingHumanLabels(): number {
    return this.merger.waitingCount;
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
    const options = {
      dimension: this.spec.dimension,
      params: checkpoint?.params ?? DEFAULT_FTRL,
      holdoutSize: this.config.FW_TRAINER_HOLDOUT,
      progressiveWindow: 10_000,
    };
    this.learner = new OnlineLearner(options, checkpoint?.state);
    this.merger = new LabelMerger(
      {
        ...DEFAULT_LABEL_POLICY,
        conflict: this.config.FW_TRAINER_HUMAN_POLICY,
        humanWeight: this.config.FW_TRAINER_HUMAN_WEIGHT,
      },
      checkpoint?.waitingHumanLabels ?? [],
    );
    this.offsets = { ...(checkpoint?.offsets ?? {}) };
    if (checkpoint?.baseline) this.baseline = HeuristicBaseline.fromJSON(checkpoint.baseline);
    this.seq = checkpoint?.seq ?? 0;
    this.log.info(
      { checkpoint: this.store.path, seq: this.seq, learned: this.learner.learned, offsets: this.offsets },
      checkpoint ? 'resuming from the checkpoint' : 'no checkpoint: starting from scratch',
    );

    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();
    this.admin = new RegistryAdmin(
      new FileModelRegistry(loadRegistryConfig().FW_REGISTRY_DIR),
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
      consumerConfig: groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      handle: async (records) => {
        for (const record of records) {
          const key = `${record.topic}:${record.partition}`;
          const next = this.offsets[key];
          if (next !== undefined && BigInt(record.offset) < BigInt(next)) {
            this.metrics.skipped.inc();
            continue;
          }
          const examples =
            record.kind === 'humanLabel'
              ? this.merger.addHumanLabel(record.value as HumanLabel)
              : this.merger.addExample(record.value as LabeledExample);
          for (const e of examples) {
            this.metrics.examples.inc({ source: e.labelSource });
            this.labelSources[e.labelSource] = (this.labelSources[e.labelSource] ?? 0) + 1;
          }
          const learnedNow = this.learner.add(examples.map(heldExample));
          // The baseline learns what the model learns: the holdout stays unseen by both.
          for (const e of learnedNow) this.baseline.update(e, e.label, e.weight);
          this.sinceCheckpoint += learnedNow.length;
          this.sinceCandidate += learnedNow.length;
          this.offsets[key] = String(BigInt(record.offset) + 1n);
          this.dirty = true;
        }
        this.metrics.learned.set(this.learner.learned);
        const loss = this.learner.progressiveLogLoss;
        if (Number.isFinite(loss)) this.metrics.progressive.set(loss);
        if (
          this.sinceCheckpoint >= this.config.FW_TRAINER_CHECKPOINT_EVERY ||
          Date.now() - this.lastCheckpointAt >= this.config.FW_TRAINER_CHECKPOINT_MS
        )
          await this.checkpoint();
        const every = this.config.FW_TRAINER_CANDIDATE_EVERY;
        if (every > 0 && this.sinceCandidate >= every) await this.proposeCandidate();
        this.emit('batch');
      },
    });
    // The checkpoint, not the group's committed offsets, says where to continue.
    const kafkaConsumer = this.consumer.consumer;
    kafkaConsumer.on(kafkaConsumer.events.GROUP_JOIN, ({ payload }) => {
      const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
      for (const [topic, partitions] of Object.entries(assignment)) {
        for (const partition of partitions ?? []) {
          const offset = this.offsets[`${topic}:${partition}`];
          if (offset !== undefined) kafkaConsumer.seek({ topic, partition, offset });
        }
      }
    });
    await this.consumer.start();
    // A quiet stream still gets its last examples checkpointed.
    this.ticker = setInterval(
      () => {
        if (this.dirty && Date.now() - this.lastCheckpointAt >= this.config.FW_TRAINER_CHECKPOINT_MS)
          this.checkpoint().catch((err: unknown) => this.log.error({ err }, 'checkpoint failed'));
      },
      Math.min(1000, this.config.FW_TRAINER_CHECKPOINT_MS),
    );
    if (this.options.http !== false) {
      this.app = Fastify({ bodyLimit: 1024 });
      this.app.get('/healthz', () => ({ ok: true, learned: this.learner.learned, seq: this.seq }));
      this.app.get('/metrics', async (_request, reply) =>
        reply.type(runtime.metrics.contentType).send(await runtime.metrics.metrics()),
      );
      await this.app.listen({ host: '0.0.0.0', port: this.config.FW_TRAINER_HTTP_PORT });
    }
  }

  /**
   * Registers the learner's current weights as a candidate version, judged by the gate against
   * the champion and the baseline on the holdout; promoted only when accepted.
   */
  async proposeCandidate(): Promise<CandidateResult | null> {
    this.sinceCandidate = 0;
    if (this.learner.holdout.length < this.config.FW_TRAINER_GATE_MIN_HOLDOUT) {
      this.log.info(
        { holdout: this.learner.holdout.length },
        'not enough holdout examples for a candidate yet',
      );
      return null;
    }
    const result = await proposeCandidate({
      admin: this.admin as RegistryAdmin,
      spec: this.spec,
      learner: this.learner,
      baseline: this.baseline,
      gate: {
        ...DEFAULT_GATE,
        minHoldout: this.config.FW_TRAINER_GATE_MIN_HOLDOUT,
        minImprovement: this.config.FW_TRAINER_GATE_MIN_IMPROVEMENT,
        alpha: this.config.FW_TRAINER_GATE_ALPHA,
      },
      lineage: {
        ranges: Object.entries(this.offsets).map(([key, to]) => {
          const at = key.lastIndexOf(':');
          // Learned from the start of each partition; the newest (holdout) examples are not in it.
          return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)), from: '0', to };
        }),
        labelSources: { ...this.labelSources },
      },
      promoteTo: this.config.FW_TRAINER_PROMOTE_TO,
      challengerWeight: this.config.FW_TRAINER_CHALLENGER_WEIGHT,
    });
    this.metrics.candidates.inc({ outcome: result.alias ?? 'rejected' });
    this.log.info(
      {
        version: result.version,
        alias: result.alias,
        reasons: result.decision.reasons,
        holdout: result.decision.holdout,
      },
      result.alias
        ? `candidate ${result.version} promoted to ${result.alias}`
        : `candidate ${result.version} rejected`,
    );
    return result;
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

  /** Learner state and the offsets it reflects, in one atomic file. */
  checkpoint(): Promise<void> {
    // Taken together, synchronously: the state and the offsets it reflects.
    const seq = ++this.seq;
    const offsets = { ...this.offsets };
    const state = this.learner.state();
    const waitingHumanLabels = this.merger.waitingLabels();
    const baseline = this.baseline.toJSON();
    this.sinceCheckpoint = 0;
    this.dirty = false;
    this.lastCheckpointAt = Date.now();
    const save = async () => {
      await this.store.save({
        seq,
        writtenAt: Date.now(),
        featureSpecHash: this.spec.hash,
        params: this.learner.options.params,
        offsets,
        state,
        waitingHumanLabels,
        baseline,
      });
      this.metrics.checkpoints.inc();
      this.options.onCheckpoint?.({ seq, learned: state.learned, holdout: state.holdout.length, offsets });
    };
    this.saving = this.saving.catch(() => undefined).then(save);
    return this.saving;
  }

  async stop(): Promise<void> {
    clearInterval(this.ticker);
    await this.app?.close();
    await this.consumer?.stop();
    if (this.learner) await this.checkpoint();
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
