// The one place Flywheel builds KafkaJS objects, so a client swap stays cheap. KafkaJS logs go
// through the service's pino logger.
import { Kafka, logLevel, type Admin, type Message, type Producer, type ProducerConfig } from 'kafkajs';
import { FlywheelError } from './errors.js';
import type { Logger } from './logger.js';
import { JavaCompatiblePartitioner } from './partitioner.js';

export type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
}

const PINO_LEVEL: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

// Retriable broker answers during start-up (coordinator loading, leader election) and while a
// new transactional owner fences the old one are routine; KafkaJS logs each at ERROR before
// retrying, which reads like an outage.
const ROUTINE =
  /coordinator is (loading|not available)|not the correct coordinator|leadership election|not the leader|another concurrent operation on the same transaction/i;

export function createKafka({ brokers, clientId, logger }: KafkaOptions): Kafka {
  const kafkaLogger = logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId,
    brokers,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 10 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }) => {
        const { message, timestamp: _timestamp, logger: _logger, ...extra } = log;
        const text = String(message);
        const pinoLevel =
          ROUTINE.test(text) || ROUTINE.test(String(extra.error ?? ''))
            ? 'debug'
            : (PINO_LEVEL[level] ?? 'info');
        kafkaLogger[pinoLevel](extra, text);
      },
  });
}

/**
 * Idempotent producer with Java's murmur2 partitioner, so a key lands on the same partition
 * whichever client wrote it (co-partitioning holds with non-KafkaJS producers too). The hash runs
 * on 32-bit integers (partitioner.ts), not KafkaJS's Long objects.
 */
export function createProducer(
  kafka: Kafka,
  options: Omit<ProducerConfig, 'createPartitioner'> = {},
): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 5,
    createPartitioner: JavaCompatiblePartitioner,
    // KafkaJS requires unbounded retries for idempotence; a down broker stalls sends, it never drops them.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 5000 },
    ...options,
  });
}

/** Wait until the broker answers metadata and can coordinate groups; bounded by `timeoutMs`. */
export async function waitForKafka(kafka: Kafka, logger: Logger, timeoutMs = 60000): Promise<Admin> {
  const admin = kafka.admin();
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 1; Date.now() < deadline; attempt++) {
    try {
      await admin.connect();
      await admin.describeCluster();
      // Finding a group coordinator creates __consumer_offsets on a fresh broker.
      await admin.describeGroups(['flywheel.readiness']);
      return admin;
    } catch (error) {
      lastError = error;
      logger.debug({ attempt, err: error }, 'kafka not ready yet');
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * attempt)));
    }
  }
  await admin.disconnect().catch(() => undefined);
  throw new FlywheelError(
    'FW_KAFKA_UNAVAILABLE',
    `kafka did not become ready within ${timeoutMs} ms: ${(lastError as Error)?.message ?? 'no answer'}`,
  );
}

/**
 * Keep each produce request under the broker's limit (message.max.bytes, 1 MiB by default):
 * KafkaJS puts a partition's messages of one send into one record batch, and a big consumer batch
 * turned into predictions can exceed it. Chunks go out in order, each acknowledged before the next.
 */
export const MAX_REQUEST_BYTES = 512 * 1024;

export async function sendInChunks(
  producer: Pick<Producer, 'send'>,
  topic: string,
  messages: Message[],
  maxBytes = MAX_REQUEST_BYTES,
): Promise<void> {
  let chunk: Message[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = (message.value?.length ?? 0) + (message.key?.length ?? 0) + 64;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      await producer.send({ topic, acks: -1, messages: chunk });
      chunk = [];
      bytes = 0;
    }
    chunk.push(message);
    bytes += size;
  }
  if (chunk.length > 0) await producer.send({ topic, acks: -1, messages: chunk });
}
