// One Kafka transaction that carries a batch's outputs and the input offsets that produced them:
// consumers reading read_committed see the outputs exactly when the offsets move, so a restart
// neither loses nor repeats a batch. Used by every stage that writes exactly once (the joiner,
// its repartitioner); the state a stage keeps beside it is the stage's own.
import type { IHeaders, Message, Producer } from 'kafkajs';
import { sendInChunks } from './kafka.js';

export interface TransactionRecord {
  topic: string;
  key: Buffer | string | null;
  value: Buffer;
  headers?: IHeaders;
}

export interface TransactionOffset {
  topic: string;
  partition: number;
  /** The next offset to read. */
  offset: string;
  /** Stored with the offset (a batch sequence, a stream's progress); read back by admin.fetchOffsets. */
  metadata: string;
}

/** Sends `records` and commits `offsets` for `groupId` atomically; aborts on any failure. */
export async function commitTransaction(
  producer: Producer,
  records: readonly TransactionRecord[],
  groupId: string,
  offsets: readonly TransactionOffset[],
): Promise<void> {
  const tx = await producer.transaction();
  try {
    const byTopic = new Map<string, Message[]>();
    for (const r of records) {
      let list = byTopic.get(r.topic);
      if (!list) byTopic.set(r.topic, (list = []));
      list.push({ key: r.key, value: r.value, ...(r.headers ? { headers: r.headers } : {}) });
    }
    // In requests under the broker's message size: one batch can carry thousands of records.
    for (const [topic, list] of byTopic) await sendInChunks(tx, topic, list);
    const topics = [...new Set(offsets.map((o) => o.topic))].map((topic) => ({
      topic,
      partitions: offsets
        .filter((o) => o.topic === topic)
        .map(({ partition, offset, metadata }) => ({ partition, offset, metadata })),
    }));
    if (topics.length > 0)
      await whileConcurrentTransactions(() => tx.sendOffsets({ consumerGroupId: groupId, topics }));
    await tx.commit();
  } catch (error) {
    await tx.abort().catch(() => undefined);
    throw error;
  }
}

/**
 * Retries `call` while the broker answers CONCURRENT_TRANSACTIONS: the previous transaction's
 * markers are still being written. Kafka's own client retries this; KafkaJS does not for
 * AddOffsetsToTxn, and the failed request changed nothing, so sending it again is safe.
 */
async function whileConcurrentTransactions<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || attempt >= 30) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10 * 2 ** attempt, 500)));
    }
  }
}
