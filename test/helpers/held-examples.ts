// Simulated labeled examples as the trainer's online learner holds them, for its unit tests.
import type { FeatureSpec } from '../../services/model/features.js';
import { simulateLabeledExamples } from '../../services/simulator/dataset.js';
import { heldExample, type HeldExample } from '../../services/trainer/online.js';

/** `count` examples of the simulated shop (seed `seed`), label times 0, 1, 2, … */
export function heldExamples(spec: FeatureSpec, count: number, seed = 9): HeldExample[] {
  return simulateLabeledExamples({
    spec,
    seed,
    clicks: count * 2,
    startTime: Date.UTC(2026, 0, 1),
    trafficRate: 50,
    attributionWindowMs: 600_000,
  })
    .slice(0, count)
    .map((e, i) => heldExample({ ...e, exampleId: `e${i}`, labelTime: i }));
}
