// Read a topic from the beginning up to the end offsets it had when the read started. Used by
// operator commands (dead-letter inspection) and by tests that check what a run produced.
// A fetch of nothing but transaction markers (the end of a partition written in transactions, as
// the joiner writes fw.dlq) never reaches eachBatch; the consumer's batch events count it.
import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { FlywheelError } from './errors.js';

export type ReadMessage = KafkaMessage & {
  topic: string;
  partition: number;
};

export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  options: { timeoutMs?: number; groupPrefix?: string } = {},
): Promise<ReadMessage[]> {
  const messages: ReadMessage[] = [];
  await scanTopic(kafka, topic, options, (message, partition) => {
    messages.push({ ...message, topic, partition });
  });
  return messages.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

/** The records a topic holds (committed ones; no transaction markers, no compacted gaps). */
export async function countRecords(
  kafka: Kafka,
  topic: string,
  options: { timeoutMs?: number } = {},
): Promise<number> {
  let count = 0;
  await scanTopic(kafka, topic, { ...options, groupPrefix: 'flywheel.counter' }, () => {
    count++;
  });
  return count;
}

/** Every record of the topic up to its end when the scan began, handed over one at a time. */
export async function scanTopic(
  kafka: Kafka,
  topic: string,
  options: { timeoutMs?: number; groupPrefix?: string },
  onMessage: (message: KafkaMessage, partition: number) => void | Promise<void>,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${options.groupPrefix ?? 'flywheel.reader'}.${randomUUID()}`;
  const ends = await topicEnds(admin, topic);
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  if (remaining.size === 0) {
    await admin.disconnect();
    return;
  }
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  let finished = () => undefined as void;
  const reached = (partition: number, lastOffset: string) => {
    if (BigInt(lastOffset) + 1n >= (ends.get(partition) ?? 0n)) remaining.delete(partition);
    if (remaining.size === 0) finished();
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.batchSize === 0) reached(payload.partition, payload.lastOffset);
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      finished = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        const left = [...remaining].join(',');
        reject(
          new FlywheelError('FW_TIMED_OUT', `reading ${topic} timed out; partitions not finished: ${left}`),
        );
      }, options.timeoutMs ?? 60000);
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            const end = ends.get(batch.partition) ?? 0n;
            for (const message of batch.messages) {
              if (BigInt(message.offset) < end) await onMessage(message, batch.partition);
            }
            reached(batch.partition, batch.lastOffset());
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** Each partition's end offset; the admin client is closed when it fails. */
async function topicEnds(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } catch (error) {
    await admin.disconnect();
    throw error;
  }
}
