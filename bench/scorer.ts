// Scorer benchmark on the real local broker, in one run:
//  1. Stream: N clicks already in a topic; a plain KafkaJS consume→produce passthrough of the
//     same bytes, and the scorer (decode, validate, Redis session state, features, model,
//     encode, produce) with its scoring worker thread and on one thread (FW_SCORER_WORKER off),
//     each in a fresh consumer group with the same consumer settings. Alternated, REPEATS times
//     each; medians and the ratios to the passthrough.
//     The CPU time of this process per message is recorded for each (all its threads: the
//     scoring worker, and V8's garbage collector beside the main thread), for the scorer from
//     its first batch on (its start-up loads models and starts the worker).
//  2. Stages: the scorer's own work per click (decode, session context, features and model,
//     encode) in this process with no Kafka or Redis (scorer-stages.ts).
//  3. HTTP: POST /v1/predict at a fixed request rate with autocannon (separate process), next to
//     a static fastify route in this process. p50/p99 latency. Then the same while a scorer in
//     this process reads the click backlog, with the scoring worker and on one thread.
// Writes bench/results/scorer.json and prints Markdown tables.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { createProducer, waitForKafka } from '../services/common/kafka.js';
import { ensureTopics } from '../services/common/provision.js';
import { createRuntime } from '../services/common/runtime.js';
import type { TopicName } from '../services/common/topics.js';
import { initBackend } from '../services/model/backend.js';
import { fromArtifacts } from '../services/model/artifacts.js';
import { FeatureSpec } from '../services/model/features.js';
import { RegistryAdmin } from '../services/registry/admin.js';
import { ModelTraining } from '../services/training/model-training.js';
import { FileModelRegistry } from '../services/registry/store.js';
import { loadScorerConfig } from '../services/scorer/config.js';
import { Scorer } from '../services/scorer/service.js';
import { runSimulator } from '../services/simulator/runner.js';
import { sampleRecords } from '../test/helpers/records.js';
import { passthroughRate } from './passthrough.js';
import { measureStages } from './scorer-stages.js';
import { median } from './stats.js';
import { simulatedTrainingExamples } from '../services/simulator/dataset.js';

const ROOT = join(import.meta.dirname, '..');
const N = Number(process.env.BENCH_EVENTS ?? 100_000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
// Partitions handled at once, by the scorer and the passthrough alike.
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? loadScorerConfig({}).FW_SCORER_CONCURRENCY);
const KIND = (process.env.BENCH_MODEL ?? 'logreg') as 'logreg' | 'ftrl' | 'wide_deep';
const HTTP_RATE = Number(process.env.BENCH_HTTP_RATE ?? 500);
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const HTTP_UNDER_STREAM_REPEATS = Number(process.env.BENCH_HTTP_UNDER_STREAM_REPEATS ?? 3);
// Well inside the time the backlog takes to read (about 3 s at 30k clicks/s).
const HTTP_UNDER_STREAM_SECONDS = 2;

const runtime = createRuntime('bench', { ...process.env, LOG_LEVEL: 'warn' });
const id = randomUUID().slice(0, 8);
const topic = (role: string) => `bench.${role}.${id}` as TopicName;
const names = {
  clicks: topic('clicks'),
  purchases: topic('purchases'),
  pass: topic('pass'),
  predictions: topic('predictions'),
  dlq: topic('dlq'),
  updates: topic('updates'),
};

const admin = await waitForKafka(runtime.kafka, runtime.logger);
await ensureTopics(admin, runtime.logger, {
  partitions: 6,
  replicationFactor: 1,
  specs: Object.values(names).map((name) => ({
    name,
    partitions: name === names.updates ? 1 : 6,
    configs: {},
    description: 'bench',
  })),
});
const producer = createProducer(runtime.kafka);
await producer.connect();
await initBackend(runtime.logger, 'wasm');

// The input: N valid clicks (purchases go to their own topic).
await runSimulator({
  producer,
  codecs: runtime.codecs,
  logger: runtime.logger,
  simulation: { seed: Date.now() % 1_000_000, startTime: Date.now() - 3_600_000, trafficRate: 100 },
  rate: 0,
  maxEvents: Math.round(N * 1.1),
  durationMs: null,
  malformedRate: 0,
  maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
  showProgress: false,
  clickTopic: names.clicks,
  purchaseTopic: names.purchases,
});
const offsets = await admin.fetchTopicOffsets(names.clicks);
const total = offsets.reduce((sum, o) => sum + Number(o.high), 0);

// A champion to score with.
const registryDir = mkdtempSync(join(tmpdir(), 'flywheel-bench-'));
process.env.FW_REGISTRY_DIR = registryDir;
const registryAdmin = new RegistryAdmin(
  new FileModelRegistry(registryDir),
  new FeatureSpec(),
  { producer, codecs: runtime.codecs, topic: names.updates },
  runtime.logger,
);
const modelTraining = new ModelTraining(registryAdmin.registry, registryAdmin.spec, runtime.logger, {
  simulated: simulatedTrainingExamples,
});
const training = {
  source: 'simulated' as const,
  seed: 1,
  clicks: 20_000,
  startTime: Date.UTC(2026, 0, 1),
  trafficRate: 100,
  attributionWindowMs: 1_800_000,
  examples: 20_000,
};
await modelTraining.train({ kind: KIND, parent: null, seed: 1, training, actor: 'bench' });
await registryAdmin.promote('v000001', 'champion', { actor: 'bench', reason: 'bench' });

const passthrough = () =>
  passthroughRate(runtime.kafka, producer, {
    from: names.clicks,
    to: names.pass,
    total: total,
    partitionsConsumedConcurrently: CONCURRENCY,
  });

// Every scorer here reads the bench's clicks and writes to its topics.
const scorerTopics = {
  clicks: names.clicks,
  predictions: names.predictions,
  deadLetters: names.dlq,
  modelUpdates: names.updates,
};
/** Records consumed by every scorer of this process so far (a scorer's are the difference). */
const consumedRecords = async () =>
  (await runtime.metrics.getSingleMetric('flywheel_consumer_records_total')?.get())?.values.reduce(
    (s, v) => s + v.value,
    0,
  ) ?? 0;

/** Clicks/s, and this process's CPU per click from the first batch to the last click. */
async function scoring(worker: boolean): Promise<{ rate: number; cpuMicros: number }> {
  const scorer = new Scorer({
    runtime,
    http: false,
    config: {
      ...loadScorerConfig({}),
      FW_SCORER_GROUP: `bench.scorer.${randomUUID()}`,
      FW_SCORER_CONCURRENCY: CONCURRENCY,
      FW_SCORER_WORKER: worker,
    },
    topics: scorerTopics,
  });
  const before = await consumedRecords();
  // Timed like the passthrough: from the start of the first batch (not its end: with several
  // partitions at once, the first batch to finish can be near the end of the run).
  // Start-up (models loading, the worker starting) is left out of both.
  let started = 0;
  let cpuAtStart = process.cpuUsage();
  const starting = scorer.start();
  while (!scorer.kafkaConsumer) await new Promise((r) => setTimeout(r, 1));
  const kafkaConsumer = scorer.kafkaConsumer;
  kafkaConsumer.on(kafkaConsumer.events.START_BATCH_PROCESS, () => {
    if (started) return;
    started = Date.now();
    cpuAtStart = process.cpuUsage();
  });
  await starting;
  while ((await consumedRecords()) - before < total) await new Promise((r) => setTimeout(r, 20));
  const seconds = (Date.now() - started) / 1000;
  const used = process.cpuUsage(cpuAtStart);
  await scorer.stop();
  return { rate: total / seconds, cpuMicros: (used.user + used.system) / total };
}

/** The rate `run` reports, and this process's CPU time per message (µs) while it ran (consumer start included: a group join is cheap). */
async function withCpu(run: () => Promise<number>): Promise<{ rate: number; cpuMicros: number }> {
  const before = process.cpuUsage();
  const rate = await run();
  const used = process.cpuUsage(before);
  return { rate, cpuMicros: (used.user + used.system) / total };
}

const passRates: number[] = [];
const scoreRates: number[] = [];
const oneThreadRates: number[] = [];
const passCpu: number[] = [];
const scoreCpu: number[] = [];
const oneThreadCpu: number[] = [];
for (let r = 0; r < REPEATS; r++) {
  const pass = await withCpu(passthrough);
  const score = await scoring(true);
  const oneThread = await scoring(false);
  passRates.push(pass.rate);
  passCpu.push(pass.cpuMicros);
  scoreRates.push(score.rate);
  scoreCpu.push(score.cpuMicros);
  oneThreadRates.push(oneThread.rate);
  oneThreadCpu.push(oneThread.cpuMicros);
  console.error(
    `run ${r + 1}/${REPEATS}: passthrough ${Math.round(pass.rate)}/s (${pass.cpuMicros.toFixed(1)} µs CPU/msg), ` +
      `scorer ${Math.round(score.rate)}/s (${score.cpuMicros.toFixed(1)} µs CPU/click), ` +
      `one thread ${Math.round(oneThread.rate)}/s (${oneThread.cpuMicros.toFixed(1)} µs CPU/click)`,
  );
}

const { files } = await new FileModelRegistry(registryDir).loadArtifacts('v000001');
const stageSpec = new FeatureSpec();
const stages = await measureStages(runtime, stageSpec, await fromArtifacts(files, stageSpec));
console.error(`stages: ${JSON.stringify(stages)}`);

// HTTP: the predict API vs a static route, same machine, same rate, autocannon in its own process.
const scorer = new Scorer({
  runtime,
  config: { ...loadScorerConfig({}), FW_SCORER_GROUP: `bench.http.${randomUUID()}`, FW_HTTP_PORT: 0 },
  topics: scorerTopics,
});
await scorer.start();
const staticApp = Fastify();
staticApp.post('/static', () => ({ ok: true }));
await staticApp.listen({ host: '127.0.0.1', port: 0 });
const staticPort = (staticApp.server.address() as { port: number }).port;
const body = JSON.stringify({
  event: { ...sampleRecords(Date.now()).click, eventId: 'bench', sessionId: 'bench' },
});
// Async: the servers under test run in this process, so its event loop must stay free.
const cannon = async (url: string, rate: number, seconds = HTTP_SECONDS) => {
  const { stdout: out } = await promisify(execFile)(
    join(ROOT, 'node_modules', '.bin', 'autocannon'),
    [
      '-j',
      '-c',
      '20',
      '-R',
      String(rate),
      '-d',
      String(seconds),
      '-m',
      'POST',
      '-H',
      'content-type=application/json',
      '-b',
      body,
      url,
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const r = JSON.parse(out) as {
    latency: { p50: number; p97_5: number; p99: number; max: number; average: number };
    requests: { average: number };
    non2xx: number;
    errors: number;
  };
  return {
    rate,
    p50Ms: r.latency.p50,
    p97_5Ms: r.latency.p97_5,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    meanMs: r.latency.average,
    reqPerSec: r.requests.average,
    non2xx: r.non2xx,
    errors: r.errors,
  };
};
// autocannon runs alone on the machine with each server in turn; its latencies have 1 ms resolution.
// Warm-up (discarded): JIT, connection pools, and the broker settling after the stream runs.
await cannon(`http://127.0.0.1:${staticPort}/static`, HTTP_RATE);
await cannon(`http://127.0.0.1:${scorer.port}/v1/predict`, HTTP_RATE);
const http = [];
for (const rate of [HTTP_RATE, HTTP_RATE * 4]) {
  http.push({
    route: 'static fastify route',
    ...(await cannon(`http://127.0.0.1:${staticPort}/static`, rate)),
  });
  http.push({
    route: 'POST /v1/predict (one click)',
    ...(await cannon(`http://127.0.0.1:${scorer.port}/v1/predict`, rate)),
  });
}
await staticApp.close();
await scorer.stop();

// The predict API while the same process scores the stream: a scorer in a fresh group reads
// the whole click backlog while autocannon posts, with the scoring worker and on one thread,
// alternated. `streamBusy` says the backlog was not yet read when autocannon finished.
const underStream = [];
for (let r = 0; r < HTTP_UNDER_STREAM_REPEATS; r++) {
  for (const worker of [true, false]) {
    const loaded = new Scorer({
      runtime,
      config: {
        ...loadScorerConfig({}),
        FW_SCORER_GROUP: `bench.http-under-stream.${randomUUID()}`,
        FW_HTTP_PORT: 0,
        FW_SCORER_CONCURRENCY: CONCURRENCY,
        FW_SCORER_WORKER: worker,
      },
      topics: scorerTopics,
    });
    const before = await consumedRecords();
    await loaded.start();
    const latency = await cannon(
      `http://127.0.0.1:${loaded.port}/v1/predict`,
      HTTP_RATE,
      HTTP_UNDER_STREAM_SECONDS,
    );
    const streamBusy = (await consumedRecords()) - before < total;
    await loaded.stop();
    underStream.push({ worker, streamBusy, ...latency });
  }
}

const result = {
  date: new Date().toISOString(),
  events: total,
  repeats: REPEATS,
  model: KIND,
  stream: {
    passthroughPerSec: median(passRates),
    scorerPerSec: median(scoreRates),
    ratio: median(scoreRates) / median(passRates),
    oneThreadPerSec: median(oneThreadRates),
    oneThreadRatio: median(oneThreadRates) / median(passRates),
    cpuMicrosPerMessage: {
      passthrough: median(passCpu),
      scorer: median(scoreCpu),
      oneThread: median(oneThreadCpu),
    },
    runs: {
      passthrough: passRates,
      scorer: scoreRates,
      oneThread: oneThreadRates,
      passthroughCpu: passCpu,
      scorerCpu: scoreCpu,
      oneThreadCpu,
    },
  },
  stagesMicrosPerClick: stages,
  http: { seconds: HTTP_SECONDS, connections: 20, runs: http },
  httpUnderStream: { seconds: HTTP_UNDER_STREAM_SECONDS, connections: 20, runs: underStream },
};
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'scorer.json'), JSON.stringify(result, null, 2));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const cpu = result.stream.cpuMicrosPerMessage;
console.log(
  `| stream (${fmt(total)} clicks, 6 partitions, ${REPEATS} runs, median) | events/s | CPU µs per event (this process) |`,
);
console.log('|---|---|---|');
console.log(
  `| KafkaJS passthrough (consume → produce same bytes) | ${fmt(result.stream.passthroughPerSec)} | ${cpu.passthrough.toFixed(1)} |`,
);
console.log(
  `| scorer (${KIND} champion, scoring worker thread) | ${fmt(result.stream.scorerPerSec)} | ${cpu.scorer.toFixed(1)} |`,
);
console.log(
  `| scorer on one thread (FW_SCORER_WORKER=false) | ${fmt(result.stream.oneThreadPerSec)} | ${cpu.oneThread.toFixed(1)} |`,
);
console.log(`| ratio scorer / passthrough | ${(result.stream.ratio * 100).toFixed(0)}% | |`);
console.log(`| ratio one thread / passthrough | ${(result.stream.oneThreadRatio * 100).toFixed(0)}% | |`);
console.log('');
const us = (n: number) => n.toFixed(2);
console.log(`| the scorer's own work, no Kafka or Redis (${fmt(stages.clicks)} clicks) | µs per click |`);
console.log('|---|---|');
console.log(`| decode and validate the click (Avro) | ${us(stages.decodeAndValidate)} |`);
console.log(`| session context (in memory) | ${us(stages.sessionContext)} |`);
console.log(`| features, model, prediction records | ${us(stages.featuresModelPredictions)} |`);
console.log(`| encode predictions (Avro) | ${us(stages.encodePredictions)} |`);
console.log(`| total | ${us(stages.total)} |`);
console.log('');
console.log(
  `| HTTP, 20 connections, ${HTTP_SECONDS} s per run | req/s offered | req/s served | mean ms | p50 ms | p97.5 ms | p99 ms | max ms | errors + non-2xx |`,
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const h of http) {
  console.log(
    `| ${h.route} | ${h.rate} | ${fmt(h.reqPerSec)} | ${h.meanMs.toFixed(2)} | ${h.p50Ms} | ${h.p97_5Ms} | ${h.p99Ms} | ${h.maxMs} | ${h.errors + h.non2xx} |`,
  );
}
console.log('');
console.log(
  `| POST /v1/predict while the stream is scored, ${HTTP_RATE} req/s, ${HTTP_UNDER_STREAM_SECONDS} s per run | p50 ms | p99 ms | max ms | errors + non-2xx | stream busy throughout |`,
);
console.log('|---|---|---|---|---|---|');
for (const h of underStream) {
  console.log(
    `| ${h.worker ? 'scoring worker thread' : 'one thread'} | ${h.p50Ms} | ${h.p99Ms} | ${h.maxMs} | ${h.errors + h.non2xx} | ${h.streamBusy ? 'yes' : 'no'} |`,
  );
}

await producer.disconnect();
await admin.deleteTopics({ topics: Object.values(names) }).catch(() => undefined);
await admin.disconnect();
rmSync(registryDir, { recursive: true, force: true });
process.exit(0);
