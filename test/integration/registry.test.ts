// The registry end to end: train on simulated labeled data, register, move aliases (published
// to a compacted topic on the real broker), read the routing back in a fresh consumer, retrain
// from lineage, and refuse corrupt artifacts, unknown versions and foreign feature specs.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { FlywheelError } from '../../services/common/errors.js';
import { createProducer } from '../../services/common/kafka.js';
import { readTopicToEnd } from '../../services/common/read-topic.js';
import { initBackend } from '../../services/model/backend.js';
import { fromArtifacts } from '../../services/model/artifacts.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ModelTraining } from '../../services/training/model-training.js';
import { readModelState } from '../../services/registry/publisher.js';
import { FileModelRegistry, type TrainingData } from '../../services/registry/store.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { simulatedTrainingExamples } from '../../services/simulator/dataset.js';

const spec = new FeatureSpec();
const simulated = (seed: number): TrainingData => ({
  source: 'simulated',
  seed,
  clicks: 12_000,
  startTime: Date.UTC(2026, 0, 1),
  trafficRate: 100,
  attributionWindowMs: 1_800_000,
  examples: 12_000,
});

async function failsWith(promise: Promise<unknown>, code: string): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof FlywheelError, `expected a FlywheelError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error.message;
  }
  assert.fail(`expected ${code}`);
}

describe('model registry', () => {
  const runtime = testRuntime();
  let topics: TestTopics<'updates'>;
  let producer: Producer;
  let dir: string;
  let admin: RegistryAdmin;
  let modelTraining: ModelTraining;
  let registry: FileModelRegistry;

  before(async () => {
    await initBackend(undefined, 'wasm');
    topics = await createTestTopics(runtime, ['updates'], 1);
    await topics.admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: 2,
          name: topics.names.updates,
          configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
        },
      ],
    });
    producer = createProducer(runtime.kafka);
    await producer.connect();
    dir = await mkdtemp(join(tmpdir(), 'flywheel-registry-'));
    registry = new FileModelRegistry(dir);
    admin = new RegistryAdmin(
      registry,
      spec,
      { producer, codecs: runtime.codecs, topic: topics.names.updates },
      runtime.logger,
    );
    modelTraining = new ModelTraining(admin.registry, admin.spec, runtime.logger, {
      simulated: simulatedTrainingExamples,
    });
  });
  after(async () => {
    await producer.disconnect();
    await topics.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('registers trained versions with lineage and holdout metrics that beat the baseline', async () => {
    const v1 = await modelTraining.train({
      kind: 'logreg',
      parent: null,
      seed: 1,
      training: simulated(31),
      actor: 'test',
    });
    assert.equal(v1.version, 'v000001');
    assert.equal(v1.kind, 'logreg');
    assert.equal(v1.featureSpecHash, spec.hash);
    assert.equal(v1.parent, null);
    assert.deepEqual(v1.training, simulated(31));
    assert.match(v1.sha256, /^[0-9a-f]{64}$/);
    assert.ok(v1.metrics && v1.metrics.examples === 2400);
    assert.ok(
      v1.metrics.logLoss < (v1.metrics.baselineLogLoss ?? 0),
      `model ${v1.metrics.logLoss} vs baseline ${v1.metrics.baselineLogLoss}`,
    );
    // The monitor's reference, from the holdout (simulated examples carry their click's category).
    const groups = Object.keys(v1.reference?.profile.groups ?? {});
    for (const group of ['category', 'segment', 'score', 'dense:logPrice'])
      assert.ok(groups.includes(group), `${group} in ${groups.join(', ')}`);
    assert.equal(
      v1.reference?.calibration.reduce((n, bin) => n + bin.n, 0),
      v1.metrics.examples,
    );

    // A child warm-started from v1 records v1 as its parent.
    const v2 = await modelTraining.train({
      kind: 'logreg',
      parent: 'v000001',
      seed: 2,
      training: simulated(32),
      actor: 'test',
    });
    assert.equal(v2.parent, 'v000001');
    const v3 = await modelTraining.train({
      kind: 'ftrl',
      parent: null,
      seed: 3,
      training: simulated(33),
      actor: 'test',
    });
    assert.equal(v3.kind, 'ftrl');
    assert.deepEqual(
      (await admin.list()).map((v) => v.version),
      ['v000001', 'v000002', 'v000003'],
    );

    const diff = await admin.diff('v000001', 'v000002');
    assert.ok(diff.fields.some((f) => f.field === 'parent'));
    assert.ok(diff.weights && diff.weights.l2Distance > 0);
  });

  it('retraining a version from its lineage reproduces its weights exactly', async () => {
    for (const version of ['v000001', 'v000002', 'v000003']) {
      const result = await modelTraining.retrain(version);
      assert.equal(result.maxWeightDifference, 0, `${version} weights`);
      assert.ok(result.identical, `${version}: sha256 ${result.reproducedSha256} = ${result.sha256}`);
    }
  });

  it('moves aliases atomically with history, publishes them, and a fresh consumer reads the routing back', async () => {
    await admin.promote('v000001', 'champion', { actor: 'alice', reason: 'first model' });
    await admin.promote('v000002', 'champion', { actor: 'alice', reason: 'better holdout' });
    await admin.promote('v000003', 'challenger', {
      actor: 'bob',
      reason: 'try online learner',
      challengerWeight: 0.25,
    });
    await admin.promote('v000001', 'shadow', { actor: 'bob', reason: 'compare old model' });
    const rolled = await admin.rollback('champion', { actor: 'carol', reason: 'conversion dropped' });
    assert.deepEqual(rolled.routing, {
      champion: 'v000001',
      challenger: 'v000003',
      challengerWeight: 0.25,
      shadow: 'v000001',
      // ModelUpdate v2: the one challenger is also the whole list; no baseline share, no segments.
      challengers: [{ version: 'v000003', weight: 0.25 }],
      baselineWeight: 0,
      segments: [],
    });

    const history = await registry.history();
    assert.deepEqual(
      history.map((m) => [m.alias, m.from, m.to, m.actor]),
      [
        ['champion', null, 'v000001', 'alice'],
        ['champion', 'v000001', 'v000002', 'alice'],
        ['challenger', null, 'v000003', 'bob'],
        ['shadow', null, 'v000001', 'bob'],
        ['champion', 'v000002', 'v000001', 'carol'],
      ],
    );
    assert.match(history.at(-1)!.reason, /rollback: conversion dropped/);

    const state = await readModelState(runtime.kafka, runtime.codecs, topics.names.updates);
    // Decoded Avro records are class instances: compared as the plain values they hold.
    assert.deepEqual(JSON.parse(JSON.stringify(state.routing)), await registry.routing());
    assert.equal(state.latest.champion?.version, 'v000001');
    assert.equal(state.latest.champion?.actor, 'carol');
    assert.equal(state.latest.challenger?.version, 'v000003');
    assert.equal(state.latest.challenger?.modelKind, 'ftrl');
    assert.equal(state.latest.champion?.sha256, (await registry.get('v000001')).sha256);
    assert.equal(state.latest.champion?.artifactUri, registry.artifactUri('v000001'));
  });

  it('refuses unknown versions, corrupt or truncated artifacts and foreign feature specs, changing nothing', async () => {
    const routingBefore = await registry.routing();
    const messagesBefore = (await readTopicToEnd(runtime.kafka, topics.names.updates)).length;

    assert.match(
      await failsWith(
        admin.promote('v000099', 'champion', { actor: 't', reason: 'x' }),
        'FW_UNKNOWN_VERSION',
      ),
      /no model version v000099/,
    );
    await failsWith(admin.promote('latest', 'champion', { actor: 't', reason: 'x' }), 'FW_UNKNOWN_VERSION');

    // Flip one byte of a stored weight file: loading must refuse it.
    const weights = join(dir, 'versions', 'v000002', 'weights.bin');
    await chmod(join(dir, 'versions', 'v000002'), 0o755);
    await chmod(weights, 0o644);
    const original = await readFile(weights);
    const flipped = Buffer.from(original);
    flipped[100] = (flipped[100] as number) ^ 0xff;
    await writeFile(weights, flipped);
    assert.match(
      await failsWith(registry.loadArtifacts('v000002'), 'FW_ARTIFACT_CORRUPT'),
      /sha256 .* does not match/,
    );
    await writeFile(weights, original.subarray(0, original.length - 8));
    assert.match(
      await failsWith(registry.loadArtifacts('v000002'), 'FW_ARTIFACT_CORRUPT'),
      /weights\.bin has \d+ bytes, expected \d+/,
    );
    await writeFile(weights, original);
    assert.ok(await registry.loadArtifacts('v000002'));

    // A model built for another feature spec (18 hash bits) is refused at upload.
    const foreign = await mkdtemp(join(tmpdir(), 'flywheel-foreign-'));
    try {
      await cp(join(dir, 'versions', 'v000001'), foreign, { recursive: true });
      const manifestPath = join(foreign, 'manifest.json');
      await chmod(manifestPath, 0o644);
      const manifestBytes = await readFile(manifestPath);
      const manifest = JSON.parse(manifestBytes.toString('utf8')) as Record<string, unknown>;
      await writeFile(
        manifestPath,
        JSON.stringify({ ...manifest, featureSpecHash: new FeatureSpec({ hashBits: 18 }).hash }),
      );
      assert.match(
        await failsWith(admin.uploadDirectory(foreign, { actor: 't' }), 'FW_FEATURE_SPEC_MISMATCH'),
        /feature spec/,
      );
      // The same files with the right spec upload fine, as a new version without lineage.
      await writeFile(manifestPath, manifestBytes);
      const uploaded = await admin.uploadDirectory(foreign, { actor: 't' });
      assert.equal(uploaded.training.source, 'upload');
      assert.equal(uploaded.sha256, (await registry.get('v000001')).sha256);
      await failsWith(modelTraining.retrain(uploaded.version), 'FW_BAD_REQUEST');
      const model = await fromArtifacts((await registry.loadArtifacts(uploaded.version)).files, spec);
      assert.equal(model.kind, 'logreg');
      model.dispose();
    } finally {
      await rm(foreign, { recursive: true, force: true });
    }

    assert.deepEqual(await registry.routing(), routingBefore);
    assert.equal(
      (await readTopicToEnd(runtime.kafka, topics.names.updates)).length,
      messagesBefore,
      'nothing published',
    );
  });
});
