// A model version on disk: manifest.json (kind, feature spec, shapes, hyper-parameters) plus
// binary weights in tfjs's weights-manifest layout, and a sha256 over all files so a loader
// refuses a corrupt or truncated copy.
import { createHash } from 'node:crypto';
import { ArtifactError } from '../common/errors.js';
import { tf } from './backend.js';
import { HeuristicBaseline, type BaselineState } from './baseline.js';
import type { FeatureSpec } from './features.js';
import type { FtrlParams } from './ftrl.js';
import {
  LayersModelAdapter,
  layersSignature,
  loadLayersModel,
  type LayersModelJson,
} from './layers-adapter.js';
import {
  FtrlModel,
  LogisticRegression,
  WideAndDeep,
  type LearnedModel,
  type TfModelHyperParameters,
} from './models.js';

export type ModelKind = 'logreg' | 'wide_deep' | 'ftrl' | 'baseline' | 'tfjs_layers';
export const MODEL_KINDS: readonly ModelKind[] = ['logreg', 'wide_deep', 'ftrl', 'baseline', 'tfjs_layers'];
export const ARTIFACT_FORMAT = 'flywheel-model/1';

export interface ModelManifest {
  format: typeof ARTIFACT_FORMAT;
  kind: ModelKind;
  featureSpecHash: string;
  dimension: number;
  maxNonZero: number;
  hyperParameters: Record<string, unknown>;
  /** tfjs weights manifest: which named tensors are in which file. */
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

export interface ModelArtifacts {
  manifest: ModelManifest;
  /** File name → bytes, manifest.json included. */
  files: Record<string, Buffer>;
}

/** sha256 over the files in name order, each framed by its name and length. */
export function artifactsSha256(files: Record<string, Buffer>): string {
  const hash = createHash('sha256');
  for (const name of Object.keys(files).sort()) {
    const bytes = files[name] as Buffer;
    hash.update(`${name}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest('hex');
}

export type AnyModel = LearnedModel | HeuristicBaseline | LayersModelAdapter;

export async function toArtifacts(
  model: LearnedModel | HeuristicBaseline,
  spec: FeatureSpec,
): Promise<ModelArtifacts> {
  const files: Record<string, Buffer> = {};
  let weightsManifest: ModelManifest['weightsManifest'] = [];
  let kind: ModelKind;
  let hyperParameters: Record<string, unknown>;
  if (model instanceof HeuristicBaseline) {
    kind = 'baseline';
    hyperParameters = {
      priorStrengthSegment: model.priorStrengthSegment,
      priorStrengthItem: model.priorStrengthItem,
    };
    files['baseline.json'] = Buffer.from(JSON.stringify(model.toJSON()));
  } else {
    kind = model.kind;
    hyperParameters = { ...model.hyper };
    const named = model.weightMap();
    const { data, specs } = await tf.io.encodeWeights(named);
    for (const t of Object.values(named)) t.dispose();
    files['weights.bin'] = Buffer.from(data);
    weightsManifest = [{ paths: ['weights.bin'], weights: specs }];
    if (model instanceof FtrlModel) {
      // The learner's exact state (float64), so a warm start continues where it stopped.
      files['ftrl-state.bin'] = Buffer.concat([
        Buffer.from(model.learner.z.buffer, model.learner.z.byteOffset, model.learner.z.byteLength),
        Buffer.from(model.learner.n.buffer, model.learner.n.byteOffset, model.learner.n.byteLength),
      ]);
    }
  }
  const manifest: ModelManifest = {
    format: ARTIFACT_FORMAT,
    kind,
    featureSpecHash: spec.hash,
    dimension: spec.dimension,
    maxNonZero: spec.maxNonZero,
    hyperParameters,
    weightsManifest,
  };
  files['manifest.json'] = Buffer.from(JSON.stringify(manifest, null, 2));
  return { manifest, files };
}

export function parseManifest(files: Record<string, Buffer>): ModelManifest {
  const rawBytes = files['manifest.json'];
  if (!rawBytes) throw new ArtifactError('FW_ARTIFACT_INVALID', 'artifact has no manifest.json');
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(rawBytes.toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ArtifactError('FW_ARTIFACT_INVALID', `manifest.json is not JSON: ${(cause as Error).message}`);
  }
  if (raw.format !== ARTIFACT_FORMAT) {
    throw new ArtifactError(
      'FW_ARTIFACT_INVALID',
      `manifest format ${JSON.stringify(raw.format)} is not ${ARTIFACT_FORMAT}`,
    );
  }
  if (!MODEL_KINDS.some((kind) => kind === raw.kind)) {
    throw new ArtifactError('FW_ARTIFACT_INVALID', `unknown model kind ${JSON.stringify(raw.kind)}`);
  }
  const manifest = raw as unknown as ModelManifest;
  return manifest;
}

/** Check an artifact against the feature spec without building the model (upload validation). */
export function checkSignature(manifest: ModelManifest, spec: FeatureSpec): void {
  if (manifest.featureSpecHash !== spec.hash || manifest.dimension !== spec.dimension) {
    throw new ArtifactError(
      'FW_FEATURE_SPEC_MISMATCH',
      `model expects feature spec ${manifest.featureSpecHash} (dimension ${manifest.dimension}); this deployment uses ${spec.hash} (dimension ${spec.dimension})`,
    );
  }
}

export async function fromArtifacts(files: Record<string, Buffer>, spec: FeatureSpec): Promise<AnyModel> {
  const manifest = parseManifest(files);
  checkSignature(manifest, spec);
  if (manifest.kind === 'tfjs_layers') return loadExternal(files, spec);
  if (manifest.kind === 'baseline') {
    const raw = files['baseline.json'];
    if (!raw) throw new ArtifactError('FW_ARTIFACT_INVALID', 'baseline artifact has no baseline.json');
    return HeuristicBaseline.fromJSON(JSON.parse(raw.toString('utf8')) as BaselineState);
  }
  const entries = manifest.weightsManifest.flatMap((group) => group.weights);
  const bin = files['weights.bin'];
  if (!bin) throw new ArtifactError('FW_ARTIFACT_INVALID', 'artifact has no weights.bin');
  const expectedBytes = entries.reduce((sum, w) => sum + w.shape.reduce((a, b) => a * b, 1) * 4, 0);
  if (bin.length !== expectedBytes) {
    throw new ArtifactError(
      'FW_ARTIFACT_CORRUPT',
      `weights.bin has ${bin.length} bytes, the manifest describes ${expectedBytes}`,
    );
  }
  const weights = tf.io.decodeWeights(Uint8Array.from(bin).buffer, entries);
  const hyper = manifest.hyperParameters;
  let model: LearnedModel;
  try {
    if (manifest.kind === 'logreg') {
      model = new LogisticRegression(
        spec.dimension,
        spec.maxNonZero,
        hyper as unknown as TfModelHyperParameters,
      );
    } else if (manifest.kind === 'wide_deep') {
      model = new WideAndDeep(spec.dimension, spec.maxNonZero, hyper as unknown as TfModelHyperParameters);
    } else {
      const state = files['ftrl-state.bin'];
      const size = spec.dimension * 8;
      if (!state || state.length !== 2 * size)
        throw new ArtifactError('FW_ARTIFACT_CORRUPT', 'ftrl-state.bin is missing or truncated');
      const copy = Uint8Array.from(state);
      model = new FtrlModel(spec.dimension, spec.maxNonZero, hyper as unknown as FtrlParams, {
        z: new Float64Array(copy.buffer, 0, spec.dimension),
        n: new Float64Array(copy.buffer, size, spec.dimension),
      });
      return model; // serving weights are derived from (z, n)
    }
    model.setWeights(weights);
    return model;
  } finally {
    for (const t of Object.values(weights)) t.dispose();
  }
}

/** An external tfjs Layers model, checked to take the whole feature vector and give one score. */
async function loadExternal(files: Record<string, Buffer>, spec: FeatureSpec): Promise<LayersModelAdapter> {
  const raw = files['model.json'];
  if (!raw) throw new ArtifactError('FW_ARTIFACT_INVALID', 'a tfjs_layers artifact needs model.json');
  let model: tf.LayersModel;
  try {
    model = await loadLayersModel(JSON.parse(raw.toString('utf8')) as LayersModelJson, files);
  } catch (cause) {
    throw new ArtifactError(
      'FW_ARTIFACT_INVALID',
      `model.json is not a loadable tfjs Layers model: ${(cause as Error).message}`,
    );
  }
  const { inputs, outputs } = layersSignature(model);
  const fits =
    inputs.length === 1 &&
    inputs[0]?.length === 2 &&
    inputs[0][1] === spec.dimension &&
    outputs.length === 1 &&
    outputs[0]?.at(-1) === 1;
  if (!fits) {
    model.dispose();
    throw new ArtifactError(
      'FW_FEATURE_SPEC_MISMATCH',
      `input signature ${JSON.stringify(inputs)} -> ${JSON.stringify(outputs)} does not fit the feature spec: expected one input [null, ${spec.dimension}] and one output [null, 1]`,
    );
  }
  return new LayersModelAdapter(model, spec.dimension);
}

/**
 * Wrap an external tfjs Layers model (model.json + shards) as a Flywheel artifact. The uploader
 * states which feature spec it was trained on; the spec hash must be this deployment's.
 */
export async function wrapExternalLayersModel(
  external: Record<string, Buffer>,
  spec: FeatureSpec,
  declaredFeatureSpecHash: string,
): Promise<ModelArtifacts> {
  const manifest: ModelManifest = {
    format: ARTIFACT_FORMAT,
    kind: 'tfjs_layers',
    featureSpecHash: declaredFeatureSpecHash,
    dimension: spec.dimension,
    maxNonZero: spec.maxNonZero,
    hyperParameters: {},
    weightsManifest: [],
  };
  checkSignature(manifest, spec);
  const files = { ...external, 'manifest.json': Buffer.from(JSON.stringify(manifest, null, 2)) };
  const adapter = await loadExternal(files, spec); // proves it loads and fits
  adapter.dispose();
  return { manifest, files };
}
