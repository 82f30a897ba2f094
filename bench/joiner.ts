// Joiner benchmark on the real local broker and Redis, in one run:
//   2·P predictions (with their purchases) already in the topics, P = BENCH_PENDING (100k). The
//   window is set so about P predictions are pending once the first half is read; the rate is
//   measured over the second half, where every prediction read opens a window and one closes.
//   Next to it, the plain KafkaJS consume→produce passthrough of the scorer benchmark over the
//   same prediction topic. Alternated, BENCH_REPEATS times each; medians and the ratio.
//   Redis memory per pending prediction: used_memory after the first half minus before, over
//   the pending count. And the cost of repartitioning the purchases by user (the joiner's
//   repartition stage alone, transactional) next to a passthrough of the same purchases.
// Writes bench/results/joiner.json and prints Markdown tables.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { createProducer, waitForKafka } from '../services/common/kafka.js';
import { ensureTopics } from '../services/common/provision.js';
import { createRedis } from '../services/common/redis.js';
import { createRuntime } from '../services/common/runtime.js';
import type { TopicName } from '../services/common/topics.js';
import { loadJoinerConfig } from '../services/joiner/config.js';
import { Joiner } from '../services/joiner/service.js';
import { Repartitioner } from '../services/joiner/repartition.js';
import { Progress } from '../services/common/progress.js';
import { FeatureSpec } from '../services/model/features.js';
import { ShopSimulation } from '../services/simulator/generator.js';
import { sendInChunks } from '../services/common/kafka.js';
import { passthroughRate } from './passthrough.js';
import { median } from './stats.js';

const ROOT = join(import.meta.dirname, '..');
const PENDING = Number(process.env.BENCH_PENDING ?? 100_000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const CLICKS_PER_SECOND = 100; // the simulated shop's traffic rate (event time)
const LATENESS_MS = 5_000;

const runtime = createRuntime('bench', { ...process.env, LOG_LEVEL: 'warn' });
const id = randomUUID().slice(0, 8);
const topic = (role: string) => `bench.${role}.${id}` as TopicName;
const names = {
  predictions: topic('predictions'),
  purchases: topic('purchases'),
  repartitioned: topic('repartitioned'),
  feedback: topic('feedback'),
  pass: topic('pass'),
  moved: topic('moved'),
  passPurchases: topic('pass-purchases'),
  dlq: topic('dlq'),
};

const admin = await waitForKafka(runtime.kafka, runtime.logger);
await ensureTopics(admin, runtime.logger, {
  partitions: 6,
  replicationFactor: 1,
  specs: Object.values(names).map((name) => ({ name, partitions: 6, configs: {}, description: 'bench' })),
});
const producer = createProducer(runtime.kafka);
await producer.connect();
const redis: Redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
await redis.connect();

// The input: real feature vectors of simulated clicks, as the scorer logs them.
const spec = new FeatureSpec();
const sim = new ShopSimulation({
  seed: 17,
  startTime: Date.now() - 24 * 3600_000,
  trafficRate: CLICKS_PER_SECOND,
});
const predictionSchema = await runtime.codecs.prediction.schemaId();
const purchaseSchema = await runtime.codecs.purchase.schemaId();
const predictions: { key: string; value: Buffer }[] = [];
let firstClickTime = 0;
let lastClickTime = 0;
const purchases: { key: string; value: Buffer }[] = [];
const generating = new Progress({ label: 'generate', total: 2 * PENDING, logger: runtime.logger }).start();
while (predictions.length < 2 * PENDING) {
  const e = sim.next();
  if (e.type === 'click') {
    const c = e.click;
    firstClickTime ||= c.eventTime;
    lastClickTime = c.eventTime;
    predictions.push({
      key: c.userId,
      value: runtime.codecs.prediction.encodeWith(predictionSchema, {
        predictionId: `p-${c.eventId}`,
        eventId: c.eventId,
        userId: c.userId,
        sessionId: c.sessionId,
        itemId: c.itemId,
        category: c.category,
        segment: `${c.country}/${c.device}`,
        modelVersion: 'v000001',
        arm: 'champion',
        score: 0.1,
        confidence: 0.8,
        features: spec.vectorize(c, {
          clicksBefore: 1,
          sessionStart: c.eventTime - 60_000,
          categoriesSeen: 1,
        }),
        featureSpecHash: spec.hash,
        eventTime: c.eventTime,
        serveTime: c.eventTime + 5,
        reviewRequested: false,
        propensity: 1,
        split: null,
      }),
    });
    generating.add(1);
  } else {
    purchases.push({
      key: e.purchase.userId,
      value: runtime.codecs.purchase.encodeWith(purchaseSchema, e.purchase),
    });
  }
}
generating.stop();
// Pending ≈ click rate × (window + lateness), in event time: choose the window that holds PENDING.
const clickRate = predictions.length / ((lastClickTime - firstClickTime) / 1000);
const WINDOW_MS = Math.round((PENDING / clickRate) * 1000) - LATENESS_MS;
console.error(
  `clicks at ${clickRate.toFixed(1)}/s of event time: window ${WINDOW_MS} ms for ${PENDING} pending`,
);
// Sent in slices so the topics hold many record batches, as a live stream's do.
for (let i = 0; i < predictions.length; i += 2000)
  await sendInChunks(producer, names.predictions, predictions.slice(i, i + 2000));
await sendInChunks(producer, names.purchases, purchases);
const averagePredictionBytes = predictions.reduce((s, p) => s + p.value.length, 0) / predictions.length;

const passthrough = () =>
  passthroughRate(runtime.kafka, producer, {
    from: names.predictions,
    to: names.pass,
    total: predictions.length,
  });

const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);

async function joining(): Promise<{
  perSec: number;
  overallPerSec: number;
  pending: number;
  bytesPerPending: number;
  byKey: Record<string, number>;
}> {
  const group = `bench.joiner.${randomUUID()}`;
  const memoryBefore = await usedMemory();
  const joiner = new Joiner({
    runtime,
    http: false,
    config: {
      ...loadJoinerConfig({}),
      FW_JOINER_GROUP: group,
      FW_JOINER_TRANSACTIONAL_ID: group,
      FW_JOIN_WINDOW_MS: WINDOW_MS,
      FW_JOIN_ALLOWED_LATENESS_MS: LATENESS_MS,
      FW_JOINER_MAX_PENDING: 10 * PENDING,
      // Predictions written here, not by a scorer: their own times are their progress.
      FW_JOIN_PREDICTION_PROGRESS: 'stream',
      FW_JOIN_LIVE_LAG_MS: 7 * 24 * 3600_000,
    },
    topics: { ...names, deadLetters: names.dlq },
  });
  const read = () => joiner.counters().predictions ?? 0;
  let started = 0;
  joiner.once('committed', () => (started = Date.now()));
  await joiner.start();
  while (read() < PENDING) await once(joiner, 'committed');
  const half = Date.now();
  const pending = joiner.pending;
  const bytesPerPending = ((await usedMemory()) - memoryBefore) / pending;
  // Where the bytes are: each kind of key, summed over partitions.
  const byKey: Record<string, number> = {};
  for (let p = 0; p < 6; p++) {
    for (const key of await redis.keys(`fw:join:{${group}:${p}}:*`)) {
      const kind = key.slice(key.indexOf('}:') + 2);
      byKey[kind] = (byKey[kind] ?? 0) + Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
    }
  }
  for (const kind of Object.keys(byKey)) byKey[kind] = Math.round((byKey[kind] as number) / pending);
  while (read() < 2 * PENDING) await once(joiner, 'committed');
  const end = Date.now();
  await joiner.stop();
  // Leave Redis as it was for the next run.
  for (let p = 0; p < 6; p++) {
    const keys = await redis.keys(`fw:join:{${group}:${p}}:*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  return {
    perSec: PENDING / ((end - half) / 1000),
    overallPerSec: (2 * PENDING) / ((end - started) / 1000),
    pending,
    bytesPerPending,
    byKey,
  };
}

/** Purchases/s the repartition stage moves onto a topic of its own, from the first to the last. */
async function repartitioning(): Promise<number> {
  const group = `bench.repartition.${randomUUID()}`;
  const stage = new Repartitioner({
    runtime,
    groupId: group,
    transactionalIdPrefix: group,
    source: names.purchases,
    target: names.moved,
    deadLetters: names.dlq,
    sessionTimeoutMs: 10_000,
    maxBatchBytes: 1024 * 1024,
  });
  const admin = runtime.kafka.admin();
  await admin.connect();
  const moved = async () =>
    (await admin.fetchOffsets({ groupId: group, topics: [names.purchases] }))[0]?.partitions.reduce(
      (sum, p) => sum + Math.max(0, Number(p.offset)),
      0,
    ) ?? 0;
  const started = Date.now();
  await stage.start();
  // Polled: the stage commits in its transactions, and says nothing else.
  while ((await moved()) < purchases.length) await new Promise((resolve) => setTimeout(resolve, 20));
  const seconds = (Date.now() - started) / 1000;
  await stage.stop();
  await admin.disconnect();
  return purchases.length / seconds;
}

const passRuns: number[] = [];
const moveRuns: number[] = [];
const purchasePassRuns: number[] = [];
for (let r = 0; r < REPEATS; r++) {
  purchasePassRuns.push(
    await passthroughRate(runtime.kafka, producer, {
      from: names.purchases,
      to: names.passPurchases,
      total: purchases.length,
    }),
  );
  moveRuns.push(await repartitioning());
}
const joinRuns: Awaited<ReturnType<typeof joining>>[] = [];
for (let r = 0; r < REPEATS; r++) {
  passRuns.push(await passthrough());
  joinRuns.push(await joining());
  console.error(
    `run ${r + 1}/${REPEATS}: passthrough ${passRuns.at(-1)?.toFixed(0)}/s, joiner ${joinRuns.at(-1)?.perSec.toFixed(0)}/s with ${joinRuns.at(-1)?.pending} pending`,
  );
}

const result = {
  when: new Date().toISOString(),
  predictions: predictions.length,
  purchases: purchases.length,
  averagePredictionBytes,
  windowMs: WINDOW_MS,
  repeats: REPEATS,
  passthroughPerSec: median(passRuns),
  joinerPerSec: median(joinRuns.map((r) => r.perSec)),
  joinerOverallPerSec: median(joinRuns.map((r) => r.overallPerSec)),
  pendingAtHalf: median(joinRuns.map((r) => r.pending)),
  redisBytesPerPending: median(joinRuns.map((r) => r.bytesPerPending)),
  redisBytesPerPendingByKey: joinRuns.at(-1)?.byKey,
  purchasePassthroughPerSec: median(purchasePassRuns),
  repartitionPerSec: median(moveRuns),
  runs: {
    passthrough: passRuns,
    joiner: joinRuns,
    purchasePassthrough: purchasePassRuns,
    repartition: moveRuns,
  },
};
result.joinerPerSec = median(joinRuns.map((r) => r.perSec));
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'joiner.json'), JSON.stringify(result, null, 2));

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  `| joiner (${fmt(predictions.length)} predictions, 6 partitions, ${REPEATS} runs, median) | predictions/s |`,
);
console.log('|---|---|');
console.log(`| KafkaJS passthrough (consume → produce, same topic) | ${fmt(result.passthroughPerSec)} |`);
console.log(`| joiner, with ~${fmt(result.pendingAtHalf)} pending in Redis | ${fmt(result.joinerPerSec)} |`);
console.log(`| joiner, whole run (from empty) | ${fmt(result.joinerOverallPerSec)} |`);
console.log(
  `| ratio joiner / passthrough | ${((result.joinerPerSec / result.passthroughPerSec) * 100).toFixed(0)}% |`,
);
console.log(
  `| purchases: KafkaJS passthrough (${fmt(purchases.length)}) | ${fmt(result.purchasePassthroughPerSec)} |`,
);
console.log(`| purchases: repartition stage (transactional, validated) | ${fmt(result.repartitionPerSec)} |`);
console.log('');
console.log(
  `Redis memory per pending prediction: ${fmt(result.redisBytesPerPending)} bytes (prediction record ${fmt(averagePredictionBytes)} bytes); by key: ${Object.entries(
    result.redisBytesPerPendingByKey ?? {},
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}`,
);

await producer.disconnect();
await admin.deleteTopics({ topics: Object.values(names) }).catch(() => undefined);
await admin.disconnect();
await redis.quit();
