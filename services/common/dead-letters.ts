// Dead-letter publishing: the original bytes, the reason and where the message came from go to
// fw.dlq, keyed like the original, so an operator can inspect, fix and replay it.
import type { IHeaders, Producer } from 'kafkajs';
import type { AvroCodec } from './avro/codec.js';
import type { DeadLetter } from './contracts.js';
import { sendInChunks } from './kafka.js';
import { TOPICS } from './topics.js';

// Broker default max.message.bytes is ~1 MiB; keep room for the envelope.
export const MAX_DEAD_LETTER_VALUE_BYTES = 900 * 1024;

/**
 * The largest message read as `kind`: a dead letter carries the refused message (up to
 * MAX_DEAD_LETTER_VALUE_BYTES) with its reason, key and headers, so it may exceed the limit of
 * the message it is about.
 */
export function readLimitOf(kind: string, maxMessageBytes: number): number {
  return kind === 'deadLetter'
    ? Math.max(maxMessageBytes, MAX_DEAD_LETTER_VALUE_BYTES + 128 * 1024)
    : maxMessageBytes;
}

export interface RejectedMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
  timestamp?: string;
}

export function toDeadLetter(
  message: RejectedMessage,
  failure: { code: string; reason: string },
  context: { service: string; consumerGroup: string | null; now: number },
): DeadLetter {
  let value = message.value;
  let reason = failure.reason;
  if (value && value.length > MAX_DEAD_LETTER_VALUE_BYTES) {
    reason = `${reason} (value truncated from ${value.length} to ${MAX_DEAD_LETTER_VALUE_BYTES} bytes)`;
    value = value.subarray(0, MAX_DEAD_LETTER_VALUE_BYTES);
  }
  return {
    sourceTopic: message.topic,
    sourcePartition: message.partition,
    sourceOffset: Number(message.offset),
    key: message.key,
    value,
    headers: headersToBytes(message.headers),
    sourceTimestamp: message.timestamp === undefined ? null : Number(message.timestamp),
    errorCode: failure.code,
    reason,
    service: context.service,
    consumerGroup: context.consumerGroup,
    failedAt: context.now,
  };
}

function headersToBytes(headers: IHeaders | undefined): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) out[name] = Buffer.isBuffer(first) ? first : Buffer.from(first);
  }
  return out;
}

/** Headers every dead letter carries, so tools can filter without decoding it. */
export function deadLetterHeaders(letter: DeadLetter): Record<string, string> {
  return {
    'fw-error-code': letter.errorCode,
    'fw-source': `${letter.sourceTopic}/${letter.sourcePartition}/${letter.sourceOffset}`,
  };
}

export class DeadLetterPublisher {
  constructor(
    private readonly producer: Producer,
    private readonly codec: AvroCodec<DeadLetter>,
    private readonly topic: string = TOPICS.deadLetters,
  ) {}

  /** Resolves once the broker acknowledged every letter. */
  async publish(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const schemaId = await this.codec.schemaId();
    await sendInChunks(
      this.producer,
      this.topic,
      letters.map((letter) => ({
        key: letter.key,
        value: this.codec.encodeWith(schemaId, letter),
        headers: deadLetterHeaders(letter),
      })),
    );
  }
}
