// The consumer every service uses. Per batch: reject oversized, undecodable and invalid messages
// to fw.dlq with their reason (or let the service decode and say which it refuses: handleRaw);
// hand the good ones to the service; resolve and commit offsets only after both are durable.
// The error rule (errors.ts): only a record at fault is dead-lettered (a RecordError, or a record
// the handler returns as rejected; a thrown RecordError splits the batch until the records it
// names are isolated). Any other failure is the service's: the same batch is tried again with
// backoff, heartbeating meanwhile, its offsets unresolved, and `health()` says not ready until it
// goes through. Nothing is skipped silently and nothing good is dead-lettered.
import type { Consumer, ConsumerConfig, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import type { Counter, Gauge, Registry } from 'prom-client';
import { counter, gauge } from './metrics.js';
import type { Codecs, DeadLetter, RecordKind, RecordTypes, ValidationLimits } from './contracts.js';
import { findProblems } from './contracts.js';
import { toDeadLetter, type DeadLetterPublisher } from './dead-letters.js';
import {
  OversizedMessageError,
  type DeadLetterCode,
  RecordRejectedError,
  errorCode,
  errorMessage,
  isRecordFault,
} from './errors.js';
import {
  FailingPartitions,
  backoffUpTo,
  failingReason,
  retryUntilDone,
  type FailingPartition,
} from './batch-retry.js';
import type { Logger } from './logger.js';
import { progressMetadata } from './stream-progress.js';

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

export interface Rejection<R> {
  record: R;
  error: unknown;
}

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

export type Classified<V> = { ok: true; value: V } | { ok: false; code: string; reason: string };

/** Decode and validate one message: a value, or the reason it goes to the dead-letter topic. */
export async function classifyMessage<K extends RecordKind>(
  message: Pick<KafkaMessage, 'value'>,
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits & { maxMessageBytes: number },
): Promise<Classified<RecordTypes[K]>> {
  return classifyKnown(message, kind, codecs, limits) ?? classifyUnseen(message, kind, codecs, limits);
}

/**
 * classifyMessage of each message, in order. A promise per message cost more than the decoding:
 * only the first message of an unseen schema waits (for the registry).
 */
export async function classifyAll<K extends RecordKind>(
  messages: readonly Pick<KafkaMessage, 'value'>[],
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits & { maxMessageBytes: number },
): Promise<Classified<RecordTypes[K]>[]> {
  const results = new Array<Classified<RecordTypes[K]>>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as Pick<KafkaMessage, 'value'>;
    results[i] =
      classifyKnown(message, kind, codecs, limits) ?? (await classifyUnseen(message, kind, codecs, limits));
  }
  return results;
}

/** The rest of classifyMessage when classifyKnown could not decode: fetch the writer schema. */
async function classifyUnseen<K extends RecordKind>(
  message: Pick<KafkaMessage, 'value'>,
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits,
): Promise<Classified<RecordTypes[K]>> {
  let value: RecordTypes[K];
  try {
    value = await codecs[kind].decode(message.value);
  } catch (error) {
    // A registry outage or refusal is not the message's fault: the batch is tried again.
    if (!isRecordFault(error)) throw error;
    return { ok: false, code: errorCode(error), reason: errorMessage(error) };
  }
  return validated(kind, value, limits);
}

/**
 * classifyMessage without waiting, for the hot loop: undefined when the writer schema must be
 * fetched first (the first message of a schema id).
 */
export function classifyKnown<K extends RecordKind>(
  message: Pick<KafkaMessage, 'value'>,
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits & { maxMessageBytes: number },
): Classified<RecordTypes[K]> | undefined {
  const size = message.value?.length ?? 0;
  if (size > limits.maxMessageBytes) {
    const error = new OversizedMessageError(size, limits.maxMessageBytes);
    return { ok: false, code: error.code, reason: error.message };
  }
  let known: { value: RecordTypes[K] } | undefined;
  try {
    known = codecs[kind].decodeKnown(message.value);
  } catch (error) {
    return { ok: false, code: errorCode(error), reason: errorMessage(error) };
  }
  return known && validated(kind, known.value, limits);
}

function validated<K extends RecordKind>(
  kind: K,
  value: RecordTypes[K],
  limits: ValidationLimits,
): Classified<RecordTypes[K]> {
  const problems = findProblems(kind, value, limits);
  if (problems.length > 0) return { ok: false, code: 'FW_INVALID_RECORD', reason: problems.join('; ') };
  return { ok: true, value };
}

export class RecordConsumer<S extends Subscriptions> {
  readonly consumer: Consumer;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly consumed: Counter<'topic'> | undefined;
  private readonly deadLettered: Counter<'topic' | 'code'> | undefined;
  private readonly lag: Gauge<'topic' | 'partition'> | undefined;
  private readonly retries: Counter<'topic' | 'code'> | undefined;
  private readonly failingGauge: Gauge<'group'> | undefined;
  private readonly failing: FailingPartitions;
  private running = false;
  private stopping = false;
  /** Per `topic:partition`: the newest event time taken, and the offset to commit with it. */
  private readonly progressTimes = new Map<string, number>();
  private readonly pendingCommits = new Map<string, { topic: string; partition: number; offset: string }>();
  private lastProgressCommit = 0;
  private commitTimer: NodeJS.Timeout | undefined;

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
    if (options.metrics) {
      this.consumed = counter(options.metrics, {
        name: 'flywheel_consumer_records_total',
        help: 'Records consumed and handed to the service, by topic',
        labelNames: ['topic'],
      });
      this.deadLettered = counter(options.metrics, {
        name: 'flywheel_dead_letters_total',
        help: 'Messages sent to the dead-letter topic, by source topic and error code',
        labelNames: ['topic', 'code'],
      });
      this.lag = gauge(options.metrics, {
        name: 'flywheel_consumer_lag',
        help: 'Messages behind the end of the partition after the last batch',
        labelNames: ['topic', 'partition'],
      });
      this.retries = counter(options.metrics, {
        name: 'flywheel_consumer_batch_retries_total',
        help: 'Batches tried again after a service failure (never dead-lettered), by topic and code',
        labelNames: ['topic', 'code'],
      });
      this.failingGauge = gauge(options.metrics, {
        name: 'flywheel_consumer_failing_partitions',
        help: 'Partitions whose batch is failing now with a service failure (not ready meanwhile), by group',
        labelNames: ['group'],
      });
    }
    this.failing = new FailingPartitions(
      (count) => this.failingGauge?.set({ group: options.groupId }, count),
      this.now,
    );
    const { CRASH, GROUP_JOIN, STOP } = this.consumer.events;
    this.consumer.on(CRASH, ({ payload }) => {
      this.running = payload.restart;
      this.log.error({ err: payload.error, restart: payload.restart }, 'consumer crashed');
      if (!payload.restart) this.options.onCrash?.(payload.error);
    });
    this.consumer.on(GROUP_JOIN, ({ payload }) => {
      this.running = true;
      // A commit still pending for a partition now another member's would overwrite its progress.
      const assignment = payload.memberAssignment as Record<string, number[] | undefined>;
      for (const [key, c] of this.pendingCommits)
        if (!(assignment[c.topic] ?? []).includes(c.partition)) this.pendingCommits.delete(key);
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
    // While stopping, a batch commits its progress as it ends; what is pending commits now,
    // while this member is still in the group.
    this.stopping = true;
    await this.flushProgress();
    await this.consumer.disconnect();
  }

  /** Commits the pending offsets with their progress metadata. */
  private async flushProgress(): Promise<void> {
    clearTimeout(this.commitTimer);
    this.commitTimer = undefined;
    if (this.pendingCommits.size === 0) return;
    const commits = [...this.pendingCommits.entries()];
    this.pendingCommits.clear();
    this.lastProgressCommit = Date.now();
    try {
      await this.consumer.commitOffsets(
        commits.map(([key, c]) => ({
          ...c,
          metadata: progressMetadata(this.progressTimes.get(key) ?? -Infinity),
        })),
      );
    } catch (error) {
      // A rebalance moved the partition (its next owner resumes from the last commit: at least
      // once, as always), or Kafka is away: put them back for the next flush unless newer came.
      for (const [key, c] of commits) if (!this.pendingCommits.has(key)) this.pendingCommits.set(key, c);
      this.log.warn({ err: error }, 'committing offsets with progress failed; trying again');
      // Tried again even if no batch comes: downstream waits for this progress.
      if (!this.stopping)
        this.commitTimer ??= setTimeout(
          () => void this.flushProgress(),
          Math.max(100, this.options.commitProgress?.commitIntervalMs ?? 0),
        );
    }
  }

  private noteProgress(
    topic: string,
    partition: number,
    offset: string,
    maxEventTime: number | undefined,
  ): Promise<void> {
    const key = `${topic}:${partition}`;
    if (maxEventTime !== undefined && maxEventTime > (this.progressTimes.get(key) ?? -Infinity))
      this.progressTimes.set(key, maxEventTime);
    this.pendingCommits.set(key, { topic, partition, offset });
    const interval = this.options.commitProgress?.commitIntervalMs ?? 0;
    if (this.stopping || Date.now() - this.lastProgressCommit >= interval) return this.flushProgress();
    this.commitTimer ??= setTimeout(() => void this.flushProgress(), interval);
    return Promise.resolve();
  }

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
    const { topic, partition } = batch;
    const kind = this.options.subscriptions[topic];
    if (kind === undefined) throw new Error(`no record kind configured for topic ${topic}`);

    const context: BatchContext = { topic, partition, heartbeat: () => payload.heartbeat() };
    let accepted = 0;
    let maxEventTime: number | undefined;
    const done = await retryUntilDone(
      async () => {
        const result = this.options.handleRaw
          ? await this.handleRawBatch(batch.messages, context, this.options.handleRaw)
          : await this.handleDecoded(batch.messages, context, kind, this.options.handle);
        if (result.letters.length > 0) await this.publishLetters(topic, partition, result.letters);
        accepted = result.accepted;
        maxEventTime = result.maxEventTime;
      },
      {
        stillOwned: () => payload.isRunning() && !payload.isStale(),
        heartbeat: () => payload.heartbeat(),
        delayMs: this.options.retryDelayMs ?? backoffUpTo(this.options.maxRetryDelayMs),
        onFailure: (error, attempt) => {
          const { code } = this.failing.failed(topic, partition, error, attempt);
          this.retries?.inc({ topic, code });
          this.log.warn(
            { err: error, topic, partition, code, attempt: attempt + 1, firstOffset: batch.firstOffset() },
            "batch failed (not the records' fault): trying it again, nothing dead-lettered or committed",
          );
        },
      },
    );
    this.failing.recovered(topic, partition);
    if (!done) return; // the partition moved or the consumer stops: the batch is fetched again
    this.consumed?.inc({ topic }, accepted);
    payload.resolveOffset(batch.lastOffset());
    this.lag?.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    await payload.heartbeat();
    if (this.options.commitProgress)
      await this.noteProgress(topic, partition, String(BigInt(batch.lastOffset()) + 1n), maxEventTime);
    else await payload.commitOffsetsIfNecessary();
  }

  private async publishLetters(topic: string, partition: number, letters: DeadLetter[]): Promise<void> {
    await this.options.deadLetters.publish(letters);
    for (const letter of letters) this.deadLettered?.inc({ topic, code: letter.errorCode });
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
      maxMessageBytes: this.options.maxMessageBytes,
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

    const rejected = await this.isolate(good, async (records) => {
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
    const rejected = await this.isolate(messages, async (part) => {
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

  /**
   * Run the handler over the records; when it throws a RecordError, split them to isolate the
   * records at fault. Any other failure is thrown (the batch is tried again, see processBatch).
   */
  private async isolate<R>(
    records: R[],
    run: (records: R[]) => Promise<Rejection<R>[]>,
  ): Promise<Rejection<R>[]> {
    if (records.length === 0) return [];
    try {
      return await run(records);
    } catch (error) {
      if (!isRecordFault(error)) throw error;
      if (records.length === 1) return [{ record: records[0] as R, error }];
      this.log.warn(
        { err: error, size: records.length },
        'handler failed on a batch; splitting it to isolate bad records',
      );
      const middle = Math.ceil(records.length / 2);
      return [
        ...(await this.isolate(records.slice(0, middle), run)),
        ...(await this.isolate(records.slice(middle), run)),
      ];
    }
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
