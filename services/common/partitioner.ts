// Kafka's default partitioner (Java client's murmur2 of the key bytes, modulo the partition
// count), in 32-bit integer arithmetic. KafkaJS's DefaultPartitioner computes the same hash on
// 64-bit Long objects, about a microsecond and several allocations per message; every service
// sends on the producer's thread, so that cost caps them all. Same partitions as KafkaJS and the
// Java client: co-partitioning of keyed topics holds whichever client wrote them.
import type { ICustomPartitioner, PartitionerArgs } from 'kafkajs';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = SEED ^ length;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k =
      (data[i] as number) |
      ((data[i + 1] as number) << 8) |
      ((data[i + 2] as number) << 16) |
      ((data[i + 3] as number) << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  // The last one to three bytes (Java's switch falls through from the highest).
  const tail = length & 3;
  if (tail === 3) h ^= (data[blocks + 2] as number) << 16;
  if (tail >= 2) h ^= (data[blocks + 1] as number) << 8;
  if (tail >= 1) h = Math.imul(h ^ (data[blocks] as number), M);
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner gives `key` among `partitions`. */
export function partitionOf(key: Uint8Array | string, partitions: number): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return (murmur2(bytes) & 0x7fffffff) % partitions;
}

/**
 * KafkaJS's DefaultPartitioner with the hash above: an explicit partition wins, then the key's
 * hash over all partitions, and messages without a key go round-robin over partitions that
 * have a leader.
 */
export const JavaCompatiblePartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>();
  return ({ topic, partitionMetadata, message }: PartitionerArgs) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition;
    const count = partitionMetadata.length;
    if (message.key !== null && message.key !== undefined) return partitionOf(message.key, count);
    const next = (counters.get(topic) ?? Math.floor(Math.random() * 0x7fffffff)) + 1;
    counters.set(topic, next);
    const available = partitionMetadata.filter((p) => p.leader >= 0);
    if (available.length > 0)
      return (available[next % available.length] as { partitionId: number }).partitionId;
    return next % count;
  };
};
