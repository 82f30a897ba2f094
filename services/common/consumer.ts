// The consumer every service uses. Per batch: reject oversized, undecodable and invalid messages
// to fw.dlq with their reason (or let the service decode and say which it refuses: handleRaw);
// hand the good ones to the service; resolve and commit offsets only after both are durable.
// The error rule (errors.ts): only a record at fault is dead-lettered (a RecordError, or a record
// the handler returns as rejected; a thrown RecordError splits the batch until the records it
// names are isolated). Any other failure is the service's: the same batch is tried again with
// backoff, heartbeating meanwhile, its offsets unresolved, and `health()` says not ready until it
// goes through. Nothing is skipped silently and nothing good is dead-lettered.
import type { Consumer, ConsumerConfig, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import type { Registry } from 'prom-client';
import { classifyAll, type Classified } from './classify.js';
import { consumerMetrics, type ConsumerMetrics } from './consumer-metrics.js';
import { isolateRecordFaults, type Rejection } from './isolate.js';
import { ProgressCommits } from './progress-commits.js';
import type { Codecs, DeadLetter, RecordKind, RecordTypes } from './contracts.js';
import { readLimitOf, toDeadLetter, type DeadLetterPublisher } from './dead-letters.js';
import {
  type DeadLetterCode,
  RecordRejectedError,
  errorMessage,
  isRecordFault,
  invariant,
} from './errors.js';
import {
  FailingPartitions,
  backoffUpTo,
  failingReason,
  retryUntilDone,
  type FailingPartition,
} from './batch-retry.js';
import type { Logger } from './logger.js';

/** topic name → record kind it carries. */
export type Subscriptions = Record<string, RecordKind>;

export interface ConsumedRecord<Topic extends string = string, Value = unknown> {
  topic: Topic;
  partition: number;
  offset: string;
  key: Buffer | null;
  timestamp: number;
  headers: IHeaders;
  value: Value;
}

export type RecordOf<S extends Subscriptions> = {
  [T in keyof S & string]: ConsumedRecord<T, RecordTypes[S[T]]> & { kind: S[T] };
}[keyof S & string];

export interface BatchContext {
  topic: string;
  partition: number;
  heartbeat(): Promise<void>;
}

export type { Rejection } from './isolate.js';

/** What the service does with good records; returns the records it refuses, if any. */
export type BatchHandler<S extends Subscriptions> = (
  records: RecordOf<S>[],
  context: BatchContext,
) => Promise<void | { rejected: Rejection<RecordOf<S>>[] }>;

/** A message a raw handler refuses, by its index in the messages it was given. */
export interface RawRejection {
  index: number;
  code: string;
  reason: string;
}

/**
 * For a service that decodes and validates the messages itself (the scorer does it off the
 * thread that talks to Kafka, with classifyMessage): the messages as fetched, and back the ones
 * refused with their reason. Throwing works as for a BatchHandler.
 */
export type RawBatchHandler = (
  messages: KafkaMessage[],
  context: BatchContext,
) => Promise<{
  rejected: RawRejection[];
  /** Newest event time among the messages taken. */ maxEventTime?: number;
}>;

/** The service's handler: decoded, valid records (`handle`), or the messages as fetched (`handleRaw`). */
export type ConsumerHandler<S extends Subscriptions> =
  { handle: BatchHandler<S>; handleRaw?: never } | { handleRaw: RawBatchHandler; handle?: never };

export type RecordConsumerOptions<S extends Subscriptions> = ConsumerHandler<S> & {
  kafka: Kafka;
  groupId: string;
  service: string;
  subscriptions: S;
  codecs: Codecs;
  deadLetters: DeadLetterPublisher;
  logger: Logger;
  maxMessageBytes: number;
  maxClockSkewMs: number;
  fromBeginning?: boolean;
  metrics?: Registry;
  consumerConfig?: Partial<ConsumerConfig>;
  /** Partitions whose batches are handled at once (KafkaJS keeps each partition in order). */
  partitionsConsumedConcurrently?: number;
  /** Clock for validation; tests pin it. */
  now?: () => number;
  /** Backoff between tries of a failing batch (attempt 0, 1, ...); default 100 ms doubling to the max. */
  retryDelayMs?: (attempt: number) => number;
  /** Most time between two tries of a failing batch (FW_RETRY_MAX_BACKOFF_MS); default 30 s. */
  maxRetryDelayMs?: number;
  /** Told when KafkaJS's consumer stops for good (it restarts by itself otherwise). */
  onCrash?: (error: Error) => void;
  /**
   * Commit each partition's event-time progress (the newest `maxEventTime` a raw handler
   * reported) in the metadata of its committed offset (stream-progress.ts), at most every
   * `commitIntervalMs`; downstream stages read it to know how far this stage is complete.
   */
  commitProgress?: { commitIntervalMs: number };
};

export type { FailingPartition } from './batch-retry.js';

/** What a service's /readyz answers. */
export type Readiness = { ready: true } | { ready: false; reason: string; failing?: FailingPartition[] };

/** A consumer's health as /readyz says it (`what`: the stream it reads, for the reason). */
export function readinessOf(health: ConsumerHealth, what: string): Readiness {
  if (health.ready) return { ready: true };
  if (!health.running) return { ready: false, reason: `${what}: the consumer is not in its group (yet)` };
  return {
    ready: false,
    reason: `${what}: ${failingReason(health.failing[0] as FailingPartition)}`,
    failing: health.failing,
  };
}

/** What /readyz reports: ready unless a batch is failing or the consumer is not running. */
export interface ConsumerHealth {
  ready: boolean;
  running: boolean;
  failing: FailingPartition[];
}

/** Group timeouts from the session timeout: heartbeats at a tenth of it, as KafkaJS advises (≤ 1/3). */
export function groupTimeouts(sessionTimeoutMs: number): {
  sessionTimeout: number;
  heartbeatInterval: number;
} {
  return { sessionTimeout: sessionTimeoutMs, heartbeatInterval: Math.floor(sessionTimeoutMs / 10) };
}

export class RecordConsumer<S extends Subscriptions> {
  readonly consumer: Consumer;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly metrics: ConsumerMetrics | undefined;
  private readonly failing: FailingPartitions;
  private running = false;
  private readonly progress: ProgressCommits;

  constructor(private readonly options: RecordConsumerOptions<S>) {
    this.log = options.logger.child({ component: 'consumer', groupId: options.groupId });
    this.now = options.now ?? Date.now;
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      sessionTimeout: 30000,
      heartbeatInterval: 3000,
      maxWaitTimeInMs: 200,
      ...options.consumerConfig,
    });
    this.metrics = options.metrics ? consumerMetrics(options.metrics) : undefined;
    this.failing = new FailingPartitions(
      (count) => this.metrics?.failing.set({ group: options.groupId }, count),
      this.now,
    );
    this.progress = new ProgressCommits(
      this.consumer,
      this.log,
      options.commitProgress?.commitIntervalMs ?? 0,
    );
    const { CRASH, GROUP_JOIN, STOP } = this.consumer.events;
    this.consumer.on(CRASH, ({ payload }) => {
      this.running = payload.restart;
      this.log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) this.options.onCrash?.(payload.error);
    });
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.running = true;
      this.progress.assigned(payload.memberAssignment);
    });
    this.consumer.on(STOP, () => {
      this.running = false;
    });
  }

  /** Ready while the consumer runs and no batch is failing (see the file comment). */
  health(): ConsumerHealth {
    const failing = this.failing.list();
    return { ready: this.running && failing.length === 0, running: this.running, failing };
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: Object.keys(this.options.subscriptions),
      fromBeginning: this.options.fromBeginning ?? true,
    });
    await this.consumer.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 1,
      // With progress, offsets are committed here, with their metadata (KafkaJS's would drop it).
      autoCommit: !this.options.commitProgress,
      autoCommitInterval: 1000,
      eachBatch: (payload) => this.processBatch(payload),
    });
  }

  /** Finishes the batch in flight, commits resolved offsets and leaves the group. */
  async stop(): Promise<void> {
    await this.progress.stop();
    await this.consumer.disconnect();
  }

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
    const { topic, partition } = batch;
    const kind = this.options.subscriptions[topic];
    invariant(kind !== undefined, `no record kind configured for topic ${topic}`);

    const context: BatchContext = { topic, partition, heartbeat: () => payload.heartbeat() };
    let accepted = 0;
    let maxEventTime: number | undefined;
    const done = await retryUntilDone(
      async () => {
        const result = this.options.handleRaw
          ? await this.handleRawBatch(batch.messages, context, this.options.handleRaw)
          : await this.handleDecoded(batch.messages, context, kind, this.options.handle);
        if (result.letters.length > 0) await this.publishLetters(topic, partition, kind, result.letters);
        accepted = result.accepted;
        maxEventTime = result.maxEventTime;
      },
      {
        stillOwned: () => payload.isRunning() && !payload.isStale(),
        heartbeat: () => payload.heartbeat(),
        delayMs: this.options.retryDelayMs ?? backoffUpTo(this.options.maxRetryDelayMs),
        onFailure: (error, attempt) => {
          const { code } = this.failing.failed(topic, partition, error, attempt);
          this.metrics?.retries.inc({ topic, code });
          this.log.warn(
            { err: error, topic, partition, code, attempt: attempt + 1, firstOffset: batch.firstOffset() },
            "batch failed (not the records' fault): trying it again, nothing dead-lettered or committed",
          );
        },
      },
    );
    this.failing.recovered(topic, partition);
    if (!done) return; // the partition moved or the consumer stops: the batch is fetched again
    this.metrics?.consumed.inc({ topic }, accepted);
    payload.resolveOffset(batch.lastOffset());
    this.metrics?.lag.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    await payload.heartbeat();
    if (this.options.commitProgress)
      await this.progress.note(topic, partition, String(BigInt(batch.lastOffset()) + 1n), maxEventTime);
    else await payload.commitOffsetsIfNecessary();
  }

  private async publishLetters(
    topic: string,
    partition: number,
    kind: RecordKind,
    letters: DeadLetter[],
  ): Promise<void> {
    for (const letter of letters) this.metrics?.deadLettered.inc({ topic, code: letter.errorCode });
    if (kind === 'deadLetter') {
      // A record of the dead-letter topic that does not read is logged, never dead-lettered:
      // its letter would be larger than it, and refused again, without end.
      const first = { offset: letters[0]?.sourceOffset, reason: letters[0]?.reason };
      this.log.error(
        { topic, partition, count: letters.length, first },
        'dead letters that do not read: skipped',
      );
      return;
    }
    await this.options.deadLetters.publish(letters);
    this.log.warn(
      {
        topic,
        partition,
        count: letters.length,
        first: {
          offset: letters[0]?.sourceOffset,
          code: letters[0]?.errorCode,
          reason: letters[0]?.reason,
        },
      },
      'dead-lettered messages',
    );
  }

  /** Decode and validate, hand the good records to the service; dead letters for the rest. */
  private async handleDecoded(
    messages: KafkaMessage[],
    context: BatchContext,
    kind: RecordKind,
    handle: BatchHandler<S>,
  ): Promise<{ accepted: number; letters: DeadLetter[]; maxEventTime?: number }> {
    const { topic, partition } = context;
    const limits = {
      now: this.now(),
      maxClockSkewMs: this.options.maxClockSkewMs,
      maxMessageBytes: readLimitOf(kind, this.options.maxMessageBytes),
    };
    const good: RecordOf<S>[] = [];
    const letters: DeadLetter[] = [];
    const results = await classifyAll(messages, kind, this.options.codecs, limits);
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i] as KafkaMessage;
      const result = results[i] as Classified<RecordTypes[RecordKind]>;
      if (result.ok) {
        good.push({
          topic,
          partition,
          offset: message.offset,
          key: message.key,
          timestamp: Number(message.timestamp),
          headers: message.headers ?? {},
          value: result.value,
          kind,
        } as unknown as RecordOf<S>);
      } else {
        letters.push(this.letter({ topic, partition, ...message }, result));
      }
    }

    const rejected = await isolateRecordFaults(this.log, good, async (records) => {
      const result = await handle(records, context);
      return result ? result.rejected : [];
    });
    for (const { record, error } of rejected) {
      letters.push(
        this.letter(
          {
            topic,
            partition,
            offset: record.offset,
            key: record.key,
            value: batchValue(messages, record.offset),
            headers: record.headers,
          },
          rejectionOf(error),
        ),
      );
    }
    return { accepted: good.length - rejected.length, letters };
  }

  /** The messages as fetched to the service, which says which it refuses and why. */
  private async handleRawBatch(
    messages: KafkaMessage[],
    context: BatchContext,
    handleRaw: RawBatchHandler,
  ): Promise<{ accepted: number; letters: DeadLetter[]; maxEventTime?: number }> {
    const { topic, partition } = context;
    let maxEventTime: number | undefined;
    const rejected = await isolateRecordFaults(this.log, messages, async (part) => {
      const result = await handleRaw(part, context);
      if (result.maxEventTime !== undefined && !(result.maxEventTime <= (maxEventTime ?? -Infinity)))
        maxEventTime = result.maxEventTime;
      return result.rejected.map(({ index, code, reason }) => ({
        record: part[index] as KafkaMessage,
        error: new RecordRejectedError(reason, { code: code as DeadLetterCode }),
      }));
    });
    const letters = rejected.map(({ record, error }) =>
      this.letter({ topic, partition, ...record }, rejectionOf(error)),
    );
    return {
      accepted: messages.length - rejected.length,
      letters,
      ...(maxEventTime === undefined ? {} : { maxEventTime }),
    };
  }

  private letter(message: Parameters<typeof toDeadLetter>[0], failure: { code: string; reason: string }) {
    return toDeadLetter(message, failure, {
      service: this.options.service,
      consumerGroup: this.options.groupId,
      now: this.now(),
    });
  }
}

function rejectionOf(error: unknown): { code: string; reason: string } {
  return { code: isRecordFault(error) ? error.code : 'FW_HANDLER_REJECTED', reason: errorMessage(error) };
}

function batchValue(messages: KafkaMessage[], offset: string): Buffer | null {
  return messages.find((m) => m.offset === offset)?.value ?? null;
}
