// Model benchmark: training examples/s, batch-256 inference examples/s, single-example latency
// and RSS, for each model kind on each available backend. Each run is its own process; every
// configuration runs REPEATS times and the median is reported (2 noisy cores).
// Writes bench/results/models.json and prints a Markdown table.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { median } from './stats.js';

const ROOT = join(import.meta.dirname, '..');
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3);
const kinds = ['logreg', 'wide_deep', 'ftrl'] as const;
const backends = ['wasm', 'cpu'];
try {
  createRequire(import.meta.url).resolve('@tensorflow/tfjs-node');
  backends.unshift('tensorflow');
} catch {
  console.error('@tensorflow/tfjs-node is not installed: benchmarking wasm and cpu only');
}

interface Run {
  kind: string;
  backend: string;
  trainExamplesPerSec: number;
  inferExamplesPerSec: number;
  singleP50Ms: number;
  singleP99Ms: number;
  rssMb: number;
}

const results: (Run & { runs: number; trainExamples: number })[] = [];
for (const backend of backends) {
  for (const kind of kinds) {
    // Wide & deep on the pure-JS cpu backend trains at ~1k examples/s; keep its run short.
    const trainExamples = kind === 'wide_deep' && backend === 'cpu' ? 5_120 : 25_600;
    const runs: Run[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'bench', 'models-worker.ts'), kind, backend],
        {
          cwd: ROOT,
          env: { ...process.env, BENCH_TRAIN_EXAMPLES: String(trainExamples), FLYWHEEL_TF_BACKEND: backend },
          encoding: 'utf8',
        },
      );
      runs.push(JSON.parse(out.trim().split('\n').at(-1) as string) as Run);
      process.stderr.write(
        `${kind}/${backend} run ${r + 1}/${REPEATS}: ${Math.round(runs.at(-1)!.trainExamplesPerSec)} train ex/s\n`,
      );
    }
    results.push({
      kind,
      backend,
      runs: REPEATS,
      trainExamples,
      trainExamplesPerSec: median(runs.map((x) => x.trainExamplesPerSec)),
      inferExamplesPerSec: median(runs.map((x) => x.inferExamplesPerSec)),
      singleP50Ms: median(runs.map((x) => x.singleP50Ms)),
      singleP99Ms: median(runs.map((x) => x.singleP99Ms)),
      rssMb: median(runs.map((x) => x.rssMb)),
    });
  }
}

mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const file = join(ROOT, 'bench', 'results', 'models.json');
writeFileSync(
  file,
  JSON.stringify(
    { date: new Date().toISOString(), node: process.version, cpus: 2, repeats: REPEATS, results },
    null,
    2,
  ),
);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(
  '| model | backend | train ex/s | infer ex/s (batch 256) | single predict p50 / p99 ms | RSS MB |',
);
console.log('|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.kind} | ${r.backend} | ${fmt(r.trainExamplesPerSec)} | ${fmt(r.inferExamplesPerSec)} | ${r.singleP50Ms.toFixed(3)} / ${r.singleP99Ms.toFixed(3)} | ${fmt(r.rssMb)} |`,
  );
}
console.error(`results: ${file}`);
