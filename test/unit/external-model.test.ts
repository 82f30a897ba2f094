// An externally built tfjs Layers model is accepted when its input signature fits the feature
// spec, served over sparse vectors, and refused with a clear error when it does not fit.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FlywheelError } from '../../services/common/errors.js';
import { fromArtifacts } from '../../services/model/artifacts.js';
import { initBackend, tf } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { simulateLabeledExamples } from '../../services/simulator/dataset.js';
import { testRuntime } from '../helpers/kafka.js';

const spec = new FeatureSpec({ hashBits: 10 });

/** Save a Keras-style model the way tfjs does (model.json + weights.bin) into a folder. */
async function saveLayersModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const modelJson = {
        format: 'layers-model',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: artifacts.weightSpecs }],
      };
      await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
      await writeFile(join(dir, 'group1-shard1of1.bin'), Buffer.from(artifacts.weightData as ArrayBuffer));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}

function denseModel(inputs: number): tf.LayersModel {
  const model = tf.sequential();
  model.add(
    tf.layers.dense({
      inputShape: [inputs],
      units: 1,
      activation: 'sigmoid',
      kernelInitializer: 'randomNormal',
    }),
  );
  return model;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof FlywheelError, String(error));
    return error.code;
  }
}

describe('external tfjs Layers model', () => {
  let root: string;
  let admin: RegistryAdmin;
  before(async () => {
    await initBackend(undefined, 'wasm');
    root = await mkdtemp(join(tmpdir(), 'flywheel-external-'));
    admin = new RegistryAdmin(
      new FileModelRegistry(join(root, 'registry')),
      spec,
      null,
      testRuntime().logger,
    );
  });
  after(() => rm(root, { recursive: true, force: true }));

  it('registers a model whose input is the feature vector and serves it over sparse vectors', async () => {
    const dir = await mkdtemp(join(root, 'fits-'));
    const model = denseModel(spec.dimension);
    await saveLayersModel(model, dir);
    const metadata = await admin.uploadDirectory(dir, { actor: 't', featureSpecHash: spec.hash });
    assert.equal(metadata.kind, 'tfjs_layers');
    const loaded = await fromArtifacts((await admin.registry.loadArtifacts(metadata.version)).files, spec);
    const examples = simulateLabeledExamples({ seed: 1, clicks: 5, spec });
    const served = loaded.predict(examples);
    const expected = tf.tidy(() => {
      const dense = tf.buffer([examples.length, spec.dimension], 'float32');
      examples.forEach((e, row) =>
        e.features.indices.forEach((i, k) => dense.set(e.features.values[k]!, row, i)),
      );
      return Array.from((model.predict(dense.toTensor()) as tf.Tensor).dataSync());
    });
    served.forEach((s, i) => assert.ok(Math.abs(s - expected[i]!) < 1e-6, `score ${i}`));
    model.dispose();
  });

  it('refuses a model with another input width, or without a declared feature spec, and registers nothing', async () => {
    const dir = await mkdtemp(join(root, 'wrong-'));
    const model = denseModel(spec.dimension + 5);
    await saveLayersModel(model, dir);
    model.dispose();
    const before = (await admin.list()).length;
    assert.equal(
      await codeOf(admin.uploadDirectory(dir, { actor: 't', featureSpecHash: spec.hash })),
      'FW_FEATURE_SPEC_MISMATCH',
    );
    assert.equal(await codeOf(admin.uploadDirectory(dir, { actor: 't' })), 'FW_FEATURE_SPEC_MISMATCH');
    assert.equal(
      await codeOf(admin.uploadDirectory(dir, { actor: 't', featureSpecHash: 'feedfacecafebeef' })),
      'FW_FEATURE_SPEC_MISMATCH',
    );
    await writeFile(join(dir, 'model.json'), '{"modelTopology": 42, "weightsManifest": []}');
    assert.equal(
      await codeOf(admin.uploadDirectory(dir, { actor: 't', featureSpecHash: spec.hash })),
      'FW_ARTIFACT_INVALID',
    );
    assert.equal((await admin.list()).length, before);
  });
});
