// `flywheel joiner`: joins fw.predictions with fw.events.purchase (co-partitioned by userId) into
// fw.feedback.labeled, exactly once across restarts.
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
// A separate write of state and outputs cannot lose or double a label this way, and Redis still
// holds every pending prediction, so a restart loads them instead of re-reading a window of input.
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Admin, Consumer, EachBatchPayload, KafkaMessage, Message, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { CoPartitionedAssigner } from '../common/co-partitioned-assigner.js';
import { classifyMessage, groupTimeouts } from '../common/consumer.js';
import type { Prediction } from '../common/contracts.js';
import { deadLetterHeaders, toDeadLetter } from '../common/dead-letters.js';
import { createProducer, sendInChunks } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import { counter, gauge, histogram } from '../common/metrics.js';
import { createRedis } from '../common/redis.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { joinConfigFrom, loadJoinerConfig, type JoinerConfig } from './config.js';
import { planBackpressure } from './backpressure.js';
import { pendingRef, purchaseRef, toLabeledExample } from './examples.js';
import {
  PartitionJoin,
  type JoinConfig,
  type JoinCounters,
  type JoinDecision,
  type JoinInput,
  type PendingPrediction,
} from './join.js';
import { RedisJoinState, StateDelta, type InputOffsets, type OutboxMessage } from './state.js';

export interface JoinerTopics {
  predictions: string;
  purchases: string;
  feedback: string;
  deadLetters: string;
}

export interface JoinerOptions {
  runtime: Runtime;
  config?: JoinerConfig;
  topics?: Partial<JoinerTopics>;
  /** Serve /metrics and /healthz; off in tests that only need the stream. */
  http?: boolean;
  /** Called between the state write and the Kafka commit (tests crash the process there). */
  afterStateWrite?: (partition: number, seq: number) => void;
}

interface OwnedPartition {
  partition: number;
  join: PartitionJoin<PendingPrediction>;
  producer: Producer;
  epoch: number;
  seq: number;
  offsets: InputOffsets;
  paused: boolean;
}

const SEQ_METADATA = /^flywheel-join seq=(\d+)$/;

/** Emits 'committed' ({ partition, seq }) after each batch is durable in Redis and Kafka. */
export class Joiner extends EventEmitter<{ committed: [{ partition: number; seq: number }] }> {
  readonly topics: JoinerTopics;
  readonly config: JoinerConfig;
  readonly joinConfig: JoinConfig;
  private readonly log: Logger;
  private readonly owned = new Map<number, OwnedPartition>();
  private readonly locks = new Map<number, Promise<unknown>>();
  private redis: Redis | undefined;
  private admin: Admin | undefined;
  private consumer: Consumer | undefined;
  private state: RedisJoinState<PendingPrediction> | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private stopping = false;
  private warnedCap = 0;
  private readonly metrics;

  constructor(private readonly options: JoinerOptions) {
    super();
    this.config = options.config ?? loadJoinerConfig();
    this.joinConfig = joinConfigFrom(this.config);
    this.topics = {
      predictions: TOPICS.predictions,
      purchases: TOPICS.purchases,
      feedback: TOPICS.feedback,
      deadLetters: TOPICS.deadLetters,
      ...options.topics,
    };
    this.log = options.runtime.logger.child({ component: 'joiner' });
    this.metrics = joinerMetrics(options.runtime.metrics);
  }

  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  /** Pending predictions held now, over all owned partitions. */
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

  async start(): Promise<void> {
    const { runtime } = this.options;
    this.redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await this.redis.connect();
    const codec = runtime.codecs.prediction;
    this.state = new RedisJoinState(this.redis, this.config.FW_JOINER_GROUP, async (payload) =>
      pendingRef(codec.decodeKnown(payload)?.value ?? (await codec.decode(payload))),
    );
    this.admin = runtime.kafka.admin();
    await this.admin.connect();
    this.consumer = runtime.kafka.consumer({
      groupId: this.config.FW_JOINER_GROUP,
      partitionAssigners: [CoPartitionedAssigner],
      ...groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      maxWaitTimeInMs: 200,
      maxBytesPerPartition: this.config.FW_JOINER_MAX_BATCH_BYTES,
      readUncommitted: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
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
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [this.topics.predictions, this.topics.purchases],
      fromBeginning: true,
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.withLock(payload.batch.partition, () => this.processBatch(payload)),
    });
    const tickMs = Math.max(50, Math.min(1000, Math.floor(this.joinConfig.idleMs / 2)));
    this.ticker = setInterval(() => void this.tickAll(), tickMs);

    if (this.options.http !== false) {
      this.app = Fastify({ bodyLimit: 1024 });
      this.app.get('/healthz', () => ({
        ok: true,
        partitions: [...this.owned.keys()],
        pending: this.pending,
      }));
      this.app.get('/metrics', async (_request, reply) =>
        reply.type(runtime.metrics.contentType).send(await runtime.metrics.metrics()),
      );
      await this.app.listen({ host: '0.0.0.0', port: this.config.FW_JOINER_HTTP_PORT });
    }
    this.log.info(
      { group: this.config.FW_JOINER_GROUP, join: this.joinConfig, port: this.port },
      'joiner started',
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.ticker);
    await this.app?.close();
    await this.consumer?.disconnect();
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
    for (const partition of [...this.owned.keys()]) await this.release(partition);
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

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale() || this.stopping) return;
    const partition = batch.partition;
    const input = this.inputOf(batch.topic);
    let owned = this.owned.get(partition);
    if (!owned) {
      const opened = await this.take(partition);
      if (opened === 'replaying') return; // the consumer was moved back; this batch is refetched
      owned = opened;
    }
    const applied = owned.offsets[input];
    const fresh =
      applied === undefined
        ? batch.messages
        : batch.messages.filter((m) => BigInt(m.offset) >= BigInt(applied));
    const nextOffset = String(BigInt(batch.lastOffset()) + 1n);
    if (fresh.length === 0) {
      payload.resolveOffset(batch.lastOffset());
      return;
    }
    const stop = this.metrics.batchSeconds.startTimer();
    try {
      await this.joinBatch(owned, input, fresh, batch, nextOffset, payload);
    } catch (error) {
      // The in-memory state may be ahead of what is durable: drop it, let the batch be fetched again.
      this.log.warn({ err: error, partition, topic: batch.topic }, 'batch failed; reloading the partition');
      await this.release(partition);
      throw error;
    } finally {
      stop();
    }
    payload.resolveOffset(batch.lastOffset());
    await payload.heartbeat();
    this.applyBackpressure();
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
    const delta = new StateDelta<PendingPrediction>();
    const payloads = new Map<string, Buffer>();
    const predictions = new Map<string, Prediction>();
    const decisions: JoinDecision<PendingPrediction>[] = [];
    const letters: OutboxMessage[] = [];
    const wallNow = Date.now();
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
          decisions.push(...owned.join.addPrediction(pendingRef(prediction), wallNow));
        } else {
          decisions.push(...owned.join.addPurchase(purchaseRef(result.value), wallNow));
        }
      }
      decisions.push(...owned.join.setCaughtUp(input, batch.offsetLag() === '0'));
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
    );
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
    decisions: JoinDecision<PendingPrediction>[],
    delta: StateDelta<PendingPrediction>,
    payloads: Map<string, Buffer>,
    predictions: Map<string, Prediction>,
    letters: OutboxMessage[],
  ): Promise<void> {
    const state = this.state as RedisJoinState<PendingPrediction>;
    const { codecs } = this.options.runtime;
    const missing = decisions.map((d) => d.prediction.predictionId).filter((id) => !predictions.has(id));
    const stored = await state.payloads(owned.partition, missing);
    for (const [i, id] of missing.entries()) {
      const bytes = stored[i];
      if (!bytes)
        throw new Error(`partition ${owned.partition}: pending prediction ${id} is missing in Redis`);
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
      position: {
        streamTimes: { ...join.times },
        watermark: join.watermark,
        lastPrune: join.pruneMark,
        counters: { ...join.counters },
      },
      delta,
      payloads,
      windowMs: this.joinConfig.windowMs,
      messages,
    });
    this.options.afterStateWrite?.(owned.partition, seq);
    await this.publish(owned, seq, offsets, messages);
    owned.seq = seq;
    owned.offsets = offsets;
    this.emit('committed', { partition: owned.partition, seq });
    for (const d of decisions) {
      this.metrics.labels.inc({ source: d.source });
      if (d.purchase) this.metrics.delay.observe((d.purchase.eventTime - d.prediction.clickTime) / 1000);
    }
    this.metrics.watermarkLag.set(
      { partition: String(owned.partition) },
      Number.isFinite(join.watermark) ? (Date.now() - join.watermark) / 1000 : 0,
    );
    this.metrics.pending.set(this.pending);
    const c = join.counters;
    this.metrics.late.set({ partition: String(owned.partition), input: 'prediction' }, c.latePredictions);
    this.metrics.late.set({ partition: String(owned.partition), input: 'purchase' }, c.latePurchases);
    this.metrics.duplicates.set(
      { partition: String(owned.partition), input: 'prediction' },
      c.duplicatePredictions,
    );
    this.metrics.duplicates.set(
      { partition: String(owned.partition), input: 'purchase' },
      c.duplicatePurchases,
    );
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
      const topics = (['prediction', 'purchase'] as const)
        .filter((input) => offsets[input] !== undefined)
        .map((input) => ({
          topic: input === 'prediction' ? this.topics.predictions : this.topics.purchases,
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
    const state = this.state as RedisJoinState<PendingPrediction>;
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
      if (
        (['prediction', 'purchase'] as const).some(
          (input) => BigInt(loaded.offsets[input] ?? '0') > ends[input],
        )
      ) {
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
      const join = new PartitionJoin<PendingPrediction>(this.joinConfig);
      const owned: OwnedPartition = {
        partition,
        join,
        producer,
        epoch: loaded.epoch,
        seq: loaded.seq,
        offsets: loaded.offsets,
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
        // Redis is behind Kafka (it lost writes, or all of the state) or the group's offsets were
        // reset: the state decides what was applied, so the inputs are re-read from its offsets,
        // or from the start of the topic where it has none (pending predictions must come back).
        this.log.warn(
          { partition, redisSeq: loaded.seq, committedSeq, offsets: loaded.offsets },
          'join state and committed offsets differ; replaying the inputs from the state',
        );
        this.metrics.recoveries.inc({ kind: 'replay' });
        for (const input of ['prediction', 'purchase'] as const) {
          const topic = input === 'prediction' ? this.topics.predictions : this.topics.purchases;
          const offset = loaded.offsets[input] ?? String(ends.start[input]);
          this.consumer?.seek({ topic, partition, offset });
        }
        replaying = true;
      }
      // An input with a backlog must not let the other one run the watermark ahead.
      for (const input of ['prediction', 'purchase'] as const)
        if (BigInt(loaded.offsets[input] ?? '0') < ends[input]) join.setCaughtUp(input, false);
      if (loaded.snapshot) join.restore(loaded.snapshot, Date.now());
      this.owned.set(partition, owned);
      this.metrics.pending.set(this.pending);
      this.log.info(
        {
          partition,
          seq: loaded.seq,
          pending: join.openCount,
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
    const purchase = await bounds(this.topics.purchases);
    return {
      prediction: prediction.high,
      purchase: purchase.high,
      start: { prediction: prediction.low, purchase: purchase.low },
    };
  }

  private async committedSeq(partition: number): Promise<number> {
    const offsets = await (this.admin as Admin).fetchOffsets({
      groupId: this.config.FW_JOINER_GROUP,
      topics: [this.topics.predictions, this.topics.purchases],
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

  /** Wall-clock ticks close the windows of idle partitions (see join.ts). */
  private async tickAll(): Promise<void> {
    for (const partition of [...this.owned.keys()]) {
      await this.withLock(partition, async () => {
        const owned = this.owned.get(partition);
        if (!owned || this.stopping) return;
        const delta = new StateDelta<PendingPrediction>();
        owned.join.journal = delta;
        let decisions: JoinDecision<PendingPrediction>[];
        try {
          decisions = owned.join.tick(Date.now());
        } finally {
          owned.join.journal = null;
        }
        if (decisions.length === 0) return;
        await this.commit(owned, owned.offsets, decisions, delta, new Map(), new Map(), []);
      }).catch(async (error: unknown) => {
        this.log.warn({ err: error, partition }, 'idle tick failed; reloading the partition');
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
        purchaseTime: o.join.times.purchase,
        purchasesCaughtUp: o.join.isCaughtUp('purchase'),
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

function joinerMetrics(registry: Registry) {
  return {
    consumed: counter(registry, {
      name: 'flywheel_joiner_records_total',
      help: 'Input records joined, by input',
      labelNames: ['input'],
    }),
    labels: counter(registry, {
      name: 'flywheel_joiner_labels_total',
      help: 'Labeled examples published, by label source',
      labelNames: ['source'],
    }),
    deadLetters: counter(registry, {
      name: 'flywheel_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and error code',
      labelNames: ['topic', 'code'],
    }),
    pending: gauge(registry, {
      name: 'flywheel_joiner_pending',
      help: 'Predictions waiting for their outcome',
    }),
    paused: gauge(registry, {
      name: 'flywheel_joiner_paused_partitions',
      help: 'Partitions whose predictions are paused by the pending cap',
    }),
    watermarkLag: gauge(registry, {
      name: 'flywheel_joiner_watermark_lag_seconds',
      help: 'Wall clock minus the watermark, per partition',
      labelNames: ['partition'],
    }),
    late: gauge(registry, {
      name: 'flywheel_joiner_late_inputs',
      help: 'Input behind the watermark on arrival (still used where it could be), by partition and input',
      labelNames: ['partition', 'input'],
    }),
    duplicates: gauge(registry, {
      name: 'flywheel_joiner_duplicate_inputs',
      help: 'Duplicate input ignored, by partition and input',
      labelNames: ['partition', 'input'],
    }),
    delay: histogram(registry, {
      name: 'flywheel_joiner_purchase_delay_seconds',
      help: 'Click-to-purchase delay of positive labels',
      buckets: [1, 10, 30, 60, 300, 600, 1800, 3600],
    }),
    batchSeconds: histogram(registry, {
      name: 'flywheel_joiner_batch_seconds',
      help: 'Time to join and commit one batch',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    recoveries: counter(registry, {
      name: 'flywheel_joiner_recoveries_total',
      help: 'Partitions taken over out of step with Kafka, by how they were reconciled',
      labelNames: ['kind'],
    }),
  };
}

export async function runJoiner(runtime: Runtime): Promise<number> {
  const joiner = new Joiner({ runtime });
  runtime.lifecycle.add('joiner', () => joiner.stop());
  runtime.lifecycle.installSignalHandlers();
  await joiner.start();
  process.send?.({ ready: true, port: joiner.port });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
