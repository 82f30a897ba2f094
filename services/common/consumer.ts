// The consumer every service uses. Per batch: reject oversized, undecodable and invalid messages
// to fw.dlq with their reason (or let the service decode and say which it refuses: handleRaw);
// hand the good ones to the service; resolve and commit offsets only after both are durable. A
// handler error is retried when retriable; otherwise the batch is split so only the records the
// handler cannot take are dead-lettered. Nothing is skipped silently.
import type { Consumer, ConsumerConfig, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import type { Counter, Gauge, Registry } from 'prom-client';
import { counter, gauge } from './metrics.js';
import type { Codecs, DeadLetter, RecordKind, RecordTypes, ValidationLimits } from './contracts.js';
import { findProblems } from './contracts.js';
import { toDeadLetter, type DeadLetterPublisher } from './dead-letters.js';
import { FlywheelError, OversizedMessageError, errorCode, errorMessage, isRetriable } from './errors.js';
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
) => Promise<{ rejected: RawRejection[] }>;

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
};

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
    // A registry outage is not the message's fault: let the batch retry instead.
    if (isRetriable(error)) throw error;
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
    }
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
      autoCommit: true,
      autoCommitInterval: 1000,
      eachBatch: (payload) => this.processBatch(payload),
    });
  }

  /** Finishes the batch in flight, commits resolved offsets and leaves the group. */
  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }

  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (batch.messages.length === 0 || !payload.isRunning() || payload.isStale()) return;
    const { topic, partition } = batch;
    const kind = this.options.subscriptions[topic];
    if (kind === undefined) throw new Error(`no record kind configured for topic ${topic}`);

    const context: BatchContext = { topic, partition, heartbeat: () => payload.heartbeat() };
    const { accepted, letters } = this.options.handleRaw
      ? await this.handleRawBatch(batch.messages, context, this.options.handleRaw)
      : await this.handleDecoded(batch.messages, context, kind, this.options.handle);
    if (letters.length > 0) {
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
    this.consumed?.inc({ topic }, accepted);
    payload.resolveOffset(batch.lastOffset());
    this.lag?.set({ topic, partition: String(partition) }, Number(batch.offsetLag()));
    await payload.heartbeat();
    await payload.commitOffsetsIfNecessary();
  }

  /** Decode and validate, hand the good records to the service; dead letters for the rest. */
  private async handleDecoded(
    messages: KafkaMessage[],
    context: BatchContext,
    kind: RecordKind,
    handle: BatchHandler<S>,
  ): Promise<{ accepted: number; letters: DeadLetter[] }> {
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
  ): Promise<{ accepted: number; letters: DeadLetter[] }> {
    const { topic, partition } = context;
    const rejected = await this.isolate(messages, async (part) => {
      const result = await handleRaw(part, context);
      return result.rejected.map(({ index, code, reason }) => ({
        record: part[index] as KafkaMessage,
        error: new FlywheelError(code, reason),
      }));
    });
    const letters = rejected.map(({ record, error }) =>
      this.letter({ topic, partition, ...record }, rejectionOf(error)),
    );
    return { accepted: messages.length - rejected.length, letters };
  }

  /**
   * Run the handler over the records; on a non-retriable failure split them to isolate the bad
   * ones. A retriable failure is thrown: offsets stay unresolved and the batch is fetched again.
   */
  private async isolate<R>(
    records: R[],
    run: (records: R[]) => Promise<Rejection<R>[]>,
  ): Promise<Rejection<R>[]> {
    if (records.length === 0) return [];
    try {
      return await run(records);
    } catch (error) {
      if (isRetriable(error)) throw error; // offsets stay unresolved: the batch is fetched again
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
  return {
    code: error instanceof FlywheelError ? error.code : 'FW_HANDLER_REJECTED',
    reason: errorMessage(error),
  };
}

function batchValue(messages: KafkaMessage[], offset: string): Buffer | null {
  return messages.find((m) => m.offset === offset)?.value ?? null;
}
