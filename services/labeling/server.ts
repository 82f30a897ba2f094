// `flywheel labeling`: the labeler API as a process; labels go to fw.labels.human.
import { TokenTable } from '../common/auth.js';
import { createProducer } from '../common/kafka.js';
import { createRedis } from '../common/redis.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { loadLabelingConfig, queueOptionsFrom } from './config.js';
import { buildLabelingApp, type ReviewPayload } from './http.js';
import { labelPublisher } from './publish.js';
import { LabelingQueue } from './queue.js';

export async function runLabeling(runtime: Runtime, adminToken: string | undefined): Promise<number> {
  const config = loadLabelingConfig();
  const { logger, lifecycle } = runtime;
  const redis = createRedis(runtime.config.REDIS_URL, logger);
  await redis.connect();
  lifecycle.add('redis', async () => {
    await redis.quit();
  });
  // Bounded retries that end before the publish time limit (an idempotent producer retries
  // forever, and a send given up on by the API could then still land after the labeler's retry).
  const producer = createProducer(runtime.kafka, {
    idempotent: false,
    maxInFlightRequests: 1,
    retry: {
      retries: 3,
      initialRetryTime: 200,
      maxRetryTime: Math.floor(config.FW_LABELING_PUBLISH_TIMEOUT_MS / 5),
    },
  });
  await producer.connect();
  lifecycle.add('producer', () => producer.disconnect());
  const queue = new LabelingQueue<ReviewPayload>(redis, config.FW_LABELING_QUEUE, queueOptionsFrom(config));
  const tokens = new TokenTable();
  for (const { id, token } of config.FW_LABELER_TOKENS) tokens.add(token, { id, role: 'labeler' });
  if (adminToken) tokens.add(adminToken, { id: 'admin', role: 'admin' });
  const publish = labelPublisher(
    producer,
    runtime.codecs.humanLabel,
    TOPICS.humanLabels,
    config.FW_LABELING_PUBLISH_TIMEOUT_MS,
  );
  const app = buildLabelingApp({
    queue,
    tokens,
    guidelines: config.FW_LABELING_GUIDELINES,
    question: config.FW_LABELING_QUESTION,
    flags: config.FW_LABELING_FLAGS,
    blind: config.FW_LABELING_BLIND,
    publish,
    logger,
    metrics: runtime.metrics,
  });
  lifecycle.add('http', () => app.close());
  lifecycle.installSignalHandlers();
  await app.listen({ host: '0.0.0.0', port: config.FW_LABELING_PORT });
  logger.info(
    {
      port: config.FW_LABELING_PORT,
      queue: config.FW_LABELING_QUEUE,
      labelers: config.FW_LABELER_TOKENS.length,
    },
    'labeling API listening',
  );
  return new Promise<number>(() => undefined);
}
