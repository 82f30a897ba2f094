// The operator console's first paint with a year of history, next to the same console on a fresh
// install (an empty registry and monitor), in headless Chromium: time from opening a view to its
// tables and charts drawn, and the bytes its JSON route answers. The year: 120 versions, 1,500
// alias moves, 60 experiments of 400 looks each, a monitor checkpoint holding a year of two arms'
// traffic (one prediction and one label every two minutes each, run through the monitor's core)
// and 20,000 dead letters. The monitor is the real service, started on the local broker from
// that checkpoint. REPEATS runs, medians. Writes bench/results/console.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { TokenTable } from '../services/common/auth.js';
import type { DeadLetter } from '../services/common/contracts.js';
import { buildConsoleApp } from '../services/console/app.js';
import { FeatureSpec } from '../services/model/features.js';
import { ProfileReader } from '../services/model/profile.js';
import { writeCheckpoint } from '../services/monitor/checkpoint.js';
import { loadMonitorConfig } from '../services/monitor/config.js';
import { MonitorCore } from '../services/monitor/core.js';
import { DEFAULT_DRIFT_POLICY } from '../services/monitor/drift.js';
import { Monitor } from '../services/monitor/service.js';
import { rampFor } from '../services/registry/experiment-admin.js';
import { ExperimentStore, newExperiment } from '../services/registry/experiments.js';
import { FileModelRegistry } from '../services/registry/store.js';
import { tick } from '../services/rollout/controller.js';
import { heldExamples, registerTrained } from '../test/helpers/held-examples.js';
import { createTestTopics, testRuntime } from '../test/helpers/kafka.js';
import { servedOutcomes, servedPredictions } from '../test/helpers/monitor.js';
import { median } from './stats.js';

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const DAYS = Number(process.env.BENCH_DAYS ?? 365);
const ADMIN = 'bench-console-admin-token-0123';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const VIEWS = ['models', 'experiments', 'monitoring', 'dead-letters'] as const;
const spec = new FeatureSpec();
const runtime = testRuntime('bench');

function progress(what: string, done: number, total: number, started: number): void {
  const rate = done / Math.max(1, (Date.now() - started) / 1000);
  const eta = (total - done) / Math.max(rate, 1e-9);
  process.stdout.write(`\r  ${what}: ${done}/${total} (${rate.toFixed(0)}/s, ETA ${eta.toFixed(0)} s)   `);
  if (done === total) process.stdout.write('\n');
}

async function fillRegistry(dir: string, now: number): Promise<void> {
  const registry = new FileModelRegistry(dir);
  const held = heldExamples(spec, 400);
  const versions: string[] = [];
  const started = Date.now();
  for (let i = 0; i < 120; i++) {
    const metrics = { examples: 400, logLoss: 0.33 - i * 1e-4, auc: 0.7, calibrationError: 0.01 };
    versions.push(
      await registerTrained(registry, spec, held, { by: 'trainer', metrics, parent: versions.at(-1) }),
    );
    if ((i + 1) % 20 === 0) progress('versions', i + 1, 120, started);
  }
  const moves = Date.now();
  for (let i = 0; i < 1500; i++) {
    const alias = i % 3 === 0 ? 'champion' : 'challenger';
    await registry.moveAlias(alias, versions[i % versions.length]!, { actor: 'ops', reason: `move ${i}` });
    if ((i + 1) % 300 === 0) progress('alias moves', i + 1, 1500, moves);
  }
  // One experiment's 400 looks, by the controller's core; 60 like it over the year.
  const record = newExperiment('exp-000001', {
    candidate: versions[1]!,
    config: rampFor({ primary: 'purchaseRate', steps: [0.1, 0.5], minOutcomes: 1_000_000 }),
    actor: 'trainer',
    reason: 'bench',
    now: 0,
  });
  const file = { experiments: [record], offsets: {} };
  const arm = (n: number, mean: number) => ({ purchaseRate: { n, mean, m2: n * mean * (1 - mean) } });
  tick(file, { champion: versions[0]!, now: now - 400 * MINUTE, summaries: new Map() });
  for (let k = 1; k <= 400; k++) {
    const stats = { control: arm(30 * k, 0.1), candidate: arm(4 * k, 0.1) };
    tick(file, {
      champion: versions[0]!,
      now: now - (400 - k) * MINUTE,
      summaries: new Map([['exp-000001', { stats, strata: { '0.1': stats } }]]),
    });
  }
  const one = file.experiments[0]!;
  file.experiments = Array.from({ length: 60 }, (_, i) => ({
    ...structuredClone(one),
    id: `exp-${String(i + 1).padStart(6, '0')}`,
    state: i === 59 ? one.state : 'inconclusive',
  }));
  await writeFile(join(dir, 'experiments.json'), JSON.stringify(file));
}

async function fillMonitor(dir: string, now: number): Promise<void> {
  const core = new MonitorCore(
    {
      bucketMs: MINUTE,
      windowMs: 30 * MINUTE,
      labelLagMs: 35 * MINUTE,
      retentionMs: 6 * 60 * MINUTE,
      historyMs: 400 * DAY,
      drift: DEFAULT_DRIFT_POLICY,
      alerts: {
        thresholds: { maxLogLoss: null, minAuc: null, maxEce: null, minLabels: 100 },
        cooldownMs: 60 * MINUTE,
        retrainOn: [],
      },
    },
    new ProfileReader(spec),
    () => null,
  );
  const from = now - DAYS * DAY;
  const started = Date.now();
  for (let day = 0; day < DAYS; day++) {
    // Both arms' clicks and labels of the day, fed an hour at a time in click-time order (records
    // older than the retention when they come are not counted, as in the service).
    const arms = [
      [1, 'v000001'],
      [2, 'v000002'],
    ].map(([seed, version]) => {
      const served = servedPredictions(spec, {
        seed: Number(seed) * 1000 + day,
        n: 720,
        from: from + day * DAY,
        spanMs: DAY,
        weights: [1, 1, 1, 1],
        version: String(version),
      });
      const labels = servedOutcomes(served, { every: 10 });
      return { served, labels };
    });
    for (let hour = 0; hour < 24; hour++) {
      const inHour = (t: number) => Math.floor((t - from - day * DAY) / (DAY / 24)) === hour;
      for (const { served } of arms) core.takePredictions(served.filter((p) => inHour(p.eventTime)));
      for (const { labels } of arms) core.takeLabels(labels.filter((l) => inHour(l.clickTime)));
    }
    const letters: DeadLetter[] = Array.from({ length: Math.round(20_000 / DAYS) }, (_, i) => ({
      sourceTopic: 'fw.events.click',
      sourcePartition: i % 3,
      sourceOffset: day * 100 + i,
      key: Buffer.from(`u-${i}`),
      value: Buffer.from(`{"bad": ${i}}`),
      headers: {},
      sourceTimestamp: null,
      errorCode: i % 5 === 0 ? 'FW_BAD_MAGIC_BYTE' : 'FW_MALFORMED_AVRO',
      reason: 'bench',
      service: 'scorer',
      consumerGroup: 'flywheel-scorer',
      failedAt: from + day * DAY + i * 60_000,
    }));
    core.takeDeadLetters(letters);
    if ((day + 1) % 30 === 0 || day + 1 === DAYS) progress('days of monitor traffic', day + 1, DAYS, started);
  }
  const serialized = JSON.stringify({
    version: 1,
    writtenAt: now,
    offsets: {},
    state: core.snapshot(),
    history: [],
  });
  await writeCheckpoint(dir, serialized);
  console.log(`  monitor checkpoint: ${(serialized.length / 1e6).toFixed(1)} MB`);
}

interface Setup {
  base: string;
  close(): Promise<void>;
}

async function startConsole(dir: string): Promise<Setup> {
  const topics = await createTestTopics(runtime, ['predictions', 'feedback', 'dlq'], 1);
  const monitor = new Monitor({
    runtime,
    registryDir: join(dir, 'registry'),
    config: {
      ...loadMonitorConfig({}),
      FW_MONITOR_DIR: join(dir, 'monitor'),
      FW_MONITOR_HTTP_PORT: 0,
      FW_MONITOR_LOOK_MS: 3_600_000,
      FW_MONITOR_GROUP: `bench.console.${topics.names.predictions}`,
    },
    topics: {
      predictions: topics.names.predictions,
      feedback: topics.names.feedback,
      deadLetters: topics.names.dlq,
    },
  });
  await monitor.start();
  await monitor.lookNow();
  const app = await buildConsoleApp({
    registry: new FileModelRegistry(join(dir, 'registry')),
    experiments: new ExperimentStore(join(dir, 'registry')),
    tokens: new TokenTable().add(ADMIN, { id: 'ops', role: 'admin' }),
    adminToken: ADMIN,
    monitorUrl: `http://127.0.0.1:${monitor.port}`,
    labelingUrl: 'http://127.0.0.1:9',
    trainerUrl: 'http://127.0.0.1:9',
    registryUrl: 'http://127.0.0.1:9',
    upstreamTimeoutMs: 10_000,
    metrics: runtime.metrics,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    base: `http://127.0.0.1:${(app.server.address() as { port: number }).port}`,
    close: async () => {
      await app.close();
      await monitor.stop();
      await topics.cleanup();
    },
  };
}

/** Milliseconds from opening each view to its content drawn, and its JSON's size. */
async function paint(
  browser: Browser,
  base: string,
  screenshots?: string,
): Promise<Record<string, { ms: number; bytes: number }>> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(base);
  await page.evaluate(`sessionStorage.setItem('flywheel.console.token', ${JSON.stringify(ADMIN)})`);
  const out: Record<string, { ms: number; bytes: number }> = {};
  for (const view of VIEWS) {
    const started = performance.now();
    if (view === 'models') {
      await page.reload();
    } else {
      await page.click(`#tabs button[data-view="${view}"]`);
    }
    await page.waitForSelector(`#view[data-loaded="${view}"]`);
    // Drawn: the next frame after the view's DOM is in place.
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => resolve(null)))');
    const ms = performance.now() - started;
    if (screenshots) await page.screenshot({ path: `${screenshots}-${view}.png`, fullPage: true });
    const response = await fetch(`${base}/v1/console/${view}`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    out[view] = { ms, bytes: (await response.arrayBuffer()).byteLength };
  }
  await page.close();
  return out;
}

const now = Date.now();
const fresh = await mkdtemp(join(tmpdir(), 'fw-bench-console-fresh-'));
const year = await mkdtemp(join(tmpdir(), 'fw-bench-console-year-'));
console.log(`filling a registry and a monitor with ${DAYS} days of history`);
await fillRegistry(join(year, 'registry'), now);
await fillMonitor(join(year, 'monitor'), now);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const runs: Record<'fresh' | 'year', Record<string, { ms: number; bytes: number }>[]> = {
  fresh: [],
  year: [],
};
for (const [name, dir] of [
  ['fresh', fresh],
  ['year', year],
] as const) {
  const setup = await startConsole(dir);
  mkdirSync('test-artifacts', { recursive: true });
  for (let r = 0; r < REPEATS; r++)
    runs[name].push(
      await paint(browser, setup.base, r === 0 ? `test-artifacts/bench-console-${name}` : undefined),
    );
  await setup.close();
}
await browser.close();
const rows = VIEWS.map((view) => {
  const ms = (name: 'fresh' | 'year') => median(runs[name].map((run) => run[view]!.ms));
  return {
    view,
    freshMs: ms('fresh'),
    yearMs: ms('year'),
    ratio: ms('year') / ms('fresh'),
    yearBytes: runs.year[0]![view]!.bytes,
    freshBytes: runs.fresh[0]![view]!.bytes,
  };
});
mkdirSync('bench/results', { recursive: true });
writeFileSync(
  'bench/results/console.json',
  `${JSON.stringify({ at: new Date().toISOString(), repeats: REPEATS, days: DAYS, rows }, null, 2)}\n`,
);
console.log('\n| view | fresh install (ms) | a year of history (ms) | ratio | JSON with a year |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows)
  console.log(
    `| ${r.view} | ${r.freshMs.toFixed(0)} | ${r.yearMs.toFixed(0)} | ${r.ratio.toFixed(2)} | ${(r.yearBytes / 1024).toFixed(0)} KiB |`,
  );
await rm(fresh, { recursive: true, force: true });
await rm(year, { recursive: true, force: true });
process.exit(0);
