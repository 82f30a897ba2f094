// One benchmark run in a fresh process (so RSS belongs to one model on one backend):
// training examples/s, batch-256 inference examples/s and single-example latency.
// Args: KIND BACKEND; prints one JSON line.
import { initBackend } from '../services/model/backend.js';
import { FeatureSpec } from '../services/model/features.js';
import type { LearnedModel } from '../services/model/models.js';
import { newModel, defaultHyper } from '../services/training/recipes.js';
import { simulateLabeledExamples } from '../services/simulator/dataset.js';

const [kind = 'logreg', backend = 'wasm'] = process.argv.slice(2) as [
  'logreg' | 'wide_deep' | 'ftrl',
  'wasm' | 'cpu',
];
const trainExamples = Number(process.env.BENCH_TRAIN_EXAMPLES ?? 25_600);
await initBackend(undefined, backend);
const spec = new FeatureSpec();
const data = simulateLabeledExamples({ seed: 99, clicks: trainExamples + 12_800, spec });
const train = data.slice(0, trainExamples);
const infer = data.slice(trainExamples);
const model: LearnedModel = newModel(kind, spec, defaultHyper(kind), 1);

// Warm-up: compile kernels, allocate the optimizer state.
model.trainStep(train.slice(0, 256));
model.predict(infer.slice(0, 256));

let start = process.hrtime.bigint();
for (let i = 256; i < train.length; i += 256) model.trainStep(train.slice(i, i + 256));
const trainSeconds = Number(process.hrtime.bigint() - start) / 1e9;

start = process.hrtime.bigint();
for (let i = 0; i < infer.length; i += 256) model.predict(infer.slice(i, i + 256));
const inferSeconds = Number(process.hrtime.bigint() - start) / 1e9;

const latencies: number[] = [];
for (let i = 0; i < 2000; i++) {
  const t = process.hrtime.bigint();
  model.predict([infer[i % infer.length]!]);
  latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
}
latencies.sort((a, b) => a - b);
console.log(
  JSON.stringify({
    kind,
    backend,
    trainExamplesPerSec: (train.length - 256) / trainSeconds,
    inferExamplesPerSec: infer.length / inferSeconds,
    singleP50Ms: latencies[Math.floor(latencies.length * 0.5)],
    singleP99Ms: latencies[Math.floor(latencies.length * 0.99)],
    rssMb: process.memoryUsage().rss / 1024 / 1024,
  }),
);
