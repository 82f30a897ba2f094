// The baseline the stream benchmarks measure against: a plain KafkaJS consume→produce of the same
// bytes, from one topic to another, in a fresh consumer group.
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';

export const BENCH_CONSUMER_SETTINGS = {
  sessionTimeout: 30000,
  heartbeatInterval: 3000,
  maxWaitTimeInMs: 200,
};

/** Messages/s copying `total` messages of `from` to `to`, timed from the first batch (group join excluded). */
export async function passthroughRate(
  kafka: Kafka,
  producer: Producer,
  route: { from: string; to: string; total: number },
): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench.pass.${randomUUID()}`, ...BENCH_CONSUMER_SETTINGS });
  await consumer.connect();
  await consumer.subscribe({ topic: route.from, fromBeginning: true });
  let done = 0;
  let started = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        started ||= Date.now();
        await producer.send({
          topic: route.to,
          acks: -1,
          messages: batch.messages.map((m) => ({ key: m.key, value: m.value })),
        });
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
