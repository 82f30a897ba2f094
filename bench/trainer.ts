// Trainer benchmark on the real local broker, in one run:
// 1. Throughput: BENCH_EXAMPLES labeled examples (simulated, 3 partitions) in a feedback topic;
//    the Flywheel trainer consumes them from Kafka (decode, label merge, holdout, FTRL,
//    checkpoints), BENCH_REPEATS times with fresh groups; examples/s from its first batch to the
//    last. Next to it, on the same examples in the same order read from a file: Flywheel's FTRL
//    learner alone in memory, River's LogisticRegression and Vowpal Wabbit (default and --ftrl),
//    from PyPI in bench/.venv. All are scored on the same holdout (the trainer's: the newest
//    examples it read, never learned from).
// 2. Freshness: examples produced live at BENCH_FRESH_RATE/s with label time = now; the trainer
//    proposes a candidate every 2,000 examples learned, straight to champion (gate margin 0, so
//    versions flow: this measures the path, not the gate); a scorer's model manager follows
//    fw.models.updates and reports, per version going live, the age of the newest outcome it saw.
// Writes bench/results/trainer.json and prints Markdown tables.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProducer, sendInChunks, waitForKafka } from '../services/common/kafka.js';
import { ensureTopics } from '../services/common/provision.js';
import { createRuntime } from '../services/common/runtime.js';
import type { TopicName } from '../services/common/topics.js';
import { evaluate } from '../services/model/evaluation.js';
import { initBackend } from '../services/model/backend.js';
import { FeatureSpec } from '../services/model/features.js';
import { DEFAULT_FTRL } from '../services/model/ftrl.js';
import { historySource } from '../services/common/read-ranges.js';
import { RegistryAdmin } from '../services/registry/admin.js';
import { ModelTraining } from '../services/training/model-training.js';
import { FileModelRegistry } from '../services/registry/store.js';
import { kafkaHistory, resolveRanges } from '../services/trainer/history.js';
import { ModelManager } from '../services/scorer/model-manager.js';
import { ModelUpdatesFollower } from '../services/scorer/updates-follower.js';
import { encodeFeedback, simulatedFeedback } from '../services/simulator/feedback.js';
import { loadTrainerConfig, type TrainerConfig } from '../services/trainer/config.js';
import { OnlineLearner, heldExample } from '../services/trainer/online.js';
import { Trainer } from '../services/trainer/service.js';
import { consumeRate } from './passthrough.js';
import { median } from './stats.js';
import { simulatedTrainingExamples } from '../services/simulator/dataset.js';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLES = Number(process.env.BENCH_EXAMPLES ?? 60_000);
const HOLDOUT = Number(process.env.BENCH_HOLDOUT ?? 5000);
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const FRESH_RATE = Number(process.env.BENCH_FRESH_RATE ?? 1000);
const FRESH_SECONDS = Number(process.env.BENCH_FRESH_SECONDS ?? 40);
const PYTHON = join(ROOT, 'bench', '.venv', 'bin', 'python');

const runtime = createRuntime('bench', { ...process.env, LOG_LEVEL: 'warn' });
await initBackend(runtime.logger);
const id = randomUUID().slice(0, 8);
const names = {
  feedback: `bench.feedback.${id}`,
  human: `bench.human.${id}`,
  dlq: `bench.dlq.${id}`,
  updates: `bench.updates.${id}`,
  liveFeedback: `bench.live-feedback.${id}`,
};
const admin = await waitForKafka(runtime.kafka, runtime.logger);
await ensureTopics(admin, runtime.logger, {
  partitions: 3,
  replicationFactor: 1,
  specs: Object.values(names).map((name) => ({
    name: name as TopicName,
    partitions: name === names.updates ? 1 : 3,
    configs: {},
    description: 'bench',
  })),
});
const producer = createProducer(runtime.kafka);
await producer.connect();
const spec = new FeatureSpec();

const trainerFor = (feedback: string, dir: string, config: Partial<TrainerConfig>) =>
  new Trainer({
    runtime,
    http: false,
    config: {
      ...loadTrainerConfig({}),
      FW_TRAINER_GROUP: `bench.trainer.${randomUUID()}`,
      FW_TRAINER_DIR: dir,
      FW_TRAINER_HOLDOUT: HOLDOUT,
      FW_TRAINER_CANDIDATE_EVERY: 0,
      FW_TRAINER_CANDIDATE_MS: 0,
      FW_TRAINER_DRIFT_Z: 0,
      ...config,
    },
    topics: { feedback, humanLabels: names.human, deadLetters: names.dlq, modelUpdates: names.updates },
  });

// 1. Throughput and holdout quality.
const examples = simulatedFeedback({ seed: 31, count: EXAMPLES });
await sendInChunks(producer, names.feedback, await encodeFeedback(runtime, examples));
console.error(`${EXAMPLES} examples in ${names.feedback}`);

const trainerRates: number[] = [];
const consumeRates: number[] = [];
let trainer: Trainer | null = null;
for (let r = 0; r < REPEATS; r++) {
  // The baseline, alternated with the trainer: a plain KafkaJS consumer of the same topic.
  consumeRates.push(
    await consumeRate(runtime.kafka, {
      topic: names.feedback,
      total: EXAMPLES,
      maxBytesPerPartition: loadTrainerConfig({}).FW_TRAINER_FETCH_BYTES,
    }),
  );
  const dir = mkdtempSync(join(tmpdir(), 'flywheel-bench-trainer-'));
  trainer = trainerFor(names.feedback, dir, {});
  let first: { at: number; taken: number } | null = null;
  trainer.on('batch', () => {
    first ??= { at: performance.now(), taken: trainer!.learned + trainer!.heldOut };
  });
  await trainer.start();
  while (trainer.learned + trainer.heldOut < EXAMPLES) await once(trainer, 'batch');
  const end = performance.now();
  const start = first as unknown as { at: number; taken: number };
  trainerRates.push(((EXAMPLES - start.taken) / (end - start.at)) * 1000);
  await trainer.stop();
  console.error(
    `run ${r + 1}: trainer ${trainerRates.at(-1)?.toFixed(0)} examples/s, plain consumer ${consumeRates.at(-1)?.toFixed(0)} messages/s`,
  );
  if (r < REPEATS - 1) rmSync(dir, { recursive: true, force: true });
}
const finalTrainer = trainer as Trainer;
const holdout = finalTrainer.learner.holdout;
const holdoutIds = new Set(holdout.map((e) => e.exampleId));
const scoreOn = (score: (e: (typeof holdout)[number]) => number) =>
  evaluate(holdout.map((e) => ({ score: score(e), label: e.label }))).logLoss;
const trainerLogLoss = scoreOn((e) => finalTrainer.learner.score(e));

// The same examples in production order, the trainer's holdout marked.
const file = join(tmpdir(), `flywheel-bench-trainer-${id}.ndjson`);
writeFileSync(
  file,
  examples
    .map((e) =>
      JSON.stringify({
        i: e.features.indices,
        v: e.features.values,
        y: e.label,
        h: holdoutIds.has(e.exampleId) ? 1 : 0,
      }),
    )
    .join('\n') + '\n',
);
const trainSet = examples.filter((e) => !holdoutIds.has(e.exampleId)).map(heldExample);
const memoryRates: number[] = [];
let memoryLearner: OnlineLearner | null = null;
for (let r = 0; r < REPEATS; r++) {
  memoryLearner = new OnlineLearner({
    dimension: spec.dimension,
    params: DEFAULT_FTRL,
    holdoutSize: 0,
    progressiveWindow: 10_000,
  });
  const started = performance.now();
  memoryLearner.add(trainSet);
  memoryRates.push((trainSet.length / (performance.now() - started)) * 1000);
}
const memoryLogLoss = scoreOn((e) => (memoryLearner as OnlineLearner).score(e));

type PeerResults = Record<string, { examplesPerSecond: number; holdoutLogLoss: number }>;
let peers: PeerResults | { error: string };
if (!existsSync(PYTHON)) {
  peers = { error: 'bench/.venv is missing: run `npm run bench -- trainer` (bench/run.sh creates it)' };
} else {
  const result = spawnSync(PYTHON, [join(ROOT, 'bench', 'peers', 'online_peers.py'), file, String(REPEATS)], {
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  peers =
    result.status === 0
      ? (JSON.parse(result.stdout) as Record<string, { examplesPerSecond: number; holdoutLogLoss: number }>)
      : { error: result.stderr.slice(-2000) };
}
rmSync(file, { force: true });

// 2. Distillation on the same history: a wide & deep teacher, then an FTRL student on its scores.
const registryDir = mkdtempSync(join(tmpdir(), 'flywheel-bench-registry-'));
process.env.FW_REGISTRY_DIR = registryDir;
const registryAdmin = new RegistryAdmin(new FileModelRegistry(registryDir), spec, null, runtime.logger);
const modelTraining = new ModelTraining(registryAdmin.registry, registryAdmin.spec, runtime.logger, {
  kafka: kafkaHistory(historySource(runtime), spec),
  simulated: simulatedTrainingExamples,
});
const history = {
  source: 'kafka' as const,
  ranges: await resolveRanges(runtime.kafka, [names.feedback, names.human], 'earliest', 'latest'),
  examples: 0,
  labelSources: {},
  trigger: 'backfill',
  kinds: { [names.feedback]: 'labeledExample' as const, [names.human]: 'humanLabel' as const },
};
const distilled = await modelTraining.distill({
  kind: 'ftrl',
  teacherKind: 'wide_deep',
  parent: null,
  seed: 1,
  training: history,
  actor: 'bench',
});
const direct = await modelTraining.train({
  kind: 'ftrl',
  parent: null,
  seed: 1,
  training: history,
  actor: 'bench',
});
const distillation = {
  teacher: {
    version: distilled.teacher.version,
    ...distilled.teacher.metrics,
    microsPerExample: distilled.micros.teacher,
  },
  student: {
    version: distilled.student.version,
    ...distilled.student.metrics,
    microsPerExample: distilled.micros.student,
  },
  ftrlOnOutcomes: { version: direct.version, ...direct.metrics },
};

// 3. Freshness: outcome → live in a scorer's model manager.
const manager = new ModelManager(new FileModelRegistry(registryDir), spec, runtime.logger);
const follower = new ModelUpdatesFollower(
  runtime.kafka,
  runtime.codecs,
  manager,
  runtime.logger,
  names.updates,
);
await follower.start();
const ages: number[] = [];
const seenAges: number[] = [];
manager.on('live', ({ outcomeAgeMs, seenAgeMs }) => {
  if (outcomeAgeMs !== null) ages.push(outcomeAgeMs / 1000);
  if (seenAgeMs !== null) seenAges.push(seenAgeMs / 1000);
});
const liveDir = mkdtempSync(join(tmpdir(), 'flywheel-bench-live-'));
const live = trainerFor(names.liveFeedback, liveDir, {
  FW_TRAINER_HOLDOUT: 1000,
  FW_TRAINER_CANDIDATE_EVERY: 2000,
  FW_TRAINER_PROMOTE_TO: 'champion',
  FW_TRAINER_GATE_MIN_HOLDOUT: 500,
  FW_TRAINER_GATE_MIN_IMPROVEMENT: 0,
  FW_TRAINER_GATE_ALPHA: 0.5,
});
const outcomes: Record<string, number> = {};
live.on('candidate', (c) => {
  const key = c.alias ?? 'rejected';
  outcomes[key] = (outcomes[key] ?? 0) + 1;
});
await live.start();
const stream = simulatedFeedback({ seed: 32, count: FRESH_RATE * FRESH_SECONDS, idPrefix: 'live' });
const tick = 100;
const perTick = Math.max(1, Math.round((FRESH_RATE * tick) / 1000));
const freshStarted = Date.now();
for (let i = 0; i < stream.length; i += perTick) {
  const now = Date.now();
  const slice = stream.slice(i, i + perTick).map((e) => ({ ...e, clickTime: now - 1000, labelTime: now }));
  await sendInChunks(producer, names.liveFeedback, await encodeFeedback(runtime, slice));
  const next = freshStarted + ((i + perTick) / perTick) * tick;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - Date.now())));
}
await new Promise((resolve) => setTimeout(resolve, 3000));
await live.stop();
await follower.stop();
rmSync(liveDir, { recursive: true, force: true });
rmSync(registryDir, { recursive: true, force: true });

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s[Math.min(s.length - 1, Math.floor(q * s.length))] as number) : Number.NaN;
};
const results = {
  when: new Date().toISOString(),
  examples: EXAMPLES,
  holdout: holdout.length,
  repeats: REPEATS,
  kafkaConsumeOnly: { messagesPerSecond: median(consumeRates), rates: consumeRates },
  ratioTrainerToConsumer: median(trainerRates) / median(consumeRates),
  flywheelTrainerFromKafka: {
    examplesPerSecond: median(trainerRates),
    rates: trainerRates,
    holdoutLogLoss: trainerLogLoss,
  },
  flywheelLearnerInMemory: {
    examplesPerSecond: median(memoryRates),
    rates: memoryRates,
    holdoutLogLoss: memoryLogLoss,
  },
  peers,
  distillation,
  freshness: {
    rate: FRESH_RATE,
    seconds: FRESH_SECONDS,
    candidateEvery: 2000,
    versionsLive: ages.length,
    candidates: outcomes,
    p50Seconds: quantile(ages, 0.5),
    p95Seconds: quantile(ages, 0.95),
    agesSeconds: ages,
    newestSeen: { p50Seconds: quantile(seenAges, 0.5), p95Seconds: quantile(seenAges, 0.95) },
  },
};
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'trainer.json'), JSON.stringify(results, null, 2) + '\n');

console.log(
  `\n| learner (${EXAMPLES - holdout.length} examples, 1 pass) | examples/s (median of ${REPEATS}) | holdout log loss (${holdout.length}) |`,
);
console.log('|---|---|---|');
console.log(
  `| plain KafkaJS consumer, same topic, no decoding (baseline) | ${median(consumeRates).toFixed(0)} | |`,
);
console.log(
  `| Flywheel trainer, from Kafka (${((100 * median(trainerRates)) / median(consumeRates)).toFixed(0)}% of the baseline) | ${median(trainerRates).toFixed(0)} | ${trainerLogLoss.toFixed(4)} |`,
);
console.log(
  `| Flywheel FTRL learner, in memory | ${median(memoryRates).toFixed(0)} | ${memoryLogLoss.toFixed(4)} |`,
);
if ('error' in peers) console.log(`| peers | failed: ${(peers.error as string).split('\n').at(-2)} | |`);
else
  for (const [name, p] of Object.entries(peers))
    console.log(
      `| ${name}, in memory | ${p.examplesPerSecond.toFixed(0)} | ${p.holdoutLogLoss.toFixed(4)} |`,
    );
const row = (
  name: string,
  m: { logLoss?: number; auc?: number; baselineLogLoss?: number },
  micros?: number,
) =>
  `| ${name} | ${m.logLoss?.toFixed(4)} | ${m.auc?.toFixed(4)} | ${m.baselineLogLoss?.toFixed(4)} | ${micros === undefined ? '' : micros.toFixed(2)} |`;
console.log(
  `\n| distillation (${EXAMPLES} examples, 80/20 by time) | holdout log loss | AUC | baseline log loss | µs per example scored |`,
);
console.log('|---|---|---|---|---|');
console.log(row('wide & deep teacher', distillation.teacher, distillation.teacher.microsPerExample));
console.log(
  row('FTRL student (teacher soft labels)', distillation.student, distillation.student.microsPerExample),
);
console.log(row('FTRL on the outcomes (no teacher)', distillation.ftrlOnOutcomes));
console.log(
  `\nFreshness, ${ages.length} versions at ${FRESH_RATE} examples/s: newest outcome learned → live in a scorer p50 ${results.freshness.p50Seconds.toFixed(2)} s, p95 ${results.freshness.p95Seconds.toFixed(2)} s; newest outcome seen (holdout) → live p50 ${results.freshness.newestSeen.p50Seconds.toFixed(2)} s, p95 ${results.freshness.newestSeen.p95Seconds.toFixed(2)} s; candidates ${JSON.stringify(outcomes)}`,
);

await producer.disconnect();
await admin.deleteTopics({ topics: Object.values(names) }).catch(() => undefined);
await admin.disconnect();
process.exit(0);
