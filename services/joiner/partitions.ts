// The join partitions this joiner owns, and taking them over by the exactly-once protocol
// (common/exactly-once.ts): a transactional producer per partition, which fences the previous
// owner; the state loaded from Redis and reconciled with Kafka's committed batch seq, the outbox
// of an unfinished batch published, or the inputs replayed. Work on one partition runs in order
// (`withLock`): batches and ticks never overlap.
import type { Admin, Consumer, Producer } from 'kafkajs';
import {
  committedSeq,
  fencedProducer,
  reconcile,
  seqMetadata,
  type ReconcileSteps,
} from '../common/exactly-once.js';
import { planBackpressure } from './backpressure.js';
import type { Logger } from '../common/logger.js';
import type { Runtime } from '../common/runtime.js';
import { commitTransaction } from '../common/transactions.js';
import type { JoinerConfig } from './config.js';
import {
  PartitionJoin,
  type InputProgress,
  type JoinConfig,
  type JoinCounters,
  type JoinDecision,
  type JoinInput,
  type PendingPrediction,
  type PurchaseRef,
} from './join.js';
import type { joinerMetrics } from './metrics.js';
import {
  StateDelta,
  type InputOffsets,
  type LoadedState,
  type OutboxMessage,
  type RedisJoinState,
} from './state.js';

export interface OwnedPartition {
  partition: number;
  /** The join, collecting each step's changes for the Redis state. */
  join: PartitionJoin<StateDelta>;
  producer: Producer;
  epoch: number;
  seq: number;
  offsets: InputOffsets;
  /** Next offset of each input read (applied, or skipped as transaction markers). */
  fetched: Record<JoinInput, bigint>;
  /** Wall clock of the last new input record (stream progress). */
  lastInputAt: Record<JoinInput, number>;
  paused: boolean;
  /** The first input behind the watermark since taken, and where the inputs stood (diagnosis). */
  firstLate?: PartitionStanding & { input: JoinInput; eventTime: number; at: number };
}

/** Where a partition stands: its watermark, its inputs' progress and read positions. */
export interface PartitionStanding {
  watermark: number;
  progress: Record<JoinInput, InputProgress>;
  fetched: Record<JoinInput, string>;
}

export function standing(owned: OwnedPartition): PartitionStanding {
  return {
    watermark: owned.join.watermark,
    progress: {
      prediction: owned.join.progressOf('prediction'),
      purchase: owned.join.progressOf('purchase'),
    },
    fetched: { prediction: String(owned.fetched.prediction), purchase: String(owned.fetched.purchase) },
  };
}

/** The join's input, first noting one behind the watermark (`firstLate`, for diagnosis). */
export function addPrediction(owned: OwnedPartition, ref: PendingPrediction): JoinDecision[] {
  noteLate(owned, 'prediction', ref.clickTime);
  return owned.join.addPrediction(ref);
}

export function addPurchase(owned: OwnedPartition, ref: PurchaseRef): JoinDecision[] {
  noteLate(owned, 'purchase', ref.eventTime);
  return owned.join.addPurchase(ref);
}

function noteLate(owned: OwnedPartition, input: JoinInput, eventTime: number): void {
  if (owned.firstLate || !(eventTime < owned.join.watermark)) return;
  owned.firstLate = { input, eventTime, ...standing(owned), at: Date.now() };
}

export interface JoinTopicNames {
  predictions: string;
  repartitioned: string;
}

export const INPUTS = ['prediction', 'purchase'] as const;
/** The tag of the joiner's batch seq in its committed offsets' metadata. */
const SEQ_TAG = 'flywheel-join';

export interface PartitionsContext {
  runtime: Runtime;
  config: JoinerConfig;
  joinConfig: JoinConfig;
  topics: JoinTopicNames;
  metrics: ReturnType<typeof joinerMetrics>;
  log: Logger;
  state: RedisJoinState;
  admin: Admin;
}

export class JoinPartitions {
  readonly owned = new Map<number, OwnedPartition>();
  /** The join consumer, once it exists: a replay seeks it, a release resumes it. */
  consumer: Consumer | undefined;
  private readonly locks = new Map<number, Promise<unknown>>();
  private warnedCap = 0;
  private readonly options: { runtime: Runtime };
  private readonly config: JoinerConfig;
  private readonly joinConfig: JoinConfig;
  private readonly topics: JoinTopicNames;
  private readonly metrics: ReturnType<typeof joinerMetrics>;
  private readonly log: Logger;
  private readonly state: RedisJoinState;
  private readonly admin: Admin;

  constructor(context: PartitionsContext) {
    this.options = { runtime: context.runtime };
    this.config = context.config;
    this.joinConfig = context.joinConfig;
    this.topics = context.topics;
    this.metrics = context.metrics;
    this.log = context.log;
    this.state = context.state;
    this.admin = context.admin;
  }

  /** Every partition's pending work, finished or failed (before a stop releases them). */
  async settle(): Promise<void> {
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => undefined)));
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
      ...standing(o),
      pending: o.join.openCount,
      firstLate: o.firstLate ?? null,
    }));
  }

  /** Runs `work` after every earlier work on the same partition (batches and ticks never overlap). */
  withLock<T>(partition: number, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(partition) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.locks.set(partition, next);
    return next;
  }

  topicOf(input: JoinInput): string {
    return input === 'prediction' ? this.topics.predictions : this.topics.repartitioned;
  }

  /** One transaction: the outputs, and the input offsets with the batch number as metadata. */
  async publish(
    owner: Pick<OwnedPartition, 'producer' | 'partition'>,
    seq: number,
    offsets: InputOffsets,
    messages: OutboxMessage[],
  ) {
    const committed = INPUTS.filter((input) => offsets[input] !== undefined).map((input) => ({
      topic: this.topicOf(input),
      partition: owner.partition,
      offset: offsets[input] as string,
      metadata: seqMetadata(SEQ_TAG, seq),
    }));
    await commitTransaction(owner.producer, messages, this.config.FW_JOINER_GROUP, committed);
  }

  /** Takes over a partition: fence the previous owner, load the state, reconcile with Kafka. */
  async take(partition: number): Promise<OwnedPartition | 'replaying'> {
    const producer = await fencedProducer(
      this.options.runtime.kafka,
      `${this.config.FW_JOINER_TRANSACTIONAL_ID}-${partition}`,
    );
    try {
      const started = Date.now();
      const ends = await this.inputEnds(partition);
      const committed = await this.committedSeq(partition);
      const start = (state: LoadedState, input: JoinInput) =>
        BigInt(state.offsets[input] ?? String(ends.start[input]));
      const { state: loaded, recovery } = await reconcile(
        this.recoverySteps(partition, producer, committed, start),
        committed,
        { prediction: ends.prediction, purchase: ends.purchase },
      );
      const join = new PartitionJoin(this.joinConfig, () => new StateDelta());
      const owned: OwnedPartition = {
        partition,
        join,
        producer,
        epoch: loaded.epoch,
        seq: loaded.seq,
        offsets: loaded.offsets,
        fetched: { prediction: start(loaded, 'prediction'), purchase: start(loaded, 'purchase') },
        lastInputAt: { prediction: Date.now(), purchase: Date.now() },
        paused: false,
      };
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
      return recovery.action === 'replay' ? 'replaying' : owned;
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /** The join's state store and actions for the exactly-once table (common/exactly-once.ts). */
  private recoverySteps(
    partition: number,
    producer: Producer,
    committed: number,
    start: (state: LoadedState, input: JoinInput) => bigint,
  ): ReconcileSteps<LoadedState, JoinInput> {
    return {
      load: () => this.state.load(partition),
      found: (s) => ({ seq: s.seq, offsets: s.offsets, outboxSeq: s.outbox?.seq ?? null }),
      discard: async (s, reason) => {
        this.log.warn(
          { partition, offsets: s.offsets, reason },
          'join state is ahead of the topics (were they recreated?); discarding it',
        );
        await this.state.discard(partition);
        this.metrics.recoveries.inc({ kind: 'discarded' });
      },
      publishOutbox: async (s) => {
        const messages = s.outbox?.messages ?? [];
        this.log.info(
          { partition, seq: s.seq, records: messages.length },
          'publishing the outbox of an unfinished batch',
        );
        await this.publish({ producer, partition }, s.seq, s.offsets, messages);
        this.metrics.recoveries.inc({ kind: 'outbox' });
      },
      replay: (s, reason) => {
        this.log.warn(
          { partition, redisSeq: s.seq, committedSeq: committed, offsets: s.offsets, reason },
          'join state and committed offsets differ; replaying the inputs from the state',
        );
        this.metrics.recoveries.inc({ kind: 'replay' });
        for (const input of INPUTS)
          this.consumer?.seek({ topic: this.topicOf(input), partition, offset: String(start(s, input)) });
      },
    };
  }

  /** The first and next offset (low and high watermark) of each input's partition. */
  async inputEnds(
    partition: number,
  ): Promise<Record<JoinInput, bigint> & { start: Record<JoinInput, bigint> }> {
    const bounds = async (topic: string) => {
      const offsets = await this.admin.fetchTopicOffsets(topic);
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

  async committedSeq(partition: number): Promise<number> {
    const topics = [this.topics.predictions, this.topics.repartitioned];
    return committedSeq(this.admin, this.config.FW_JOINER_GROUP, topics, partition, SEQ_TAG);
  }

  async release(partition: number): Promise<void> {
    const owned = this.owned.get(partition);
    if (!owned) return;
    this.owned.delete(partition);
    if (owned.paused) this.consumer?.resume([{ topic: this.topics.predictions, partitions: [partition] }]);
    await owned.producer
      .disconnect()
      .catch((err: unknown) => this.log.warn({ err, partition }, 'producer disconnect failed'));
    this.metrics.pending.set(this.pending);
  }

  /** The memory bound (see backpressure.ts). */
  applyBackpressure(): void {
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
