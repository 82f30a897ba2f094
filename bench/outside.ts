// Learning quality on data nobody here generated: a public clickstream (converted by
// bench/outside/convert.py) replayed in event time through the real scorer, joiner and trainer
// on the local stack, compressed to a few minutes of wall time. What the scorer served to the
// last 30% of the clicks is scored against the labels computed from the input events alone,
// next to a constant at the history's rate, the heuristic baseline trained on the first 70% and
// a static logistic regression trained once offline (bench/outside/offline.py), with paired
// bootstrap intervals of each difference. Results: bench/results/outside.json.
//
//   npm run bench -- outside [--minutes 8] [--seed 1]
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClickEvent, LabeledExample, Prediction, PurchaseEvent } from '../services/common/contracts.js';
import { createProducer, waitForKafka } from '../services/common/kafka.js';
import { partitionOf } from '../services/common/partitioner.js';
import { Progress } from '../services/common/progress.js';
import { ensureTopics } from '../services/common/provision.js';
import { Random } from '../services/common/random.js';
import { createRuntime } from '../services/common/runtime.js';
import type { TopicName } from '../services/common/topics.js';
import { loadJoinerConfig } from '../services/joiner/config.js';
import { Joiner } from '../services/joiner/service.js';
import { HeuristicBaseline } from '../services/model/baseline.js';
import { auc, logLoss } from '../services/model/evaluation.js';
import { segmentOf } from '../services/model/features.js';
import { FileModelRegistry } from '../services/registry/store.js';
import { loadScorerConfig } from '../services/scorer/config.js';
import { MemoryReviewSink } from '../services/scorer/review.js';
import { Scorer } from '../services/scorer/service.js';
import { loadTrainerConfig } from '../services/trainer/config.js';
import { Trainer } from '../services/trainer/service.js';
import { TopicCollector } from '../test/helpers/collect.js';
import { median } from './stats.js';

const { values: flags } = parseArgs({
  options: {
    dir: { type: 'string', default: join(import.meta.dirname, '.cache', 'outside') },
    minutes: { type: 'string', default: '8' },
    seed: { type: 'string', default: '1' },
  },
});
const DIR = flags.dir;
const WALL_MS = Number(flags.minutes) * 60_000;
const WINDOW_MS = 30 * 60_000;
const PARTITIONS = 3;

interface Offline {
  clicks: number;
  train_clicks: number;
  train_positive_rate: number;
  constant: { log_loss: number; auc: number };
  logistic: { log_loss: number; auc: number };
  labels: Record<string, number>;
  test: { eventId: string; label: number; logistic: number }[];
}

const readLines = <T>(name: string): T[] =>
  readFileSync(join(DIR, name), 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as T);
const clicks = readLines<ClickEvent>('clicks.jsonl');
const purchases = readLines<PurchaseEvent>('purchases.jsonl');
const offline = JSON.parse(readFileSync(join(DIR, 'offline.json'), 'utf8')) as Offline;

const suffix = randomUUID().slice(0, 8);
const registryDir = mkdtempSync(join(tmpdir(), 'flywheel-outside-registry-'));
const trainerDir = mkdtempSync(join(tmpdir(), 'flywheel-outside-trainer-'));
process.env.FW_REGISTRY_DIR = registryDir;
const runtime = createRuntime('bench-outside', {
  ...process.env,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
});
const log = runtime.logger;
const names = {
  clicks: `bench.outside.clicks.${suffix}`,
  purchases: `bench.outside.purchases.${suffix}`,
  repartitioned: `bench.outside.repartitioned.${suffix}`,
  predictions: `bench.outside.predictions.${suffix}`,
  feedback: `bench.outside.feedback.${suffix}`,
  humanLabels: `bench.outside.human.${suffix}`,
  deadLetters: `bench.outside.dlq.${suffix}`,
  modelUpdates: `bench.outside.updates.${suffix}`,
};
const admin = await waitForKafka(runtime.kafka, log, 30_000);
await ensureTopics(admin, log, {
  partitions: PARTITIONS,
  replicationFactor: 1,
  specs: Object.values(names).map((name) => ({
    name: name as TopicName,
    partitions: PARTITIONS,
    configs: {},
    description: 'bench topic',
  })),
});

const group = `bench.outside.${suffix}`;
const scorer = new Scorer({
  runtime,
  http: false,
  reviewSink: new MemoryReviewSink(),
  config: { ...loadScorerConfig({}), FW_SCORER_GROUP: `${group}.scorer`, FW_HTTP_PORT: 0 },
  topics: {
    clicks: names.clicks,
    predictions: names.predictions,
    deadLetters: names.deadLetters,
    modelUpdates: names.modelUpdates,
  },
});
const joiner = new Joiner({
  runtime,
  http: false,
  config: {
    ...loadJoinerConfig({}),
    FW_JOINER_GROUP: `${group}.joiner`,
    FW_JOINER_TRANSACTIONAL_ID: `${group}.joiner`,
    FW_SCORER_GROUP: `${group}.scorer`,
    FW_JOIN_WINDOW_MS: WINDOW_MS,
    FW_JOIN_IDLE_MS: 1_000,
    FW_JOIN_PROGRESS_POLL_MS: 100,
  },
  topics: {
    clicks: names.clicks,
    predictions: names.predictions,
    purchases: names.purchases,
    repartitioned: names.repartitioned,
    feedback: names.feedback,
    deadLetters: names.deadLetters,
  },
});
// Sized for a shop of a few thousand clicks (the defaults are for a stream of millions):
// a 500-click holdout, a candidate every 250 examples, accepted ones serve at once.
const trainerSettings = {
  FW_TRAINER_HOLDOUT: 500,
  FW_TRAINER_CANDIDATE_EVERY: 250,
  FW_TRAINER_CANDIDATE_MS: 0,
  FW_TRAINER_GATE_MIN_HOLDOUT: 300,
  FW_TRAINER_PROMOTE_TO: 'champion' as const,
};
const trainer = new Trainer({
  runtime,
  http: false,
  config: {
    ...loadTrainerConfig({}),
    ...trainerSettings,
    FW_TRAINER_GROUP: `${group}.trainer`,
    FW_TRAINER_DIR: trainerDir,
    FW_TRAINER_WARM_START: false,
  },
  topics: {
    feedback: names.feedback,
    humanLabels: names.humanLabels,
    deadLetters: names.deadLetters,
    modelUpdates: names.modelUpdates,
  },
});
const served = new TopicCollector<Prediction>(runtime.kafka, names.predictions, (b) =>
  runtime.codecs.prediction.decode(b),
);
const labeled = new TopicCollector<LabeledExample>(runtime.kafka, names.feedback, (b) =>
  runtime.codecs.labeledExample.decode(b),
);
await Promise.all([served.start(), labeled.start()]);
await scorer.start();
await joiner.start();
await trainer.start();

// A last click and purchase on every partition, past every window: a replay of history is
// behind the wall clock, so only more input closes its last windows, and an input is complete
// only up to its least advanced partition (README: the join).
const lastTime = Math.max(...clicks.map((c) => c.eventTime), ...purchases.map((p) => p.eventTime));
const closingUsers: string[] = [];
for (let i = 0; closingUsers.length < PARTITIONS; i++) {
  const user = `bench-closing-${i}`;
  if (partitionOf(user, PARTITIONS) === closingUsers.length) closingUsers.push(user);
}
type Timed = { time: number; topic: string; key: string; encode: () => Promise<Buffer> };
const closingEvents: Timed[] = closingUsers.flatMap((user, i) => {
  const click: ClickEvent = {
    ...(clicks[0] as ClickEvent),
    eventId: `bench-closing-${suffix}-${i}`,
    userId: user,
    sessionId: user,
    eventTime: lastTime + 2 * WINDOW_MS,
  };
  const purchase: PurchaseEvent = {
    eventId: `bench-closing-purchase-${suffix}-${i}`,
    userId: user,
    sessionId: user,
    itemId: click.itemId,
    category: click.category,
    price: 0,
    quantity: 1,
    eventTime: click.eventTime + 1,
  };
  return [
    {
      time: click.eventTime,
      topic: names.clicks,
      key: user,
      encode: () => runtime.codecs.click.encode(click),
    },
    {
      time: purchase.eventTime,
      topic: names.purchases,
      key: user,
      encode: () => runtime.codecs.purchase.encode(purchase),
    },
  ];
});
const events: Timed[] = [
  ...clicks.map((c) => ({
    time: c.eventTime,
    topic: names.clicks,
    key: c.userId,
    encode: () => runtime.codecs.click.encode(c),
  })),
  ...purchases.map((p) => ({
    time: p.eventTime,
    topic: names.purchases,
    key: p.userId,
    encode: () => runtime.codecs.purchase.encode(p),
  })),
  ...closingEvents,
].sort((a, b) => a.time - b.time);

// Paced in event time, compressed: the span of the history in WALL_MS, so labels of a click
// come back (its window closed) before most later clicks are scored, as in a live shop.
const first = (events[0] as Timed).time;
const span = (events[events.length - 1] as Timed).time - first;
const speed = span / WALL_MS;
const producer = createProducer(runtime.kafka);
await producer.connect();
const registry = new FileModelRegistry(registryDir);
const progress = new Progress({
  label: 'replay',
  total: events.length,
  // The services stay quiet (warn); the replay's progress is for the person waiting.
  logger: log.child({ component: 'replay' }, { level: 'info' }),
  extra: () => ({ labels: labeled.records.length, learned: trainer.learned }),
}).start();
const started = Date.now();
let next = 0;
while (next < events.length) {
  const dueUntil = first + (Date.now() - started) * speed;
  const batch: Timed[] = [];
  while (next < events.length && (events[next] as Timed).time <= dueUntil)
    batch.push(events[next++] as Timed);
  if (batch.length > 0) {
    const byTopic = new Map<string, { key: string; value: Buffer; timestamp: string }[]>();
    for (const e of batch) {
      const list = byTopic.get(e.topic) ?? [];
      list.push({ key: e.key, value: await e.encode(), timestamp: String(e.time) });
      byTopic.set(e.topic, list);
    }
    await producer.sendBatch({
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
    progress.add(batch.length);
  }
  const wait = Math.max(5, ((events[next]?.time ?? dueUntil) - dueUntil) / speed);
  await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 200)));
}
progress.stop();
const clickIds = new Set(clicks.map((c) => c.eventId));
await labeled.until(
  (records) =>
    new Set(records.map((r) => r.value.eventId).filter((id) => clickIds.has(id))).size >= clickIds.size,
  `labels of all ${clickIds.size} clicks`,
  300_000,
);
const replayMs = Date.now() - started;

// What was served: the one prediction per click of its routed arm (a shadow is never served).
const servedScore = new Map<string, { score: number; version: string }>();
for (const { value } of served.records)
  if (value.arm !== 'shadow')
    servedScore.set(value.eventId, { score: value.score, version: value.modelVersion });
// The loop's own labels against the ones computed from the input events alone.
const loopLabel = new Map<string, { label: number; revision: number }>();
for (const { value } of labeled.records) {
  const seen = loopLabel.get(value.eventId);
  if (!seen || value.revision > seen.revision)
    loopLabel.set(value.eventId, { label: value.label, revision: value.revision });
}
let labelMismatches = 0;
for (const id of clickIds) if (loopLabel.get(id)?.label !== offline.labels[id]) labelMismatches++;

// The heuristic baseline trained once on the first 70%, as the static logistic regression was.
const staticBaseline = new HeuristicBaseline();
for (const c of clicks.slice(0, offline.train_clicks))
  staticBaseline.update(
    { itemId: c.itemId, segment: segmentOf(c.country, c.device) },
    offline.labels[c.eventId] as number,
  );
const clickById = new Map(clicks.map((c) => [c.eventId, c]));

const test = offline.test;
const labels = test.map((t) => t.label);
const predictors: Record<string, number[]> = {
  served: test.map((t) => servedScore.get(t.eventId)?.score ?? Number.NaN),
  constant: test.map(() => offline.train_positive_rate),
  baseline: test.map((t) => {
    const c = clickById.get(t.eventId) as ClickEvent;
    return staticBaseline.score({ itemId: c.itemId, segment: segmentOf(c.country, c.device) });
  }),
  logistic: test.map((t) => t.logistic),
};
const missing = predictors.served!.filter((s) => Number.isNaN(s)).length;
if (missing > 0) throw new Error(`${missing} test clicks have no served prediction`);

const metricsOf = (scores: readonly number[], index: readonly number[]) => {
  const examples = index.map((i) => ({ score: scores[i] as number, label: labels[i] as number }));
  return { logLoss: logLoss(examples), auc: auc(examples) };
};
const all = labels.map((_, i) => i);
const table = Object.fromEntries(Object.entries(predictors).map(([name, s]) => [name, metricsOf(s, all)]));

// Paired bootstrap over test clicks: the same resample scores both predictors of a difference.
const random = new Random(Number(flags.seed));
const RESAMPLES = 1000;
const differences: Record<string, { logLoss: number[]; auc: number[] }> = {
  'served − constant': { logLoss: [], auc: [] },
  'served − baseline': { logLoss: [], auc: [] },
  'served − logistic': { logLoss: [], auc: [] },
};
for (let r = 0; r < RESAMPLES; r++) {
  const index = labels.map(() => Math.floor(random.next() * labels.length));
  const s = metricsOf(predictors.served!, index);
  for (const other of ['constant', 'baseline', 'logistic']) {
    const o = metricsOf(predictors[other]!, index);
    const d = differences[`served − ${other}`]!;
    d.logLoss.push(s.logLoss - o.logLoss);
    d.auc.push(s.auc - (other === 'constant' ? 0.5 : o.auc));
  }
}
const percentile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
};
const intervals = Object.fromEntries(
  Object.entries(differences).map(([name, d]) => [
    name,
    {
      logLoss: {
        median: median(d.logLoss),
        ci95: [percentile(d.logLoss, 0.025), percentile(d.logLoss, 0.975)],
      },
      auc: { median: median(d.auc), ci95: [percentile(d.auc, 0.025), percentile(d.auc, 0.975)] },
    },
  ]),
);

// Served against actual over the whole replay, in tenths of the clicks: the loop's course.
const course = Array.from({ length: 10 }, (_, k) => {
  const part = clicks.slice(Math.floor((k * clicks.length) / 10), Math.floor(((k + 1) * clicks.length) / 10));
  const examples = part.map((c) => ({
    score: servedScore.get(c.eventId)?.score ?? Number.NaN,
    label: offline.labels[c.eventId] as number,
  }));
  const rate = examples.reduce((n, e) => n + e.label, 0) / examples.length;
  return {
    from: new Date((part[0] as ClickEvent).eventTime).toISOString().slice(0, 10),
    clicks: part.length,
    rate,
    servedMean: examples.reduce((n, e) => n + e.score, 0) / examples.length,
    servedLogLoss: logLoss(examples),
    versions: [...new Set(part.map((c) => servedScore.get(c.eventId)?.version))].join(' '),
  };
});
const versions = await registry.list();

// Before any learned model served: the served scores against a constant at the running rate
// (the labels of clicks whose window had closed by then), from the first known label on.
const baselineVersions = new Set(versions.filter((v) => v.kind === 'baseline').map((v) => v.version));
const beforeModel: { served: number; running: number; label: number }[] = [];
let known = 0;
let knownPositives = 0;
let closed = 0;
for (const c of clicks) {
  while (closed < clicks.length && (clicks[closed] as ClickEvent).eventTime + WINDOW_MS < c.eventTime) {
    known++;
    knownPositives += offline.labels[(clicks[closed] as ClickEvent).eventId] as number;
    closed++;
  }
  const s = servedScore.get(c.eventId);
  if (!s || known === 0 || !(s.version === 'baseline' || baselineVersions.has(s.version))) continue;
  beforeModel.push({
    served: s.score,
    running: knownPositives / known,
    label: offline.labels[c.eventId] as number,
  });
}
const beforeAnyModel = {
  clicks: beforeModel.length,
  servedLogLoss: logLoss(beforeModel.map((e) => ({ score: e.served, label: e.label }))),
  runningConstantLogLoss: logLoss(beforeModel.map((e) => ({ score: e.running, label: e.label }))),
};

const result = {
  dataset: 'retentioneering==3.3.0 simple-onlineshop.csv (bench/outside/convert.py)',
  clicks: clicks.length,
  purchases: purchases.length,
  testClicks: test.length,
  testPositives: labels.reduce((n, l) => n + l, 0),
  replay: { wallSeconds: Math.round(replayMs / 1000), speed: Math.round(speed) },
  trainer: trainerSettings,
  labelMismatches,
  beforeAnyModel,
  table,
  intervals,
  course,
  versions: versions.map((v) => ({
    version: v.version,
    kind: v.kind,
    status: v.status,
    reason: v.statusReason,
  })),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'outside.json'), `${JSON.stringify(result, null, 2)}\n`);

console.log(
  `\n${test.length} test clicks, ${result.testPositives} positive; loop labels differing from the reference: ${labelMismatches}`,
);
console.log(
  `before any learned model (${beforeAnyModel.clicks} clicks): served log loss ${beforeAnyModel.servedLogLoss.toFixed(4)}, a constant at the running rate ${beforeAnyModel.runningConstantLogLoss.toFixed(4)}`,
);
console.log('predictor   log loss   AUC');
for (const [name, m] of Object.entries(table))
  console.log(`${name.padEnd(10)}  ${m.logLoss.toFixed(4)}   ${m.auc.toFixed(3)}`);
for (const [name, d] of Object.entries(intervals))
  console.log(
    `${name}: log loss ${d.logLoss.median.toFixed(4)} [${d.logLoss.ci95.map((x) => x.toFixed(4)).join(', ')}]  AUC ${d.auc.median.toFixed(3)} [${d.auc.ci95.map((x) => x.toFixed(3)).join(', ')}]`,
  );
console.log('\nfrom        clicks  rate    served  log loss  versions');
for (const c of course)
  console.log(
    `${c.from}  ${String(c.clicks).padStart(5)}  ${c.rate.toFixed(3)}   ${c.servedMean.toFixed(3)}   ${c.servedLogLoss.toFixed(4)}    ${c.versions}`,
  );
console.log(`versions: ${versions.map((v) => `${v.version} ${v.kind} ${v.status}`).join(', ')}`);

await trainer.stop();
await joiner.stop();
await scorer.stop();
await Promise.all([served.stop(), labeled.stop(), producer.disconnect()]);
await admin.deleteTopics({ topics: Object.values(names) }).catch(() => undefined);
await admin.disconnect();
rmSync(registryDir, { recursive: true, force: true });
rmSync(trainerDir, { recursive: true, force: true });
process.exit(0);
