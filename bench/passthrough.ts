// The baseline the stream benchmarks measure against: a plain KafkaJS consume→produce of the same
// bytes, from one topic to another, in a fresh consumer group. It sends in the services' chunks
// (sendInChunks): one send of a whole fetched batch is slower in KafkaJS, whose grouping of a
// send's messages by partition copies the partition's list once per message (quadratic in the
// batch), and a baseline slowed by that would flatter every ratio against it.
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import { sendInChunks } from '../services/common/kafka.js';

export const BENCH_CONSUMER_SETTINGS = {
  sessionTimeout: 30000,
  heartbeatInterval: 3000,
  maxWaitTimeInMs: 200,
};

/** Messages/s copying `total` messages of `from` to `to`, timed from the first batch (group join excluded). */
export async function passthroughRate(
  kafka: Kafka,
  producer: Producer,
  route: { from: string; to: string; total: number; partitionsConsumedConcurrently?: number },
): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench.pass.${randomUUID()}`, ...BENCH_CONSUMER_SETTINGS });
  await consumer.connect();
  await consumer.subscribe({ topic: route.from, fromBeginning: true });
  let done = 0;
  let started = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: route.partitionsConsumedConcurrently ?? 1,
      eachBatch: async (payload) => {
        const { batch } = payload;
        started ||= Date.now();
        await sendInChunks(
          producer,
          route.to,
          batch.messages.map((m) => ({ key: m.key, value: m.value })),
        );
        payload.resolveOffset(batch.lastOffset());
        await payload.heartbeat();
        await payload.commitOffsetsIfNecessary();
        done += batch.messages.length;
        if (done >= route.total) resolve();
      },
    });
  });
  const seconds = (Date.now() - started) / 1000;
  await consumer.disconnect();
  return route.total / seconds;
}

/** Messages/s only consuming `total` messages of `topic` (no decoding), timed from the first batch. */
export async function consumeRate(
  kafka: Kafka,
  route: { topic: string; total: number; maxBytesPerPartition?: number },
): Promise<number> {
  const consumer = kafka.consumer({
    groupId: `bench.consume.${randomUUID()}`,
    ...BENCH_CONSUMER_SETTINGS,
    ...(route.maxBytesPerPartition ? { maxBytesPerPartition: route.maxBytesPerPartition } : {}),
  });
  await consumer.connect();
  await consumer.subscribe({ topic: route.topic, fromBeginning: true });
  let done = 0;
  let first: { at: number; count: number } | null = null;
  let ended = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        done += batch.messages.length;
        first ??= { at: Date.now(), count: done };
        await Promise.resolve();
        if (done >= route.total) {
          ended = Date.now();
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  const start = first as unknown as { at: number; count: number };
  return ((route.total - start.count) / (ended - start.at)) * 1000;
}
