// A labeling service on the real stack for tests: its own Kafka topic for human labels, its own
// queue in Redis, the fastify app, and a collector of the labels it publishes.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { TokenTable } from '../../services/common/auth.js';
import type { HumanLabel } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { createRedis } from '../../services/common/redis.js';
import type { Runtime } from '../../services/common/runtime.js';
import { buildLabelingApp, type ReviewPayload } from '../../services/labeling/http.js';
import { labelPublisher } from '../../services/labeling/publish.js';
import { LabelingQueue } from '../../services/labeling/queue.js';
import { TopicCollector } from './collect.js';
import { createTestTopics, type TestTopics } from './kafka.js';

export interface LabelingHarness {
  app: FastifyInstance;
  queue: LabelingQueue<ReviewPayload>;
  labels: TopicCollector<HumanLabel>;
  close(): Promise<void>;
}

export async function startLabeling(
  runtime: Runtime,
  options: {
    tokens: TokenTable;
    labelsRequired: number;
    guidelines: string;
    /** Publish to this topic instead of the harness's own (one not created yet: Kafka refuses). */
    publishTopic?: string;
    publishTimeoutMs?: number;
  },
): Promise<LabelingHarness> {
  const topics: TestTopics<'labels'> = await createTestTopics(runtime, ['labels'], 1);
  // As the labeling service makes it (services/labeling/server.ts): bounded retries.
  const producer: Producer = createProducer(runtime.kafka, {
    idempotent: false,
    maxInFlightRequests: 1,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 1000 },
  });
  await producer.connect();
  const redis: Redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
  await redis.connect();
  const queue = new LabelingQueue<ReviewPayload>(redis, `test-${randomUUID()}`, {
    leaseMs: 60_000,
    maxAgeMs: 3_600_000,
    labelsRequired: options.labelsRequired,
    dedupeTtlSeconds: 60,
  });
  const publishTopic = options.publishTopic ?? topics.names.labels;
  const app = buildLabelingApp({
    queue,
    tokens: options.tokens,
    guidelines: options.guidelines,
    publish: labelPublisher(
      producer,
      runtime.codecs.humanLabel,
      publishTopic,
      options.publishTimeoutMs ?? 15_000,
    ),
  });
  const labels = new TopicCollector<HumanLabel>(runtime.kafka, topics.names.labels, (b) =>
    runtime.codecs.humanLabel.decode(b),
  );
  if (!options.publishTopic) await labels.start();
  return {
    app,
    queue,
    labels,
    async close() {
      await labels.stop();
      await app.close();
      const keys = await redis.keys(`${queue.keys.prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
      await producer.disconnect();
      await topics.cleanup();
    },
  };
}

/** A review task's payload, numbered. */
export function reviewPayload(n: number, over: Partial<ReviewPayload> = {}): ReviewPayload {
  return {
    predictionId: `pred-${n}`,
    eventId: `c-${n}`,
    userId: `user-${n}`,
    itemId: `item-${n}`,
    category: 'books',
    price: 10 + n,
    sessionId: `s-${n}`,
    eventTime: Date.now(),
    score: 0.5,
    modelVersion: 'v000001',
    reason: 'uncertain',
    ...over,
  };
}
