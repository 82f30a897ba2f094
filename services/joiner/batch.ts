// One batch of a join partition, applied exactly once (see service.ts): the join runs in memory,
// then its state changes, new offsets, batch number and output records go to Redis in one call,
// then one Kafka transaction publishes the outputs and commits the offsets with that number.
// Records the contract refuses become dead letters in the same transaction.
import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import { FlywheelError } from '../common/errors.js';
import { backoffUpTo, retryUntilDone, type FailingPartitions } from '../common/batch-retry.js';
import { classifyMessage } from '../common/classify.js';
import type { Prediction } from '../common/contracts.js';
import { deadLetterHeaders, toDeadLetter } from '../common/dead-letters.js';
import type { Logger } from '../common/logger.js';
import type { Runtime } from '../common/runtime.js';
import type { JoinerConfig } from './config.js';
import { pendingRef, purchaseRef, toLabeledExample } from './examples.js';
import type { InputProgress, JoinConfig, JoinCounters, JoinDecision, JoinInput } from './join.js';
import { countBatch, type JoinQuality, type joinerMetrics } from './metrics.js';
import {
  INPUTS,
  addPrediction,
  addPurchase,
  standing,
  type JoinPartitions,
  type OwnedPartition,
} from './partitions.js';
import type { InputOffsets, OutboxMessage, RedisJoinState, StateDelta } from './state.js';
import type { UpstreamPoller } from './upstream.js';

export interface BatchContext {
  runtime: Runtime;
  config: JoinerConfig;
  joinConfig: JoinConfig;
  topics: { feedback: string; deadLetters: string; predictions: string };
  metrics: ReturnType<typeof joinerMetrics>;
  quality: JoinQuality;
  log: Logger;
  state: RedisJoinState;
  partitions: JoinPartitions;
  pollers: Record<JoinInput, UpstreamPoller>;
  /** Called between the state write and the Kafka commit (tests crash the process there). */
  afterStateWrite?: (partition: number, seq: number) => void;
  /** Batches failing for reasons not their records' (readiness reports them). */
  failing: FailingPartitions;
  stopping: () => boolean;
  /** After each batch is durable in Redis and Kafka. */
  onCommitted: (partition: number, seq: number) => void;
}

export class JoinBatches {
  private readonly options: { runtime: Runtime; afterStateWrite?: (partition: number, seq: number) => void };
  private readonly config: JoinerConfig;
  private readonly joinConfig: JoinConfig;
  private readonly topics: { feedback: string; deadLetters: string; predictions: string };
  private readonly failing: FailingPartitions;
  private readonly stopping: () => boolean;
  private readonly metrics: ReturnType<typeof joinerMetrics>;
  private readonly quality: JoinQuality;
  private readonly log: Logger;
  private readonly state: RedisJoinState;
  private readonly partitions: JoinPartitions;
  private readonly pollers: Record<JoinInput, UpstreamPoller>;
  private readonly onCommitted: (partition: number, seq: number) => void;
  private warnedLate = 0;

  constructor(context: BatchContext) {
    this.options = {
      runtime: context.runtime,
      ...(context.afterStateWrite ? { afterStateWrite: context.afterStateWrite } : {}),
    };
    this.config = context.config;
    this.joinConfig = context.joinConfig;
    this.topics = context.topics;
    this.metrics = context.metrics;
    this.quality = context.quality;
    this.log = context.log;
    this.state = context.state;
    this.partitions = context.partitions;
    this.pollers = context.pollers;
    this.onCommitted = context.onCommitted;
    this.failing = context.failing;
    this.stopping = context.stopping;
  }

  async joinBatch(
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
    const payloads = new Map<string, Buffer>();
    const predictions = new Map<string, Prediction>();
    const decisions: JoinDecision[] = [];
    const letters: OutboxMessage[] = [];
    const before = { ...owned.join.counters };
    // A delta holds one step's changes: StateDelta nets a record changed then forgotten within it
    // as never written, which holds only when the change was not in Redis before the step.
    owned.join.takeChanges();
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
        decisions.push(...addPrediction(owned, pendingRef(prediction)));
      } else {
        decisions.push(...addPurchase(owned, purchaseRef(result.value)));
      }
    }
    owned.fetched[input] = BigInt(nextOffset);
    owned.lastInputAt[input] = Date.now();
    decisions.push(...this.advance(owned, Date.now()));
    const delta = owned.join.takeChanges();
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
  advance(owned: OwnedPartition, now: number): JoinDecision[] {
    const decisions: JoinDecision[] = [];
    for (const input of INPUTS) {
      const progress = this.progressOf(owned, input, now);
      if (progress) decisions.push(...owned.join.setProgress(input, progress, now));
    }
    decisions.push(...owned.join.tick(now));
    return decisions;
  }

  progressOf(owned: OwnedPartition, input: JoinInput, now: number): InputProgress | null {
    const poller = this.pollers[input];
    if (poller.upstream.stage) return poller.progress.progressFor(owned.partition, owned.fetched[input]);
    // Stream progress: as far as the input's own records go; idle once read to its end and quiet.
    const end = poller.derivedEnds.get(owned.partition);
    const atEnd = end !== undefined && owned.fetched[input] >= end;
    const quiet = now - owned.lastInputAt[input] >= this.joinConfig.idleMs;
    return { time: owned.join.times[input], idle: atEnd && quiet };
  }

  async deadLetter(
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
  async commit(
    owned: OwnedPartition,
    offsets: InputOffsets,
    decisions: JoinDecision[],
    delta: StateDelta,
    payloads: Map<string, Buffer>,
    predictions: Map<string, Prediction>,
    letters: OutboxMessage[],
    before: JoinCounters,
  ): Promise<void> {
    const state = this.state;
    const { codecs } = this.options.runtime;
    const missing = [...new Set(decisions.map((d) => d.prediction.predictionId))].filter(
      (id) => !predictions.has(id),
    );
    const stored = await state.payloads(owned.partition, missing);
    for (const [i, id] of missing.entries()) {
      const bytes = stored[i];
      if (!bytes)
        throw new FlywheelError(
          'FW_JOIN_STATE_MISSING',
          `partition ${owned.partition}: held prediction ${id} is missing in Redis`,
        );
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
    await this.partitions.publish(owned, seq, offsets, messages);
    owned.seq = seq;
    owned.offsets = offsets;
    this.onCommitted(owned.partition, seq);
    this.observe(owned, decisions, predictions, before);
  }

  /** Metrics and the join-quality log of a committed batch. */
  observe(
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
    countBatch(this.metrics, this.quality, added);
    const late = added('latePredictions') + added('latePurchases');
    if (late > 0 && Date.now() - this.warnedLate > 10_000) {
      // Where the watermark stood and why: late input is disorder, or a completeness bug.
      this.warnedLate = Date.now();
      this.log.warn(
        {
          partition: owned.partition,
          late,
          uncorrectable: added('uncorrectable'),
          ...standing(owned),
        },
        'late input: joined with what is held, corrections follow',
      );
    }
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
    this.metrics.pending.set(this.partitions.pending);
    let held = 0;
    for (const o of this.partitions.owned.values()) held += o.join.heldClicks;
    this.metrics.held.set(held);
  }

  async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale() || this.stopping()) return;
    const partition = batch.partition;
    const input = this.inputOf(batch.topic);
    let reload = false;
    let replaying = false;
    const done = await retryUntilDone(
      async () => {
        if (reload) await this.partitions.release(partition);
        let owned = this.partitions.owned.get(partition);
        if (!owned) {
          const taken = await this.partitions.take(partition);
          if (taken === 'replaying') {
            replaying = true; // the consumer was moved back; this batch is fetched again
            return;
          }
          owned = taken;
        }
        await this.applyBatch(owned, input, batch, payload);
      },
      {
        stillOwned: () => payload.isRunning() && !payload.isStale() && !this.stopping(),
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
      if (reload) await this.partitions.release(partition);
      return;
    }
    if (replaying) return;
    payload.resolveOffset(batch.lastOffset());
    await payload.heartbeat();
    this.partitions.applyBackpressure();
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

  private inputOf(topic: string): JoinInput {
    return topic === this.topics.predictions ? 'prediction' : 'purchase';
  }

  /** Progress and the clock alone (no new input): the windows they close, committed as a batch. */
  async tick(owned: OwnedPartition, now: number): Promise<void> {
    const before = { ...owned.join.counters };
    owned.join.takeChanges(); // one step per delta (see joinBatch)
    const decisions = this.advance(owned, now);
    const delta = owned.join.takeChanges();
    // Nothing decided, nothing committed: the in-memory state runs ahead of Redis until the next
    // batch, which is safe (a restart replays from Redis) while a delta never spans two steps.
    if (decisions.length === 0) return;
    await this.commit(owned, owned.offsets, decisions, delta, new Map(), new Map(), [], before);
  }
}
