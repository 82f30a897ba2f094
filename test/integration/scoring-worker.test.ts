// The scoring worker on real Redis: it scores click bytes with the models it was told to load,
// refuses bad messages with their reason, and when its thread dies the batch in flight fails as
// retriable and a new thread serves the same version; paired with the predict API's model set,
// a version only one of them loads is undone in the other.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { routingOf, type ModelUpdate, type Prediction } from '../../services/common/contracts.js';
import { isRetriable } from '../../services/common/errors.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { ModelTraining } from '../../services/training/model-training.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { ModelManager } from '../../services/scorer/model-manager.js';
import { PairedModels } from '../../services/scorer/paired-models.js';
import { predictionMessages } from '../../services/scorer/pipeline.js';
import { DEFAULT_REVIEW_POLICY } from '../../services/scorer/review.js';
import { ScoringWorker, workerThread } from '../../services/scorer/scoring-worker.js';
import type { WorkerSetup } from '../../services/scorer/worker-protocol.js';
import { testRuntime } from '../helpers/kafka.js';
import { schemaRegistrySettings } from '../../services/common/runtime.js';
import { sampleRecords } from '../helpers/records.js';
import { simulatedTrainingExamples } from '../../services/simulator/dataset.js';

describe('scoring worker', () => {
  const runtime = testRuntime('scoring-worker');
  let registryDir: string;
  let host: ScoringWorker;
  let setup: WorkerSetup;
  const threads: Worker[] = [];
  const keepingThreads = (s: WorkerSetup) => {
    const thread = workerThread(s);
    threads.push(thread);
    return thread;
  };

  const update: ModelUpdate = {
    updateId: 'u-1',
    alias: 'champion',
    version: 'v000001',
    artifactUri: null,
    sha256: null,
    modelKind: 'logreg',
    featureSpecHash: null,
    routing: routingOf({ champion: 'v000001', challenger: null, challengerWeight: 0, shadow: null }),
    reason: 'test',
    actor: 'test',
    updateTime: Date.now(),
  };

  const trainingData = {
    source: 'simulated' as const,
    seed: 1,
    clicks: 3000,
    startTime: Date.UTC(2026, 0, 1),
    trafficRate: 100,
    attributionWindowMs: 1_800_000,
    examples: 3000,
  };

  /** Train the registry's next logistic-regression version (v000001, v000002, ...). */
  const trainVersion = (seed: number) =>
    new ModelTraining(new FileModelRegistry(registryDir), new FeatureSpec(), runtime.logger, {
      simulated: simulatedTrainingExamples,
    }).train({
      kind: 'logreg',
      parent: null,
      seed,
      training: trainingData,
      actor: 'test',
    });

  before(async () => {
    await initBackend(undefined, 'wasm');
    registryDir = await mkdtemp(join(tmpdir(), 'flywheel-scoring-worker-'));
    await trainVersion(1);
    setup = {
      service: 'scoring-worker-test',
      logLevel: 'silent',
      redisUrl: runtime.config.REDIS_URL,
      schemaRegistry: schemaRegistrySettings(runtime.config),
      registryDir,
      hashBits: 16,
      sessions: { idleSeconds: 3600, maxClicksPerSession: 500, maxSessions: 1000 },
      policy: DEFAULT_REVIEW_POLICY,
      limits: { maxMessageBytes: 64 * 1024, maxClockSkewMs: 3_600_000 },
    };
    host = await ScoringWorker.start(setup, runtime.logger, keepingThreads);
  });
  after(async () => {
    await host.close();
    await rm(registryDir, { recursive: true, force: true });
  });

  const clicks = async (count: number) => {
    const session = randomUUID();
    const base = sampleRecords().click;
    return Promise.all(
      Array.from({ length: count }, (_, i) =>
        runtime.codecs.click.encode({
          ...base,
          eventId: `${session}-${i}`,
          sessionId: session,
          eventTime: base.eventTime + i,
        }),
      ),
    );
  };
  const decoded = (scored: Awaited<ReturnType<ScoringWorker['score']>>['scored']) =>
    Promise.all(predictionMessages(scored).map((m) => runtime.codecs.prediction.decode(m.value)));

  it('scores with the version applied and refuses bad messages with their reason', async () => {
    assert.equal(await host.apply(update), true);
    const good = await clicks(250);
    const values = [...good.slice(0, 100), Buffer.from('not avro'), null, ...good.slice(100)];
    const { scored, recorded } = await host.score(values, 'clicks:0');
    await recorded;
    assert.deepEqual(
      scored.rejected.map((r) => [r.index, r.code]),
      [
        [100, 'FW_BAD_MAGIC_BYTE'],
        [101, 'FW_EMPTY_MESSAGE'],
      ],
    );
    const predictions: Prediction[] = await decoded(scored);
    assert.equal(predictions.length, 250);
    assert.ok(predictions.every((p) => p.modelVersion === 'v000001' && p.arm === 'champion'));
    // One prediction per good click, in the order of the clicks.
    assert.deepEqual(
      predictions.map((p) => p.eventId),
      predictions.map((_, i) => `${predictions[0]?.sessionId}-${i}`),
    );
    assert.deepEqual(scored.perArm, { champion: 250 });
  });

  it('fails a batch in flight as retriable when its thread dies; a new thread serves the same version', async () => {
    const inFlight = host.score(await clicks(50), 'clicks:1');
    await (threads.at(-1) as Worker).terminate();
    await assert.rejects(inFlight, (error) => isRetriable(error));
    const { scored, recorded } = await host.score(await clicks(50), 'clicks:1');
    await recorded;
    assert.equal(threads.length, 2, 'a new thread was started');
    const predictions = await decoded(scored);
    assert.equal(predictions.length, 50);
    assert.ok(predictions.every((p) => p.modelVersion === 'v000001'));
  });

  it("a version the worker cannot load is undone in the predict API's set: both keep the previous", async () => {
    // The worker reads a copy of the registry made before v000002 existed.
    const workerRegistry = await mkdtemp(join(tmpdir(), 'flywheel-scoring-worker-old-'));
    await cp(registryDir, workerRegistry, { recursive: true });
    await trainVersion(2);
    const worker = await ScoringWorker.start({ ...setup, registryDir: workerRegistry }, runtime.logger);
    const manager = new ModelManager(new FileModelRegistry(registryDir), new FeatureSpec(), runtime.logger);
    try {
      const paired = new PairedModels(manager, worker, runtime.logger);
      assert.deepEqual(await paired.apply(update), { served: true, streamed: true });
      const second = {
        ...update,
        updateId: 'u-2',
        version: 'v000002',
        routing: { ...update.routing, champion: 'v000002' },
      };
      assert.deepEqual(await paired.apply(second), { served: true, streamed: false });
      assert.equal(manager.current.routing.champion, 'v000001', 'the predict API went back');
      const { scored, recorded } = await worker.score(await clicks(20), 'clicks:2');
      await recorded;
      assert.ok((await decoded(scored)).every((p) => p.modelVersion === 'v000001'));
    } finally {
      await worker.close();
      await rm(workerRegistry, { recursive: true, force: true });
    }
  });

  it('does not start when its worker cannot (Redis unreachable), and leaves no thread behind', async () => {
    const before = threads.length;
    await assert.rejects(
      ScoringWorker.start({ ...setup, redisUrl: 'redis://127.0.0.1:1' }, runtime.logger, keepingThreads),
      /ECONNREFUSED|connect/i,
    );
    assert.equal(threads.length, before + 1, 'one attempt, no restarts');
    // A stopped thread's id is -1.
    assert.equal(threads.at(-1)?.threadId, -1);
  });
});
