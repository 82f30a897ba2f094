// Purchases repartitioned by user, whatever partitioner wrote them. A purchase producer may use
// librdkafka's default (CRC32 of the key), murmur2, random or explicit partitions; predictions
// are written by the scorer with Kafka's murmur2 of the userId. As Kafka Streams does for join
// inputs it cannot prove co-partitioned, the joiner moves every purchase to an internal topic
// (fw.purchases.repartitioned) on murmur2(userId) of the userId in the record itself (not the
// message key, which a producer may leave empty), with the same partition count as the
// predictions, so each user's purchases meet that user's predictions.
//
// Exactly once, by Kafka transactions: per source partition, one transaction carries the batch's
// purchases (their original bytes and headers), its dead letters, and the source offset with the
// source partition's progress (the newest purchase time taken) as the offset's metadata. The
// joiner reads that progress to know up to when the purchases are complete (progress.ts).
// A record the contract refuses is dead-lettered here (the joiner downstream sees only good ones);
// any other failure retries the batch with backoff, committing nothing (services/common/errors.ts).
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage, Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import {
  FailingPartitions,
  backoffUpTo,
  retryUntilDone,
  type FailingPartition,
} from '../common/batch-retry.js';
import { classifyAll } from '../common/classify.js';
import { groupTimeouts } from '../common/consumer.js';
import type { PurchaseEvent } from '../common/contracts.js';
import { deadLetterHeaders, toDeadLetter } from '../common/dead-letters.js';
import { createProducer } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import { counter } from '../common/metrics.js';
import { partitionOf } from '../common/partitioner.js';
import type { Runtime } from '../common/runtime.js';
import { parseProgress, progressMetadata } from '../common/stream-progress.js';
import { commitTransaction } from '../common/transactions.js';

export interface RepartitionPlan {
  /** Purchases to forward: their partition in the repartitioned topic, key userId, original bytes. */
  forward: { partition: number; key: string; value: Buffer; headers: IHeaders }[];
  /** Messages the contract refuses, by index, with their reason. */
  rejected: { index: number; code: string; reason: string }[];
  /** Newest purchase time taken (-Infinity when none). */
  maxEventTime: number;
  /** Purchases not on murmur2's partition of their userId in the source topic. */
  moved: number;
  /** Purchases whose message key is not their userId. */
  keyMismatches: number;
}

/** Where each purchase of a source partition's batch goes (pure; the adapter sends it). */
export function planRepartition(
  sourcePartition: number,
  messages: readonly Pick<KafkaMessage, 'key' | 'value' | 'headers'>[],
  results: readonly ({ ok: true; value: PurchaseEvent } | { ok: false; code: string; reason: string })[],
  partitions: { source: number; target: number },
): RepartitionPlan {
  const plan: RepartitionPlan = {
    forward: [],
    rejected: [],
    maxEventTime: -Infinity,
    moved: 0,
    keyMismatches: 0,
  };
  results.forEach((result, index) => {
    if (!result.ok) {
      plan.rejected.push({ index, code: result.code, reason: result.reason });
      return;
    }
    const message = messages[index] as Pick<KafkaMessage, 'key' | 'value' | 'headers'>;
    const { userId, eventTime } = result.value;
    if (partitionOf(userId, partitions.source) !== sourcePartition) plan.moved++;
    if (message.key?.toString('utf8') !== userId) plan.keyMismatches++;
    if (eventTime > plan.maxEventTime) plan.maxEventTime = eventTime;
    plan.forward.push({
      partition: partitionOf(userId, partitions.target),
      key: userId,
      value: message.value as Buffer,
      headers: message.headers ?? {},
    });
  });
  return plan;
}

export interface RepartitionerOptions {
  runtime: Runtime;
  groupId: string;
  transactionalIdPrefix: string;
  source: string;
  target: string;
  deadLetters: string;
  sessionTimeoutMs: number;
  maxBatchBytes: number;
}

/** The transactional stage that moves fw.events.purchase onto fw.purchases.repartitioned. */
export class Repartitioner {
  private consumer: Consumer | undefined;
  private readonly producers = new Map<number, Producer>();
  /** Per source partition: the newest purchase time taken (seeded from the committed metadata). */
  private readonly progress = new Map<number, number>();
  private readonly failing = new FailingPartitions();
  private partitions = { source: 0, target: 0 };
  private readonly log: Logger;
  private readonly metrics;
  private counts = { taken: 0, moved: 0, keyMismatches: 0, since: Date.now() };
  private running = false;

  constructor(private readonly options: RepartitionerOptions) {
    this.log = options.runtime.logger.child({ component: 'repartitioner' });
    this.metrics = repartitionMetrics(options.runtime.metrics);
  }

  /** Source partitions whose batch keeps failing (the joiner is not ready meanwhile). */
  get failures(): FailingPartition[] {
    return this.failing.list();
  }

  get isRunning(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    const { runtime } = this.options;
    const admin = runtime.kafka.admin();
    await admin.connect();
    try {
      const [source, target] = await Promise.all([
        admin.fetchTopicOffsets(this.options.source),
        admin.fetchTopicOffsets(this.options.target),
      ]);
      this.partitions = { source: source.length, target: target.length };
    } finally {
      await admin.disconnect();
    }
    this.consumer = runtime.kafka.consumer({
      groupId: this.options.groupId,
      ...groupTimeouts(this.options.sessionTimeoutMs),
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: this.options.maxBatchBytes,
    });
    const { GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.running = true;
      const mine = new Set((payload.memberAssignment as Record<string, number[]>)[this.options.source] ?? []);
      for (const partition of [...this.producers.keys()])
        if (!mine.has(partition)) void this.release(partition);
    });
    this.consumer.on(CRASH, ({ payload }) => {
      this.running = payload.restart;
      if (!payload.restart) runtime.lifecycle.fail('purchase repartitioner', payload.error);
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.source, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 3,
      eachBatch: (payload) => this.processBatch(payload),
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    for (const partition of [...this.producers.keys()]) await this.release(partition);
  }

  private async release(partition: number): Promise<void> {
    const producer = this.producers.get(partition);
    this.producers.delete(partition);
    this.progress.delete(partition);
    await producer?.disconnect().catch(() => undefined);
  }

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
    const partition = batch.partition;
    const done = await retryUntilDone(() => this.moveBatch(partition, batch.messages, batch.lastOffset()), {
      stillOwned: () => payload.isRunning() && !payload.isStale(),
      heartbeat: () => payload.heartbeat(),
      delayMs: backoffUpTo(this.options.runtime.config.FW_RETRY_MAX_BACKOFF_MS),
      onFailure: (error, attempt) => {
        const { code } = this.failing.failed(this.options.source, partition, error, attempt);
        this.log.warn(
          { err: error, partition, code, attempt: attempt + 1 },
          'repartitioning a batch failed (not the records’ fault): trying it again, nothing committed',
        );
        // A fenced or broken transactional producer is made again on the next try.
        void this.release(partition);
      },
    });
    this.failing.recovered(this.options.source, partition);
    if (!done) return;
    payload.resolveOffset(batch.lastOffset());
    await payload.heartbeat();
  }

  private async moveBatch(partition: number, messages: KafkaMessage[], lastOffset: string): Promise<void> {
    const { runtime } = this.options;
    const producer = await this.producerFor(partition);
    const results = await classifyAll(messages, 'purchase', runtime.codecs, {
      now: Date.now(),
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
    });
    const plan = planRepartition(partition, messages, results, this.partitions);
    const progress = Math.max(this.progress.get(partition) ?? -Infinity, plan.maxEventTime);
    const letters = await Promise.all(
      plan.rejected.map(async ({ index, code, reason }) => {
        const message = messages[index] as KafkaMessage;
        const letter = toDeadLetter(
          { topic: this.options.source, partition, ...message },
          { code, reason },
          { service: 'joiner', consumerGroup: this.options.groupId, now: Date.now() },
        );
        return {
          key: message.key,
          value: await runtime.codecs.deadLetter.encode(letter),
          headers: deadLetterHeaders(letter),
        };
      }),
    );
    await commitTransaction(
      producer,
      [
        ...plan.forward.map((r) => ({ ...r, topic: this.options.target })),
        ...letters.map((r) => ({ ...r, topic: this.options.deadLetters })),
      ],
      this.options.groupId,
      [
        {
          topic: this.options.source,
          partition,
          offset: String(BigInt(lastOffset) + 1n),
          metadata: progressMetadata(progress),
        },
      ],
    );
    this.progress.set(partition, progress);
    this.metrics.purchases.inc({ moved: 'false' }, plan.forward.length - plan.moved);
    this.metrics.purchases.inc({ moved: 'true' }, plan.moved);
    this.metrics.keyMismatches.inc(plan.keyMismatches);
    for (const r of plan.rejected) this.metrics.deadLetters.inc({ topic: this.options.source, code: r.code });
    if (plan.rejected.length > 0)
      this.log.warn(
        { partition, count: plan.rejected.length, first: plan.rejected[0] },
        'dead-lettered purchases',
      );
    this.noteMisplaced(plan);
  }

  /** Says, at most once a minute, how many purchases came on another partition than murmur2's. */
  private noteMisplaced(plan: RepartitionPlan): void {
    const c = this.counts;
    c.taken += plan.forward.length;
    c.moved += plan.moved;
    c.keyMismatches += plan.keyMismatches;
    if (Date.now() - c.since < 60_000 || c.taken === 0) return;
    if (c.moved > 0 || c.keyMismatches > 0)
      this.log.info(
        {
          purchases: c.taken,
          notOnMurmur2Partition: c.moved,
          keyNotUserId: c.keyMismatches,
          share: Number((c.moved / c.taken).toFixed(3)),
        },
        'purchases written with another partitioner than Kafka’s murmur2 of the userId (librdkafka’s default, say): repartitioned by userId, labels unaffected',
      );
    this.counts = { taken: 0, moved: 0, keyMismatches: 0, since: Date.now() };
  }

  private async producerFor(partition: number): Promise<Producer> {
    let producer = this.producers.get(partition);
    if (producer) return producer;
    producer = createProducer(this.options.runtime.kafka, {
      transactionalId: `${this.options.transactionalIdPrefix}-${partition}`,
      maxInFlightRequests: 1,
    });
    // Connecting fences the previous owner and finishes its open transaction.
    await producer.connect();
    if (!this.progress.has(partition)) this.progress.set(partition, await this.committedProgress(partition));
    this.producers.set(partition, producer);
    return producer;
  }

  /** The progress committed with the partition's offset (what this stage had taken before). */
  private async committedProgress(partition: number): Promise<number> {
    const admin = this.options.runtime.kafka.admin();
    await admin.connect();
    try {
      const [topic] = await admin.fetchOffsets({
        groupId: this.options.groupId,
        topics: [this.options.source],
      });
      return parseProgress(topic?.partitions.find((p) => p.partition === partition)?.metadata);
    } finally {
      await admin.disconnect();
    }
  }
}

export function repartitionMetrics(registry: Registry) {
  return {
    purchases: counter(registry, {
      name: 'flywheel_joiner_purchases_repartitioned_total',
      help: 'Purchases moved onto the repartitioned topic, by whether they were on another partition than murmur2 of their userId',
      labelNames: ['moved'],
    }),
    keyMismatches: counter(registry, {
      name: 'flywheel_joiner_purchase_key_mismatches_total',
      help: 'Purchases whose message key is not their userId (repartitioned by the userId)',
    }),
    deadLetters: counter(registry, {
      name: 'flywheel_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and error code',
      labelNames: ['topic', 'code'],
    }),
  };
}
