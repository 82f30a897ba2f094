// `flywheel joiner`: joins fw.predictions with the purchases into fw.feedback.labeled, exactly
// once across restarts, with labels that depend on the events alone.
//
// Two stages in one process:
// - The repartitioner (repartition.ts) moves fw.events.purchase onto fw.purchases.repartitioned by
//   murmur2 of the userId, whatever partitioner the producer used, so partition N of the predictions
//   and of the repartitioned purchases hold the same users.
// - The join reads both, partition N of each in one member (CoPartitionedAssigner), and knows how
//   far each input is complete from the stage that wrote it (progress.ts, upstream.ts): the scorer's
//   committed progress on the click topic, the repartitioner's on the purchase topic. A lagging or
//   stopped stage holds the watermark back (join.ts).
//
// Exactly once, by Kafka transactions plus a Redis state that records which batch it reflects:
// - One transactional producer per input partition (`<prefix>-<partition>`): a restarted or
//   rebalanced owner fences the previous one, whose open transaction is aborted.
// - Per batch: (1) the join runs in memory; (2) one Lua call writes the state changes, the new
//   input offsets, a batch number `seq` and the batch's output records (the outbox) to Redis;
//   (3) one Kafka transaction publishes the outputs and commits the input offsets with `seq` in
//   the offset metadata.
// - On taking a partition, the owner compares Redis's seq with the committed one: equal, all is
//   in step; Redis one ahead, the crash fell between (2) and (3), so the outbox is published again
//   in a new transaction; anything else (Redis lost writes) replays the inputs from Redis's
//   offsets, and the deterministic example ids let a consumer drop what it saw twice.
// A failure that is not a record's (Redis, Kafka) drops the partition's in-memory state and tries
// the batch again from Redis, with backoff; /readyz says not ready meanwhile.
// Where it lives: partitions.ts owns and takes over partitions (common/exactly-once.ts),
// batch.ts applies a batch, common/transactions.ts is the Kafka transaction; this file wires the
// consumers, pollers, ticker and HTTP.
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { Admin, Consumer } from 'kafkajs';
import type { Redis } from 'ioredis';
import { FlywheelError, invariant } from '../common/errors.js';
import { CoPartitionedAssigner } from '../common/co-partitioned-assigner.js';
import { FailingPartitions, failingReason } from '../common/batch-retry.js';
import { groupTimeouts, type Readiness } from '../common/consumer.js';
import { highWatermarkAdmin } from '../common/high-watermarks.js';
import type { Logger } from '../common/logger.js';
import { createRedis } from '../common/redis.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { JoinBatches } from './batch.js';
import { joinConfigFrom, loadJoinerConfig, type JoinerConfig } from './config.js';
import type { JoinConfig, JoinCounters, JoinInput } from './join.js';
import { buildJoinerApp } from './http.js';
import { JoinQuality, joinerMetrics } from './metrics.js';
import { INPUTS, JoinPartitions } from './partitions.js';
import { Repartitioner } from './repartition.js';
import { RedisJoinState } from './state.js';
import { UpstreamPoller } from './upstream.js';

export interface JoinerTopics {
  predictions: string;
  /** Where producers write purchases (repartitioned by the joiner). */
  purchases: string;
  /** The purchases by murmur2(userId), co-partitioned with the predictions. */
  repartitioned: string;
  /** The scorer's input: its progress on it says how far the predictions are complete. */
  clicks: string;
  feedback: string;
  deadLetters: string;
}

export interface JoinerOptions {
  runtime: Runtime;
  config?: JoinerConfig;
  topics?: Partial<JoinerTopics>;
  /** Serve /metrics, /healthz and /readyz; off in tests that only need the stream. */
  http?: boolean;
  /** Called between the state write and the Kafka commit (tests crash the process there). */
  afterStateWrite?: (partition: number, seq: number) => void;
}

/** Emits 'committed' ({ partition, seq }) after each batch is durable in Redis and Kafka. */
export class Joiner extends EventEmitter<{ committed: [{ partition: number; seq: number }] }> {
  readonly topics: JoinerTopics;
  readonly config: JoinerConfig;
  readonly joinConfig: JoinConfig;
  private readonly log: Logger;
  private partitions: JoinPartitions | undefined;
  private batches: JoinBatches | undefined;
  private readonly failing = new FailingPartitions();
  private redis: Redis | undefined;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private inGroup = false;
  private repartitioner: Repartitioner | undefined;
  private pollers: Record<JoinInput, UpstreamPoller> | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private stopping = false;
  private readonly metrics;
  private readonly quality: JoinQuality;

  constructor(private readonly options: JoinerOptions) {
    super();
    this.config = options.config ?? loadJoinerConfig();
    this.joinConfig = joinConfigFrom(this.config);
    this.topics = {
      predictions: TOPICS.predictions,
      purchases: TOPICS.purchases,
      repartitioned: TOPICS.repartitionedPurchases,
      clicks: TOPICS.clicks,
      feedback: TOPICS.feedback,
      deadLetters: TOPICS.deadLetters,
      ...options.topics,
    };
    this.log = options.runtime.logger.child({ component: 'joiner' });
    this.metrics = joinerMetrics(options.runtime.metrics);
    this.quality = new JoinQuality(this.log, this.config.FW_JOIN_UNATTRIBUTED_WARN_RATE);
  }

  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  /** Ready while both stages consume, no batch is failing and the upstream progress is readable. */
  /** Clicks waiting for their outcome, over all owned partitions. */
  get pending(): number {
    return this.partitions?.pending ?? 0;
  }

  /** Counters summed over owned partitions (since each partition's state began). */
  counters(): Partial<JoinCounters> {
    return this.partitions?.counters() ?? {};
  }

  /** Where each owned partition stands: its watermark, its inputs' progress and read position. */
  partitionStates() {
    return this.partitions?.partitionStates() ?? [];
  }

  private get parts(): JoinPartitions {
    invariant(this.partitions, 'the joiner is not started');
    return this.partitions;
  }

  private get work(): JoinBatches {
    invariant(this.batches, 'the joiner is not started');
    return this.batches;
  }

  readiness(): Readiness {
    if (!this.inGroup || !this.repartitioner?.isRunning)
      return { ready: false, reason: 'not in its consumer groups (yet)' };
    const failing = [...this.failing.list(), ...this.repartitioner.failures];
    const first = failing[0];
    if (first) return { ready: false, reason: failingReason(first), failing };
    for (const input of INPUTS) {
      const since = this.pollers?.[input].failing;
      if (since !== null && since !== undefined && Date.now() - since > 10_000)
        return { ready: false, reason: `the ${input} progress cannot be read: labels wait` };
    }
    return { ready: true };
  }

  async start(): Promise<void> {
    try {
      await this.open();
    } catch (error) {
      // What was opened is closed again: a failed start leaves no client keeping the process up.
      await this.stop().catch((err: unknown) => this.log.warn({ err }, 'closing after a failed start'));
      throw error;
    }
  }

  private async open(): Promise<void> {
    const { runtime } = this.options;
    this.redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await this.redis.connect();
    const state = new RedisJoinState(this.redis, this.config.FW_JOINER_GROUP);
    // End offsets as high watermarks: the upstream progress is only sound against every record
    // written, not the last stable offset an open transaction holds back (high-watermarks.ts).
    this.admin = highWatermarkAdmin(runtime.kafka);
    await this.admin.connect();
    const context = {
      runtime,
      config: this.config,
      joinConfig: this.joinConfig,
      topics: this.topics,
      metrics: this.metrics,
      log: this.log,
      state,
    };
    this.partitions = new JoinPartitions({ ...context, admin: this.admin });
    await this.checkCoPartitioned();

    await this.startUpstream();
    this.batches = new JoinBatches({
      ...context,
      quality: this.quality,
      partitions: this.partitions,
      pollers: this.pollers as Record<JoinInput, UpstreamPoller>,
      ...(this.options.afterStateWrite ? { afterStateWrite: this.options.afterStateWrite } : {}),
      onCommitted: (partition, seq) => this.emit('committed', { partition, seq }),
      failing: this.failing,
      stopping: () => this.stopping,
    });

    await this.startJoinConsumer();
    const tickMs = Math.max(
      20,
      Math.min(1000, Math.floor(this.joinConfig.idleMs / 2), this.config.FW_JOIN_PROGRESS_POLL_MS),
    );
    this.ticker = setInterval(() => void this.tickAll(), tickMs);

    if (this.options.http !== false) {
      this.app = buildJoinerApp({
        metrics: runtime.metrics,
        health: () => ({ ok: true, pending: this.pending, partitions: this.partitionStates() }),
        readiness: () => this.readiness(),
      });
      await this.app.listen({ host: '0.0.0.0', port: this.config.FW_JOINER_HTTP_PORT });
    }
    this.log.info(
      {
        group: this.config.FW_JOINER_GROUP,
        join: this.joinConfig,
        predictionProgress: this.config.FW_JOIN_PREDICTION_PROGRESS,
        port: this.port,
      },
      'joiner started',
    );
  }

  /** The repartitioner, and the pollers that read how far each input is complete. */
  private async startUpstream(): Promise<void> {
    const { runtime } = this.options;
    this.repartitioner = new Repartitioner({
      runtime,
      groupId: this.repartitionGroup,
      transactionalIdPrefix: `${this.config.FW_JOINER_TRANSACTIONAL_ID}.repartition`,
      source: this.topics.purchases,
      target: this.topics.repartitioned,
      deadLetters: this.topics.deadLetters,
      sessionTimeoutMs: this.config.FW_CONSUMER_SESSION_TIMEOUT_MS,
      maxBatchBytes: this.config.FW_JOINER_MAX_BATCH_BYTES,
    });
    await this.repartitioner.start();

    const fromScorer = this.config.FW_JOIN_PREDICTION_PROGRESS === 'scorer';
    const poller = (derived: string, stage: { groupId: string; source: string } | null) =>
      new UpstreamPoller(this.admin as Admin, { derived, stage }, this.joinConfig, this.log);
    this.pollers = {
      prediction: poller(
        this.topics.predictions,
        fromScorer ? { groupId: this.config.FW_SCORER_GROUP, source: this.topics.clicks } : null,
      ),
      purchase: poller(this.topics.repartitioned, {
        groupId: this.repartitionGroup,
        source: this.topics.purchases,
      }),
    };
    for (const p of Object.values(this.pollers)) p.start(this.config.FW_JOIN_PROGRESS_POLL_MS);
  }

  /** The join's consumer: both inputs, partition N of each in one member. */
  private async startJoinConsumer(): Promise<void> {
    const { runtime } = this.options;
    this.consumer = runtime.kafka.consumer({
      groupId: this.config.FW_JOINER_GROUP,
      partitionAssigners: [CoPartitionedAssigner],
      ...groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      maxWaitTimeInMs: 200,
      maxBytesPerPartition: this.config.FW_JOINER_MAX_BATCH_BYTES,
      readUncommitted: false,
    });
    this.parts.consumer = this.consumer;
    const { GROUP_JOIN, END_BATCH_PROCESS, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.inGroup = true;
      const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
      const mine = new Set(assignment[this.topics.predictions] ?? []);
      for (const partition of [...this.parts.owned.keys()])
        if (!mine.has(partition)) void this.parts.withLock(partition, () => this.parts.release(partition));
      // Take new partitions now, not at their first batch: a partition whose input is all read
      // still has windows to close (idle rule) and may have an open transaction to abort.
      for (const partition of mine) {
        void this.parts
          .withLock(partition, async () => {
            if (!this.parts.owned.has(partition) && !this.stopping) await this.parts.take(partition);
          })
          .catch((err: unknown) =>
            this.log.warn({ err, partition }, 'taking the partition failed; retrying at its next batch'),
          );
      }
    });
    // A fetch of nothing but transaction markers moves the read position past them (the
    // repartitioned topic is written in transactions): that is how its end offset is reached.
    this.consumer.on(END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize !== 0) return;
      const owned = this.parts.owned.get(payload.partition);
      const input = this.inputOf(payload.topic);
      if (owned) {
        const next = BigInt(payload.lastOffset) + 1n;
        if (next > owned.fetched[input]) owned.fetched[input] = next;
      }
    });
    this.consumer.on(CRASH, ({ payload }) => {
      this.inGroup = payload.restart;
      if (!payload.restart) runtime.lifecycle.fail('joiner consumer', payload.error);
    });
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [this.topics.predictions, this.topics.repartitioned],
      fromBeginning: true,
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) =>
        this.parts.withLock(payload.batch.partition, () => this.work.processBatch(payload)),
    });
  }

  private get repartitionGroup(): string {
    return `${this.config.FW_JOINER_GROUP}.repartition`;
  }

  /** The predictions and the repartitioned purchases must have one partition count. */
  private async checkCoPartitioned(): Promise<void> {
    const admin = this.admin as Admin;
    const { topics } = await admin.fetchTopicMetadata({
      topics: [this.topics.predictions, this.topics.repartitioned],
    });
    const count = (topic: string) => topics.find((t) => t.name === topic)?.partitions.length ?? 0;
    const [predictions, repartitioned] = [count(this.topics.predictions), count(this.topics.repartitioned)];
    if (predictions !== repartitioned)
      throw new FlywheelError(
        'FW_TOPIC_LAYOUT',
        `${this.topics.predictions} has ${predictions} partitions and ${this.topics.repartitioned} ${repartitioned}: they must be equal (flywheel topics ensure creates both with FW_TOPIC_PARTITIONS)`,
      );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    await this.app?.close();
    await this.consumer?.disconnect();
    await this.repartitioner?.stop();
    const partitions = this.partitions;
    await partitions?.settle();
    for (const partition of [...(partitions?.owned.keys() ?? [])]) await partitions?.release(partition);
    for (const poller of Object.values(this.pollers ?? {})) await poller.stop();
    await this.admin?.disconnect();
    await this.redis?.quit();
  }

  private inputOf(topic: string): JoinInput {
    return topic === this.topics.predictions ? 'prediction' : 'purchase';
  }

  /** Progress and the clock decide windows of partitions with no new input too (see join.ts). */
  private async tickAll(): Promise<void> {
    for (const partition of [...this.parts.owned.keys()]) {
      await this.parts
        .withLock(partition, async () => {
          const owned = this.parts.owned.get(partition);
          if (!owned || this.stopping) return;
          await this.work.tick(owned, Date.now());
        })
        .catch(async (error: unknown) => {
          this.log.warn({ err: error, partition }, 'closing windows failed; reloading the partition');
          await this.parts.withLock(partition, () => this.parts.release(partition));
        });
    }
    this.parts.applyBackpressure();
  }
}

export async function runJoiner(runtime: Runtime): Promise<number> {
  const joiner = new Joiner({ runtime });
  runtime.lifecycle.add('joiner', () => joiner.stop());
  runtime.lifecycle.installSignalHandlers();
  await joiner.start();
  process.send?.({ ready: true, port: joiner.port });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
