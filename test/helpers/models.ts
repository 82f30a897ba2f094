// Judging registered versions in tests: log loss of a version on examples the trainer held out.
import { fromArtifacts } from '../../services/model/artifacts.js';
import { evaluate } from '../../services/model/evaluation.js';
import type { FeatureSpec } from '../../services/model/features.js';
import type { FileModelRegistry } from '../../services/registry/store.js';
import { trainingExample, type HeldExample } from '../../services/trainer/online.js';

export async function logLossOf(
  registry: FileModelRegistry,
  spec: FeatureSpec,
  version: string,
  examples: readonly HeldExample[],
): Promise<number> {
  const model = await fromArtifacts((await registry.loadArtifacts(version)).files, spec);
  try {
    const scores = model.predict(examples.map(trainingExample));
    return evaluate(examples.map((e, i) => ({ score: scores[i] as number, label: e.label }))).logLoss;
  } finally {
    model.dispose();
  }
}
