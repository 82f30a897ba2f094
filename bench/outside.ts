// Learning quality on data nobody here generated: a public clickstream (converted by
// bench/outside/convert.py) replayed in event time through the real scorer, joiner and trainer
// on the local stack, compressed to a few minutes of wall time. What the scorer served to the
// last 30% of the clicks is scored against the labels computed from the input events alone,
// next to a constant at the history's rate, the heuristic baseline trained on the first 70% and
// a static logistic regression trained once offline (bench/outside/offline.py), with paired
// bootstrap intervals of each difference. Results: bench/results/outside.json.
//
//   npm run bench -- outside [--minutes 8] [--seed 1]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClickEvent, PurchaseEvent } from '../services/common/contracts.js';
import { Random } from '../services/common/random.js';
import { HeuristicBaseline } from '../services/model/baseline.js';
import { auc, logLoss } from '../services/model/evaluation.js';
import { segmentOf } from '../services/model/features.js';
import { learnerOf, replayThroughLoop, WINDOW_MS } from './loop.js';
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

// Sized for a shop of a few thousand clicks (the defaults are for a stream of millions):
// a 500-click holdout, a candidate every 250 examples, accepted ones serve at once.
const trainerSettings = {
  FW_TRAINER_HOLDOUT: 500,
  FW_TRAINER_CANDIDATE_EVERY: 250,
  FW_TRAINER_CANDIDATE_MS: 0,
  FW_TRAINER_GATE_MIN_HOLDOUT: 300,
  FW_TRAINER_PROMOTE_TO: 'champion' as const,
};
const run = await replayThroughLoop({
  name: 'outside',
  clicks,
  purchases,
  wallMs: WALL_MS,
  trainer: trainerSettings,
});
const servedScore = new Map(
  [...run.served].map(([id, p]) => [id, { score: p.score, version: p.modelVersion }]),
);
const clickIds = new Set(clicks.map((c) => c.eventId));
// The loop's own labels against the ones computed from the input events alone.
let labelMismatches = 0;
for (const id of clickIds) if (run.labels.get(id) !== offline.labels[id]) labelMismatches++;

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
const versions = run.versions;

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
  replay: { wallSeconds: run.wallSeconds, speed: run.speed },
  trainer: trainerSettings,
  labelMismatches,
  corrections: run.corrections,
  beforeAnyModel,
  table,
  intervals,
  course,
  versions: versions.map((v) => ({
    version: v.version,
    kind: v.kind,
    status: v.status,
    reason: v.statusReason,
    ...learnerOf(v),
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

await run.cleanup();
process.exit(0);
