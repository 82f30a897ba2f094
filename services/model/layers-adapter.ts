// Serving an externally built tfjs Layers model (model.json + weight shards from tf.LayersModel
// save or the tfjs converter) over Flywheel's sparse vectors: its single input must take the
// whole feature vector as a dense row ([null, dimension]) and its single output one probability.
import { ArtifactError } from '../common/errors.js';
import type { FeatureVector } from '../common/contracts.js';
import { tf } from './backend.js';
import type { ScoringInput } from './models.js';

export interface LayersModelJson {
  modelTopology: unknown;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  format?: string;
}

/** Shapes of the model's inputs and outputs, read from its topology without building it. */
export function layersSignature(model: tf.LayersModel): {
  inputs: (number | null)[][];
  outputs: (number | null)[][];
} {
  return {
    inputs: model.inputs.map((t) => t.shape),
    outputs: model.outputs.map((t) => t.shape),
  };
}

export async function loadLayersModel(
  modelJson: LayersModelJson,
  files: Record<string, Buffer>,
): Promise<tf.LayersModel> {
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const shards = modelJson.weightsManifest.flatMap((group) => group.paths);
  const missing = shards.filter((path) => !files[path]);
  if (missing.length > 0)
    throw new ArtifactError('FW_ARTIFACT_INVALID', `weight shards missing: ${missing.join(', ')}`);
  const weightData = Buffer.concat(shards.map((path) => files[path] as Buffer));
  return tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: modelJson.modelTopology as tf.io.ModelJSON['modelTopology'],
      weightSpecs,
      weightData: Uint8Array.from(weightData).buffer,
    }),
  );
}

export class LayersModelAdapter {
  readonly kind = 'tfjs_layers' as const;

  constructor(
    readonly model: tf.LayersModel,
    readonly dimension: number,
  ) {}

  predictVectors(vectors: readonly FeatureVector[]): Float32Array {
    if (vectors.length === 0) return new Float32Array(0);
    return tf.tidy(() => {
      const dense = tf.buffer([vectors.length, this.dimension], 'float32');
      vectors.forEach((v, row) =>
        v.indices.forEach((index, k) => dense.set(v.values[k] as number, row, index)),
      );
      const output = this.model.predict(dense.toTensor()) as tf.Tensor;
      return output.reshape([-1]).dataSync() as Float32Array;
    });
  }

  predict(inputs: readonly ScoringInput[]): Float32Array {
    return this.predictVectors(inputs.map((i) => i.features));
  }

  dispose(): void {
    this.model.dispose();
  }
}
