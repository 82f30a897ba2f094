// Judging registered versions in tests: log loss of a version on examples it never trained on
// (held out by the trainer, or simulated past the end of the traffic).
import { fromArtifacts } from '../../services/model/artifacts.js';
import { evaluate } from '../../services/model/evaluation.js';
import type { FeatureSpec } from '../../services/model/features.js';
import type { TrainingExample } from '../../services/model/models.js';
import type { FileModelRegistry } from '../../services/registry/store.js';
import { trainingExample, type HeldExample } from '../../services/trainer/online.js';

export async function logLossOf(
  registry: FileModelRegistry,
  spec: FeatureSpec,
  version: string,
  examples: readonly (HeldExample | TrainingExample)[],
): Promise<number> {
  const inputs = examples.map((e) => ('indices' in e ? trainingExample(e) : e));
  const model = await fromArtifacts((await registry.loadArtifacts(version)).files, spec);
  try {
    const scores = model.predict(inputs);
    return evaluate(inputs.map((e, i) => ({ score: scores[i] as number, label: e.label }))).logLoss;
  } finally {
    model.dispose();
  }
}
