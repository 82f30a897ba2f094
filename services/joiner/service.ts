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
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Admin, Consumer, EachBatchPayload, KafkaMessage, Message, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import { CoPartitionedAssigner } from '../common/co-partitioned-assigner.js';
import { FailingPartitions, backoffUpTo, failingReason, retryUntilDone } from '../common/batch-retry.js';
import { classifyMessage, groupTimeouts, type Readiness } from '../common/consumer.js';
import type { Prediction } from '../common/contracts.js';
import { deadLetterHeaders, toDeadLetter } from '../common/dead-letters.js';
import { createProducer, sendInChunks } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import { createRedis } from '../common/redis.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { joinConfigFrom, loadJoinerConfig, type JoinerConfig } from './config.js';
import { planBackpressure } from './backpressure.js';
import { pendingRef, purchaseRef, toLabeledExample } from './examples.js';
import {
  PartitionJoin,
  type InputProgress,
  type JoinConfig,
  type JoinCounters,
  type JoinDecision,
  type JoinInput,
} from './join.js';
import { JoinQuality, joinerMetrics } from './metrics.js';
import { Repartitioner } from './repartition.js';
import { RedisJoinState, StateDelta, type InputOffsets, type OutboxMessage } from './state.js';
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

interface OwnedPartition {
  partition: number;
  join: PartitionJoin;
  producer: Producer;
  epoch: number;
  seq: number;
  offsets: InputOffsets;
  /** Next offset of each input read (applied, or skipped as transaction markers). */
  fetched: Record<JoinInput, bigint>;
  /** Wall clock of the last new input record (stream progress). */
  lastInputAt: Record<JoinInput, number>;
  paused: boolean;
}

const SEQ_METADATA = /^flywheel-join seq=(\d+)$/;
const INPUTS = ['prediction', 'purchase'] as const;

/** Emits 'committed' ({ partition, seq }) after each batch is durable in Redis and Kafka. */
export class Joiner extends EventEmitter<{ committed: [{ partition: number; seq: number }] }> {
  readonly topics: JoinerTopics;
  readonly config: JoinerConfig;
  readonly joinConfig: JoinConfig;
  private readonly log: Logger;
  private readonly owned = new Map<number, OwnedPartition>();
  private readonly locks = new Map<number, Promise<unknown>>();
  private readonly failing = new FailingPartitions();
  private redis: Redis | undefined;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private inGroup = false;
  private repartitioner: Repartitioner | undefined;
  private pollers: Record<JoinInput, UpstreamPoller> | undefined;
  private state: RedisJoinState | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private stopping = false;
  private warnedCap = 0;
  private warnedLate = 0;
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

  /** Clicks waiting for their outcome, over all owned partitions. */
  get pending(): number {
    let total = 0;
    for (const owned of this.owned.values()) total += owned.join.openCount;
    return total;
  }

  /** Counters summed over owned partitions (since each partition's state began). */
  counters(): Partial<JoinCounters> {
    const sum: Partial<JoinCounters> = {};
    for (const owned of this.owned.values())
      for (const name of Object.keys(owned.join.counters) as (keyof JoinCounters)[])
        sum[name] = (sum[name] ?? 0) + owned.join.counters[name];
    return sum;
  }

  /** Where each owned partition stands: its watermark, its inputs' progress and read position. */
  partitionStates() {
    return [...this.owned.values()].map((o) => ({
      partition: o.partition,
      watermark: o.join.watermark,
      pending: o.join.openCount,
      progress: { prediction: o.join.progressOf('prediction'), purchase: o.join.progressOf('purchase') },
      fetched: { prediction: String(o.fetched.prediction), purchase: String(o.fetched.purchase) },
    }));
  }

  /** Ready while both stages consume, no batch is failing and the upstream progress is readable. */
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
    this.state = new RedisJoinState(this.redis, this.config.FW_JOINER_GROUP);
    this.admin = runtime.kafka.admin();
    await this.admin.connect();
    await this.checkCoPartitioned();

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

    this.consumer = runtime.kafka.consumer({
      groupId: this.config.FW_JOINER_GROUP,
      partitionAssigners: [CoPartitionedAssigner],
      ...groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      maxWaitTimeInMs: 200,
      maxBytesPerPartition: this.config.FW_JOINER_MAX_BATCH_BYTES,
      readUncommitted: false,
    });
    const { GROUP_JOIN, END_BATCH_PROCESS, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.inGroup = true;
      const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
      const mine = new Set(assignment[this.topics.predictions] ?? []);
      for (const partition of [...this.owned.keys()])
        if (!mine.has(partition)) void this.withLock(partition, () => this.release(partition));
      // Take new partitions now, not at their first batch: a partition whose input is all read
      // still has windows to close (idle rule) and may have an open transaction to abort.
      for (const partition of mine) {
        void this.withLock(partition, async () => {
          if (!this.owned.has(partition) && !this.stopping) await this.take(partition);
        }).catch((err: unknown) =>
          this.log.warn({ err, partition }, 'taking the partition failed; retrying at its next batch'),
        );
      }
    });
    // A fetch of nothing but transaction markers moves the read position past them (the
    // repartitioned topic is written in transactions): that is how its end offset is reached.
    this.consumer.on(END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize !== 0) return;
      const owned = this.owned.get(payload.partition);
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
      eachBatch: (payload) => this.withLock(payload.batch.partition, () => this.processBatch(payload)),
    });
    const tickMs = Math.max(
      20,
      Math.min(1000, Math.floor(this.joinConfig.idleMs / 2), this.config.FW_JOIN_PROGRESS_POLL_MS),
    );
    this.ticker = setInterval(() => void this.tickAll(), tickMs);

    if (this.options.http !== false) {
      this.app = Fastify({ bodyLimit: 1024 });
      this.app.get('/healthz', () => ({
        ok: true,
        pending: this.pending,
        partitions: this.partitionStates(),
      }));
      this.app.get('/readyz', (_request, reply) => {
        const readiness = this.readiness();
        return readiness.ready ? readiness : reply.status(503).send(readiness);
      });
      this.app.get('/metrics', async (_request, reply) =>
        reply.type(runtime.metrics.contentType).send(await runtime.metrics.metrics()),
      );
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
      throw new Error(
        `${this.topics.predictions} has ${predictions} partitions and ${this.topics.repartitioned} ${repartitioned}: they must be equal (flywheel topics ensure creates both with FW_TOPIC_PARTITIONS)`,
      );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    await this.app?.close();
    await this.consumer?.disconnect();
    await this.repartitioner?.stop();
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
    for (const partition of [...this.owned.keys()]) await this.release(partition);
    for (const poller of Object.values(this.pollers ?? {})) await poller.stop();
    await this.admin?.disconnect();
    await this.redis?.quit();
  }

  /** Runs `work` after every earlier work on the same partition (batches and ticks never overlap). */
  private withLock<T>(partition: number, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(partition) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.locks.set(partition, next);
    return next;
  }

  private inputOf(topic: string): JoinInput {
    return topic === this.topics.predictions ? 'prediction' : 'purchase';
  }

  private topicOf(input: JoinInput): string {
    return input === 'prediction' ? this.topics.predictions : this.topics.repartitioned;
  }

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale() || this.stopping) return;
    const partition = batch.partition;
    const input = this.inputOf(batch.topic);
    let reload = false;
    let replaying = false;
    const done = await retryUntilDone(
      async () => {
        if (reload) await this.release(partition);
        let owned = this.owned.get(partition);
        if (!owned) {
          const taken = await this.take(partition);
          if (taken === 'replaying') {
            replaying = true; // the consumer was moved back; this batch is fetched again
            return;
          }
          owned = taken;
        }
        await this.applyBatch(owned, input, batch, payload);
      },
      {
        stillOwned: () => payload.isRunning() && !payload.isStale() && !this.stopping,
        heartbeat: () => payload.heartbeat(),
        delayMs: backoffUpTo(this.options.runtime.config.FW_RETRY_MAX_BACKOFF_MS),
        onFailure: (error, attempt) => {
          // The in-memory state may be ahead of what is durable: it is loaded again from Redis.
          reload = true;
          const { code } = this.failing.failed(batch.topic, partition, error, attempt);
          this.log.warn(
            { err: error, partition, topic: batch.topic, code, attempt: attempt + 1 },
            'batch failed (not the records’ fault): reloading the partition and trying again',
          );
        },
      },
    );
    this.failing.recovered(batch.topic, partition);
    if (!done) {
      if (reload) await this.release(partition);
      return;
    }
    if (replaying) return;
    payload.resolveOffset(batch.lastOffset());
    await payload.heartbeat();
    this.applyBackpressure();
  }

  private async applyBatch(
    owned: OwnedPartition,
    input: JoinInput,
    batch: EachBatchPayload['batch'],
    payload: EachBatchPayload,
  ): Promise<void> {
    const applied = owned.offsets[input];
    const fresh =
      applied === undefined
        ? batch.messages
        : batch.messages.filter((m) => BigInt(m.offset) >= BigInt(applied));
    const next = BigInt(batch.lastOffset()) + 1n;
    if (fresh.length === 0) {
      if (next > owned.fetched[input]) owned.fetched[input] = next;
      return;
    }
    const stop = this.metrics.batchSeconds.startTimer();
    try {
      await this.joinBatch(owned, input, fresh, batch, String(next), payload);
    } finally {
      stop();
    }
  }

  private async joinBatch(
    owned: OwnedPartition,
    input: JoinInput,
    messages: KafkaMessage[],
    batch: EachBatchPayload['batch'],
    nextOffset: string,
    payload: EachBatchPayload,
  ): Promise<void> {
    const { runtime } = this.options;
    const limits = {
      now: Date.now(),
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
    };
    const delta = new StateDelta();
    const payloads = new Map<string, Buffer>();
    const predictions = new Map<string, Prediction>();
    const decisions: JoinDecision[] = [];
    const letters: OutboxMessage[] = [];
    const before = { ...owned.join.counters };
    owned.join.journal = delta;
    try {
      for (const message of messages) {
        const result =
          input === 'prediction'
            ? await classifyMessage(message, 'prediction', runtime.codecs, limits)
            : await classifyMessage(message, 'purchase', runtime.codecs, limits);
        if (!result.ok) {
          letters.push(await this.deadLetter(batch.topic, batch.partition, message, result));
          continue;
        }
        if (input === 'prediction') {
          const prediction = result.value as Prediction;
          payloads.set(prediction.predictionId, message.value as Buffer);
          predictions.set(prediction.predictionId, prediction);
          decisions.push(...owned.join.addPrediction(pendingRef(prediction)));
        } else {
          decisions.push(...owned.join.addPurchase(purchaseRef(result.value)));
        }
      }
      owned.fetched[input] = BigInt(nextOffset);
      owned.lastInputAt[input] = Date.now();
      decisions.push(...this.advance(owned, Date.now()));
    } finally {
      owned.join.journal = null;
    }
    await payload.heartbeat();
    this.metrics.consumed.inc({ input }, messages.length - letters.length);
    await this.commit(
      owned,
      { ...owned.offsets, [input]: nextOffset },
      decisions,
      delta,
      payloads,
      predictions,
      letters,
      before,
    );
  }

  /** The inputs' progress for this partition, then the clock (see join.ts); the decisions made. */
  private advance(owned: OwnedPartition, now: number): JoinDecision[] {
    const decisions: JoinDecision[] = [];
    for (const input of INPUTS) {
      const progress = this.progressOf(owned, input, now);
      if (progress) decisions.push(...owned.join.setProgress(input, progress, now));
    }
    decisions.push(...owned.join.tick(now));
    return decisions;
  }

  private progressOf(owned: OwnedPartition, input: JoinInput, now: number): InputProgress | null {
    const poller = (this.pollers as Record<JoinInput, UpstreamPoller>)[input];
    if (poller.upstream.stage) return poller.progress.progressFor(owned.partition, owned.fetched[input]);
    // Stream progress: as far as the input's own records go; idle once read to its end and quiet.
    const end = poller.derivedEnds.get(owned.partition);
    const atEnd = end !== undefined && owned.fetched[input] >= end;
    const quiet = now - owned.lastInputAt[input] >= this.joinConfig.idleMs;
    return { time: owned.join.times[input], idle: atEnd && quiet };
  }

  private async deadLetter(
    topic: string,
    partition: number,
    message: KafkaMessage,
    failure: { code: string; reason: string },
  ): Promise<OutboxMessage> {
    const { runtime } = this.options;
    this.metrics.deadLetters.inc({ topic, code: failure.code });
    this.log.warn(
      { topic, partition, offset: message.offset, code: failure.code, reason: failure.reason },
      'dead letter',
    );
    const letter = toDeadLetter(
      {
        topic,
        partition,
        offset: message.offset,
        key: message.key,
        value: message.value,
        headers: message.headers,
        timestamp: message.timestamp,
      },
      failure,
      { service: 'joiner', consumerGroup: this.config.FW_JOINER_GROUP, now: Date.now() },
    );
    return {
      topic: this.topics.deadLetters,
      key: message.key,
      value: await runtime.codecs.deadLetter.encode(letter),
      headers: deadLetterHeaders(letter),
    };
  }

  /** Durable state first (with the outbox), then the Kafka transaction (see the file comment). */
  private async commit(
    owned: OwnedPartition,
    offsets: InputOffsets,
    decisions: JoinDecision[],
    delta: StateDelta,
    payloads: Map<string, Buffer>,
    predictions: Map<string, Prediction>,
    letters: OutboxMessage[],
    before: JoinCounters,
  ): Promise<void> {
    const state = this.state as RedisJoinState;
    const { codecs } = this.options.runtime;
    const missing = [...new Set(decisions.map((d) => d.prediction.predictionId))].filter(
      (id) => !predictions.has(id),
    );
    const stored = await state.payloads(owned.partition, missing);
    for (const [i, id] of missing.entries()) {
      const bytes = stored[i];
      if (!bytes) throw new Error(`partition ${owned.partition}: held prediction ${id} is missing in Redis`);
      predictions.set(
        id,
        codecs.prediction.decodeKnown(bytes)?.value ?? (await codecs.prediction.decode(bytes)),
      );
    }
    const schemaId = await codecs.labeledExample.schemaId();
    const messages: OutboxMessage[] = decisions.map((decision) => {
      const example = toLabeledExample(
        predictions.get(decision.prediction.predictionId) as Prediction,
        decision,
        this.joinConfig.windowMs,
      );
      return {
        topic: this.topics.feedback,
        key: Buffer.from(example.userId),
        value: codecs.labeledExample.encodeWith(schemaId, example),
      };
    });
    messages.push(...letters);
    const seq = owned.seq + 1;
    const { join } = owned;
    await state.apply(owned.partition, {
      epoch: owned.epoch,
      seq,
      offsets,
      position: join.snapshotPosition(),
      delta,
      payloads,
      messages,
    });
    this.options.afterStateWrite?.(owned.partition, seq);
    await this.publish(owned, seq, offsets, messages);
    owned.seq = seq;
    owned.offsets = offsets;
    this.emit('committed', { partition: owned.partition, seq });
    this.observe(owned, decisions, predictions, before);
  }

  /** Metrics and the join-quality log of a committed batch. */
  private observe(
    owned: OwnedPartition,
    decisions: JoinDecision[],
    predictions: Map<string, Prediction>,
    before: JoinCounters,
  ): void {
    for (const d of decisions) {
      const arm = predictions.get(d.prediction.predictionId)?.arm ?? 'unknown';
      if (d.revision > 0) this.metrics.corrections.inc({ label: String(d.label) });
      else this.metrics.labels.inc({ source: d.source, arm });
      if (d.purchase && d.revision === 0)
        this.metrics.delay.observe((d.purchase.eventTime - d.prediction.clickTime) / 1000);
    }
    const c = owned.join.counters;
    const added = (name: keyof JoinCounters) => c[name] - before[name];
    this.metrics.purchasesIn.inc(added('purchases'));
    this.metrics.unattributed.inc(added('unattributedPurchases') + added('lateUnmatchedPurchases'));
    this.metrics.lateInputs.inc({ input: 'prediction' }, added('latePredictions'));
    this.metrics.lateInputs.inc({ input: 'purchase' }, added('latePurchases'));
    this.metrics.duplicateInputs.inc({ input: 'prediction' }, added('duplicatePredictions'));
    this.metrics.duplicateInputs.inc({ input: 'purchase' }, added('duplicatePurchases'));
    this.metrics.uncorrectable.inc(added('uncorrectable'));
    const late = added('latePredictions') + added('latePurchases');
    if (late > 0 && Date.now() - this.warnedLate > 10_000) {
      // Where the watermark stood and why: late input is disorder, or a completeness bug.
      this.warnedLate = Date.now();
      this.log.warn(
        {
          partition: owned.partition,
          late,
          uncorrectable: added('uncorrectable'),
          watermark: owned.join.watermark,
          progress: {
            prediction: owned.join.progressOf('prediction'),
            purchase: owned.join.progressOf('purchase'),
          },
          fetched: { prediction: String(owned.fetched.prediction), purchase: String(owned.fetched.purchase) },
        },
        'late input: joined with what is held, corrections follow',
      );
    }
    this.quality.note({
      purchases: added('purchases'),
      unattributed: added('unattributedPurchases') + added('lateUnmatchedPurchases'),
      latePredictions: added('latePredictions'),
      latePurchases: added('latePurchases'),
      corrections: added('corrections'),
      uncorrectable: added('uncorrectable'),
    });
    const now = Date.now();
    const w = owned.join.watermark;
    this.metrics.watermarkLag.set(
      { partition: String(owned.partition) },
      Number.isFinite(w) ? (now - w) / 1000 : 0,
    );
    for (const input of INPUTS) {
      const t = owned.join.progressOf(input).time;
      if (Number.isFinite(t)) this.metrics.progressLag.set({ input }, (now - t) / 1000);
    }
    this.metrics.pending.set(this.pending);
    let held = 0;
    for (const o of this.owned.values()) held += o.join.heldClicks;
    this.metrics.held.set(held);
  }

  /** One transaction: the outputs, and the input offsets with the batch number as metadata. */
  private async publish(
    owned: OwnedPartition,
    seq: number,
    offsets: InputOffsets,
    messages: OutboxMessage[],
  ) {
    const tx = await owned.producer.transaction();
    try {
      const byTopic = new Map<string, Message[]>();
      for (const m of messages) {
        let list = byTopic.get(m.topic);
        if (!list) byTopic.set(m.topic, (list = []));
        list.push({ key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}) });
      }
      // In requests under the broker's message size: closing a window can label thousands at once.
      for (const [topic, list] of byTopic) await sendInChunks(tx, topic, list);
      const topics = INPUTS.filter((input) => offsets[input] !== undefined).map((input) => ({
        topic: this.topicOf(input),
        partitions: [
          {
            partition: owned.partition,
            offset: offsets[input] as string,
            metadata: `flywheel-join seq=${seq}`,
          },
        ],
      }));
      if (topics.length > 0)
        await whileConcurrentTransactions(() =>
          tx.sendOffsets({ consumerGroupId: this.config.FW_JOINER_GROUP, topics }),
        );
      await tx.commit();
    } catch (error) {
      await tx.abort().catch(() => undefined);
      throw error;
    }
  }

  /** Takes over a partition: fence the previous owner, load the state, reconcile with Kafka. */
  private async take(partition: number): Promise<OwnedPartition | 'replaying'> {
    const { runtime } = this.options;
    const state = this.state as RedisJoinState;
    const producer = createProducer(runtime.kafka, {
      transactionalId: `${this.config.FW_JOINER_TRANSACTIONAL_ID}-${partition}`,
      maxInFlightRequests: 1,
    });
    // Connecting a transactional producer fences the old one and finishes its open transaction.
    await producer.connect();
    try {
      const started = Date.now();
      let loaded = await state.load(partition);
      const ends = await this.inputEnds(partition);
      if (INPUTS.some((input) => BigInt(loaded.offsets[input] ?? '0') > ends[input])) {
        // Offsets past the end of the topic: the topic was recreated, the state is of another.
        this.log.warn(
          {
            partition,
            offsets: loaded.offsets,
            ends: { prediction: String(ends.prediction), purchase: String(ends.purchase) },
          },
          'join state is ahead of the topics (were they recreated?); discarding it',
        );
        await state.discard(partition);
        loaded = await state.load(partition);
        this.metrics.recoveries.inc({ kind: 'discarded' });
      }
      const committedSeq = await this.committedSeq(partition);
      const join = new PartitionJoin(this.joinConfig);
      const start = (input: JoinInput) => BigInt(loaded.offsets[input] ?? String(ends.start[input]));
      const owned: OwnedPartition = {
        partition,
        join,
        producer,
        epoch: loaded.epoch,
        seq: loaded.seq,
        offsets: loaded.offsets,
        fetched: { prediction: start('prediction'), purchase: start('purchase') },
        lastInputAt: { prediction: Date.now(), purchase: Date.now() },
        paused: false,
      };
      let replaying = false;
      if (loaded.seq === committedSeq) {
        // In step.
      } else if (loaded.seq === committedSeq + 1 && loaded.outbox?.seq === loaded.seq) {
        this.log.info(
          { partition, seq: loaded.seq, records: loaded.outbox.messages.length },
          'publishing the outbox of an unfinished batch',
        );
        await this.publish(owned, loaded.seq, loaded.offsets, loaded.outbox.messages);
        this.metrics.recoveries.inc({ kind: 'outbox' });
      } else {
        // Redis is behind Kafka (it lost writes, or all of the state, or holds another layout) or
        // the group's offsets were reset: the state decides what was applied, so the inputs are
        // re-read from its offsets, or from the start of the topic where it has none.
        this.log.warn(
          { partition, redisSeq: loaded.seq, committedSeq, offsets: loaded.offsets },
          'join state and committed offsets differ; replaying the inputs from the state',
        );
        this.metrics.recoveries.inc({ kind: 'replay' });
        for (const input of INPUTS)
          this.consumer?.seek({ topic: this.topicOf(input), partition, offset: String(start(input)) });
        replaying = true;
      }
      if (loaded.snapshot) join.restore(loaded.snapshot);
      this.owned.set(partition, owned);
      this.metrics.pending.set(this.pending);
      this.log.info(
        {
          partition,
          seq: loaded.seq,
          pending: join.openCount,
          held: join.heldClicks,
          watermark: join.watermark,
          ms: Date.now() - started,
        },
        'partition taken',
      );
      return replaying ? 'replaying' : owned;
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /** The first and next offset (low and high watermark) of each input's partition. */
  private async inputEnds(
    partition: number,
  ): Promise<Record<JoinInput, bigint> & { start: Record<JoinInput, bigint> }> {
    const bounds = async (topic: string) => {
      const offsets = await (this.admin as Admin).fetchTopicOffsets(topic);
      const own = offsets.find((o) => o.partition === partition);
      return { low: BigInt(own?.low ?? '0'), high: BigInt(own?.high ?? '0') };
    };
    const prediction = await bounds(this.topics.predictions);
    const purchase = await bounds(this.topics.repartitioned);
    return {
      prediction: prediction.high,
      purchase: purchase.high,
      start: { prediction: prediction.low, purchase: purchase.low },
    };
  }

  private async committedSeq(partition: number): Promise<number> {
    const offsets = await (this.admin as Admin).fetchOffsets({
      groupId: this.config.FW_JOINER_GROUP,
      topics: [this.topics.predictions, this.topics.repartitioned],
    });
    let seq = 0;
    for (const topic of offsets)
      for (const p of topic.partitions) {
        if (p.partition !== partition) continue;
        const match = SEQ_METADATA.exec(p.metadata ?? '');
        if (match) seq = Math.max(seq, Number(match[1]));
      }
    return seq;
  }

  private async release(partition: number): Promise<void> {
    const owned = this.owned.get(partition);
    if (!owned) return;
    this.owned.delete(partition);
    if (owned.paused) this.consumer?.resume([{ topic: this.topics.predictions, partitions: [partition] }]);
    await owned.producer
      .disconnect()
      .catch((err: unknown) => this.log.warn({ err, partition }, 'producer disconnect failed'));
    this.metrics.pending.set(this.pending);
  }

  /** Progress and the clock decide windows of partitions with no new input too (see join.ts). */
  private async tickAll(): Promise<void> {
    for (const partition of [...this.owned.keys()]) {
      await this.withLock(partition, async () => {
        const owned = this.owned.get(partition);
        if (!owned || this.stopping) return;
        const delta = new StateDelta();
        const before = { ...owned.join.counters };
        owned.join.journal = delta;
        let decisions: JoinDecision[];
        try {
          decisions = this.advance(owned, Date.now());
        } finally {
          owned.join.journal = null;
        }
        if (decisions.length === 0) return;
        await this.commit(owned, owned.offsets, decisions, delta, new Map(), new Map(), [], before);
      }).catch(async (error: unknown) => {
        this.log.warn({ err: error, partition }, 'closing windows failed; reloading the partition');
        await this.withLock(partition, () => this.release(partition));
      });
    }
    this.applyBackpressure();
  }

  /** The memory bound (see backpressure.ts). */
  private applyBackpressure(): void {
    const cap = this.config.FW_JOINER_MAX_PENDING;
    const pending = this.pending;
    const owned = [...this.owned.values()];
    const plan = planBackpressure(
      pending,
      cap,
      owned.map((o) => ({
        partition: o.partition,
        paused: o.paused,
        predictionTime: o.join.times.prediction,
        purchaseTime: o.join.progressOf('purchase').time,
        purchasesCaughtUp: o.join.progressOf('purchase').idle,
      })),
    );
    for (const o of owned) {
      const target = { topic: this.topics.predictions, partitions: [o.partition] };
      if (plan.pause.includes(o.partition)) {
        o.paused = true;
        this.consumer?.pause([target]);
        this.log.info({ partition: o.partition, pending, cap }, 'pending cap reached: pausing predictions');
      } else if (plan.resume.includes(o.partition)) {
        o.paused = false;
        this.consumer?.resume([target]);
        this.log.info({ partition: o.partition, pending, cap }, 'resuming predictions');
      }
    }
    this.metrics.paused.set(owned.filter((o) => o.paused).length);
    if (plan.stalled && Date.now() - this.warnedCap > 60_000) {
      this.warnedCap = Date.now();
      this.log.warn(
        { pending, cap },
        'pending cap reached while predictions hold the watermark: the cap is below one window of predictions',
      );
    }
  }
}

/**
 * Retries `call` while the broker answers CONCURRENT_TRANSACTIONS: the previous transaction's
 * markers are still being written. Kafka's own client retries this; KafkaJS does not for
 * AddOffsetsToTxn, and the failed request changed nothing, so sending it again is safe.
 */
async function whileConcurrentTransactions<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || attempt >= 30) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10 * 2 ** attempt, 500)));
    }
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
