// Read a topic from the beginning up to the end offsets it had when the read started. Used by
// operator commands (dead-letter inspection) and by tests that check what a run produced.
// For topics written only by non-transactional producers: a commit marker at the very end of a
// partition is never delivered to eachBatch, so that partition would not finish.
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';

export type ReadMessage = KafkaMessage & {
  topic: string;
  partition: number;
};

export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  options: { timeoutMs?: number; groupPrefix?: string } = {},
): Promise<ReadMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  const groupId = `${options.groupPrefix ?? 'flywheel.reader'}.${randomUUID()}`;
  let ends: Map<number, bigint>;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    ends = new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
  } catch (error) {
    await admin.disconnect();
    throw error;
  }
  const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  const messages: ReadMessage[] = [];
  if (remaining.size === 0) {
    await admin.disconnect();
    return messages;
  }
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`reading ${topic} timed out; partitions not finished: ${[...remaining].join(',')}`),
          ),
        options.timeoutMs ?? 60000,
      );
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            const end = ends.get(batch.partition) ?? 0n;
            for (const message of batch.messages) {
              if (BigInt(message.offset) < end)
                messages.push({ ...message, topic, partition: batch.partition });
            }
            if (BigInt(batch.lastOffset()) + 1n >= end) remaining.delete(batch.partition);
            if (remaining.size === 0) {
              clearTimeout(timer);
              resolve();
            }
            await Promise.resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
    await admin.deleteGroups([groupId]).catch(() => undefined);
    await admin.disconnect();
  }
  return messages.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}
