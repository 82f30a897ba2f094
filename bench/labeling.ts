// Labeling queue benchmark on the local Redis: next+submit pairs per second with 20 concurrent
// labelers (one connection each), next to the simplest possible queue on the same Redis (RPOP
// then an HSET per task, no priority, no lease) driven the same way. REPEATS runs, medians.
// Writes bench/results/labeling.json and prints a Markdown table.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { createRedis } from '../services/common/redis.js';
import { createRuntime } from '../services/common/runtime.js';
import { LabelingQueue } from '../services/labeling/queue.js';
import { median } from './stats.js';

const TASKS = Number(process.env.BENCH_TASKS ?? 10_000);
const LABELERS = 20;
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const runtime = createRuntime('bench', { ...process.env, LOG_LEVEL: 'warn' });
const connections: Redis[] = await Promise.all(
  Array.from({ length: LABELERS + 1 }, async () => {
    const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await redis.connect();
    return redis;
  }),
);
const [loader, ...workers] = connections as [Redis, ...Redis[]];

async function flywheelQueue(): Promise<number> {
  const name = `bench-${randomUUID()}`;
  const options = { leaseMs: 60_000, maxAgeMs: 3_600_000, labelsRequired: 1, dedupeTtlSeconds: 60 };
  const queue = new LabelingQueue<{ i: number }>(loader, name, options);
  for (let i = 0; i < TASKS; i++) await queue.add({ id: `t${i}`, priority: (i % 100) / 100, payload: { i } });
  const started = Date.now();
  await Promise.all(
    workers.map(async (redis, n) => {
      const mine = new LabelingQueue<{ i: number }>(redis, name, options);
      for (let task = await mine.next(`l${n}`); task; task = await mine.next(`l${n}`))
        await mine.submit(task.id, `l${n}`, 1);
    }),
  );
  const rate = TASKS / ((Date.now() - started) / 1000);
  const keys = await loader.keys(`fw:labeling:${name}:*`);
  for (let i = 0; i < keys.length; i += 1000) await loader.del(...keys.slice(i, i + 1000));
  return rate;
}

async function plainList(): Promise<number> {
  const list = `bench-list-${randomUUID()}`;
  for (let i = 0; i < TASKS; i += 1000)
    await loader.lpush(
      list,
      ...Array.from({ length: Math.min(1000, TASKS - i) }, (_, k) => JSON.stringify({ i: i + k })),
    );
  const started = Date.now();
  await Promise.all(
    workers.map(async (redis, n) => {
      for (let task = await redis.rpop(list); task; task = await redis.rpop(list))
        await redis.hset(`${list}:labels`, task, `l${n}`);
    }),
  );
  const rate = TASKS / ((Date.now() - started) / 1000);
  await loader.del(list, `${list}:labels`);
  return rate;
}

const queueRates: number[] = [];
const listRates: number[] = [];
for (let r = 0; r < REPEATS; r++) {
  listRates.push(await plainList());
  queueRates.push(await flywheelQueue());
  console.error(
    `run ${r + 1}/${REPEATS}: plain list ${Math.round(listRates.at(-1)!)}/s, queue ${Math.round(queueRates.at(-1)!)}/s`,
  );
}
const result = {
  date: new Date().toISOString(),
  tasks: TASKS,
  labelers: LABELERS,
  repeats: REPEATS,
  queuePairsPerSec: median(queueRates),
  plainListPairsPerSec: median(listRates),
  ratio: median(queueRates) / median(listRates),
  runs: { queue: queueRates, plainList: listRates },
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'labeling.json'), JSON.stringify(result, null, 2));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`| ${fmt(TASKS)} tasks, ${LABELERS} labelers, ${REPEATS} runs (median) | next+submit pairs/s |`);
console.log('|---|---|');
console.log(
  `| plain Redis list (RPOP + HSET, no priority, no lease) | ${fmt(result.plainListPairsPerSec)} |`,
);
console.log(
  `| Flywheel queue (priority, lease, N labels, idempotent submit) | ${fmt(result.queuePairsPerSec)} |`,
);
console.log(`| ratio queue / plain list | ${(result.ratio * 100).toFixed(0)}% |`);
for (const c of connections) c.disconnect();
