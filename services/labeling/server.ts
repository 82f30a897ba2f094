// `flywheel labeling`: the labeler API as a process; labels go to fw.labels.human.
import { TokenTable } from '../common/auth.js';
import type { HumanLabel } from '../common/contracts.js';
import { createProducer } from '../common/kafka.js';
import { createRedis } from '../common/redis.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { loadLabelingConfig, queueOptionsFrom } from './config.js';
import { buildLabelingApp, type ReviewPayload } from './http.js';
import { LabelingQueue } from './queue.js';

export async function runLabeling(runtime: Runtime, adminToken: string | undefined): Promise<number> {
  const config = loadLabelingConfig();
  const { logger, lifecycle } = runtime;
  const redis = createRedis(runtime.config.REDIS_URL, logger);
  await redis.connect();
  lifecycle.add('redis', async () => {
    await redis.quit();
  });
  const producer = createProducer(runtime.kafka);
  await producer.connect();
  lifecycle.add('producer', () => producer.disconnect());
  const queue = new LabelingQueue<ReviewPayload>(redis, config.FW_LABELING_QUEUE, queueOptionsFrom(config));
  const tokens = new TokenTable();
  for (const { id, token } of config.FW_LABELER_TOKENS) tokens.add(token, { id, role: 'labeler' });
  if (adminToken) tokens.add(adminToken, { id: 'admin', role: 'admin' });
  const schemaId = await runtime.codecs.humanLabel.schemaId();
  const publish = async (label: HumanLabel) => {
    await producer.send({
      topic: TOPICS.humanLabels,
      acks: -1,
      messages: [{ key: label.userId, value: runtime.codecs.humanLabel.encodeWith(schemaId, label) }],
    });
  };
  const app = buildLabelingApp({ queue, tokens, guidelines: config.FW_LABELING_GUIDELINES, publish, logger });
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
