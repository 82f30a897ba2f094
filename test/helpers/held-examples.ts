// Simulated labeled examples as the trainer's online learner holds them, and models registered
// from them, for the trainer's unit tests.
import { toArtifacts } from '../../services/model/artifacts.js';
import type { FeatureSpec } from '../../services/model/features.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { FtrlModel } from '../../services/model/models.js';
import type { FileModelRegistry, NewVersion } from '../../services/registry/store.js';
import { simulateLabeledExamples } from '../../services/simulator/dataset.js';
import { heldExample, trainingExample, type HeldExample } from '../../services/trainer/online.js';

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

/**
 * Registers an FTRL model trained on `examples` (their labels flipped with `flipped`: a broken
 * join's model, worse than a constant on honest outcomes) and returns its version id.
 */
export async function registerTrained(
  registry: FileModelRegistry,
  spec: FeatureSpec,
  examples: readonly HeldExample[],
  options: {
    by: string;
    flipped?: boolean;
    reference?: NewVersion['reference'];
    metrics?: NewVersion['metrics'];
    parent?: string;
  },
): Promise<string> {
  const model = new FtrlModel(spec.dimension, spec.maxNonZero, DEFAULT_FTRL);
  model.trainStep(
    examples.map((e) => ({ ...trainingExample(e), label: options.flipped ? 1 - e.label : e.label })),
  );
  const metadata = await registry.register({
    artifacts: await toArtifacts(model, spec),
    parent: options.parent ?? null,
    seed: 0,
    training: { source: 'upload', description: options.by, examples: examples.length },
    metrics: options.metrics ?? null,
    ...(options.reference ? { reference: options.reference } : {}),
    createdBy: options.by,
  });
  model.dispose();
  return metadata.version;
}
