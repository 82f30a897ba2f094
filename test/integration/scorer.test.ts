// The scorer on the real stack: every valid click yields exactly one prediction, malformed
// clicks go to the dead-letter topic, a promotion mid-stream switches versions at one point per
// partition with nothing lost or repeated, and the predict API serves the same models.
import assert from 'node:assert/strict';
import { appendFile, chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { DeadLetter, Prediction } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { SessionTracker } from '../../services/model/session.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ModelTraining } from '../../services/training/model-training.js';
import { FileModelRegistry, type TrainingData } from '../../services/registry/store.js';
import { MemoryReviewSink } from '../../services/scorer/review.js';
import { loadScorerConfig } from '../../services/scorer/config.js';
import { Scorer } from '../../services/scorer/service.js';
import type { SimEvent } from '../../services/simulator/generator.js';
import { sendTraffic } from '../helpers/traffic.js';
import { TopicCollector } from '../helpers/collect.js';
import { sampleRecords } from '../helpers/records.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { simulatedTrainingExamples } from '../../services/simulator/dataset.js';

const simulated = (seed: number): TrainingData => ({
  source: 'simulated',
  seed,
  clicks: 8000,
  startTime: Date.UTC(2026, 0, 1),
  trafficRate: 100,
  attributionWindowMs: 1_800_000,
  examples: 8000,
});

describe('scorer', () => {
  const runtime = testRuntime('scorer');
  let topics: TestTopics<'click' | 'purchase' | 'predictions' | 'dlq' | 'updates'>;
  let producer: Producer;
  let registryDir: string;
  let admin: RegistryAdmin;
  let modelTraining: ModelTraining;
  let scorer: Scorer;
  let predictions: TopicCollector<Prediction>;
  const reviews = new MemoryReviewSink();

  before(async () => {
    await initBackend(undefined, 'wasm');
    topics = await createTestTopics(runtime, ['click', 'purchase', 'predictions', 'dlq', 'updates'], 3);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    registryDir = await mkdtemp(join(tmpdir(), 'flywheel-scorer-'));
    process.env.FW_REGISTRY_DIR = registryDir;
    const spec = new FeatureSpec();
    admin = new RegistryAdmin(
      new FileModelRegistry(registryDir),
      spec,
      { producer, codecs: runtime.codecs, topic: topics.names.updates },
      runtime.logger,
    );
    modelTraining = new ModelTraining(admin.registry, admin.spec, runtime.logger, {
      simulated: simulatedTrainingExamples,
    });
    await modelTraining.train({
      kind: 'logreg',
      parent: null,
      seed: 1,
      training: simulated(1),
      actor: 'test',
    });
    await modelTraining.train({ kind: 'ftrl', parent: null, seed: 2, training: simulated(2), actor: 'test' });
    await admin.promote('v000001', 'champion', { actor: 'test', reason: 'initial' });

    scorer = new Scorer({
      runtime,
      topics: {
        clicks: topics.names.click,
        predictions: topics.names.predictions,
        deadLetters: topics.names.dlq,
        modelUpdates: topics.names.updates,
      },
      reviewSink: reviews,
      config: {
        FW_SCORER_GROUP: `test.scorer.${topics.names.click}`,
        FW_SCORER_CONCURRENCY: 1,
        FW_SCORER_WORKER: true,
        // Batches span several session slices.
        FW_SCORER_SESSION_SLICE: 50,
        // Fewer sessions held than the stream has: sessions are dropped and loaded back throughout.
        FW_SCORER_SESSION_CACHE: 30,
        FW_HTTP_PORT: 0,
        FW_PREDICT_BODY_LIMIT: 64 * 1024,
        FW_PREDICT_MAX_EVENTS: 100,
        FW_DEBUG_FEATURES: true,
        FW_REVIEW_BAND_LOW: 0.3,
        FW_REVIEW_BAND_HIGH: 0.7,
        FW_REVIEW_DISAGREEMENT: 0.3,
        FW_REVIEW_AUDIT_RATE: 0.01,
        FW_SESSION_IDLE_SECONDS: 3600,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 10_000,
      },
    });
    await scorer.start();
    predictions = await new TopicCollector(runtime.kafka, topics.names.predictions, (b) =>
      runtime.codecs.prediction.decode(b),
    ).start();
  });
  after(async () => {
    await predictions.stop();
    await scorer.stop();
    await producer.disconnect();
    await topics.cleanup();
    await rm(registryDir, { recursive: true, force: true });
  });

  // Session ids derive from the seed; a seed of its own per run keeps Redis state of earlier runs apart.
  const runSeed = Date.now() % 1_000_000;
  const send = (
    seed: number,
    count: number,
    rate: number,
    onEvent?: (e: SimEvent) => void,
    malformedRate = 0,
  ) =>
    sendTraffic(runtime, producer, {
      clickTopic: topics.names.click,
      purchaseTopic: topics.names.purchase,
      events: count,
      seed: runSeed * 1000 + seed,
      rate,
      malformedRate,
      onEvent,
    });

  it('scores every valid click exactly once with the champion, with the features serving used', async () => {
    const clicks = new Map<string, SimEvent & { type: 'click' }>();
    const stats = await send(101, 3000, 0, (e) => e.type === 'click' && clicks.set(e.click.eventId, e), 0.01);
    await predictions.atLeast(clicks.size);
    const byEvent = new Map<string, Prediction[]>();
    for (const { value } of predictions.records)
      byEvent.set(value.eventId, [...(byEvent.get(value.eventId) ?? []), value]);
    assert.equal(predictions.records.length, clicks.size, 'one prediction per valid click');
    assert.deepEqual([...byEvent.keys()].sort(), [...clicks.keys()].sort(), 'the same event ids');
    const spec = new FeatureSpec();
    const tracker = new SessionTracker();
    for (const [eventId, event] of [...clicks].sort((a, b) => a[1].time - b[1].time)) {
      const [p] = byEvent.get(eventId)!;
      assert.equal(p!.modelVersion, 'v000001');
      assert.equal(p!.arm, 'champion');
      assert.ok(p!.score > 0 && p!.score < 1);
      // Redis session state gives the same context as the in-memory definition.
      const expected = spec.vectorize(event.click, tracker.observe(event.click));
      assert.deepEqual([...p!.features.indices], expected.indices, `feature slots of ${eventId}`);
      // Values travel as Avro floats (32-bit).
      expected.values.forEach((v, k) =>
        assert.ok(Math.abs(p!.features.values[k]! - v) < 1e-6, `feature value ${k} of ${eventId}`),
      );
    }
    assert.ok(reviews.tasks.length > 0, 'some predictions went to review');
    assert.ok(reviews.tasks.every((t) => byEvent.get(t.click.eventId)?.[0]?.reviewRequested === true));

    // The malformed clicks are in the dead-letter topic with reasons.
    const clickMalformed = stats.malformedTotal; // includes malformed purchases, which nobody here reads
    const letters = new TopicCollector<DeadLetter>(runtime.kafka, topics.names.dlq, (b) =>
      runtime.codecs.deadLetter.decode(b),
    );
    await letters.start();
    try {
      await letters.atLeast(1);
      assert.ok(letters.records.length <= clickMalformed);
      assert.ok(
        letters.records.every(
          (l) =>
            l.value.sourceTopic === topics.names.click &&
            l.value.service === 'scorer' &&
            l.value.reason.length > 0,
        ),
      );
    } finally {
      await letters.stop();
    }
  });

  it('hot-swaps a promoted version mid-stream: one switch point per partition, nothing lost or repeated', async () => {
    const before = predictions.records.length;
    const clicks = new Set<string>();
    const traffic = send(202, 4000, 1500, (e) => e.type === 'click' && clicks.add(e.click.eventId));
    await predictions.atLeast(before + 800);
    await admin.promote('v000002', 'champion', { actor: 'test', reason: 'swap under load' });
    await traffic;
    await predictions.atLeast(before + clicks.size);
    const fresh = predictions.records.slice(before);
    assert.equal(fresh.length, clicks.size, 'one prediction per click');
    assert.equal(new Set(fresh.map((r) => r.value.eventId)).size, clicks.size, 'no event scored twice');
    for (const partition of new Set(fresh.map((r) => r.partition))) {
      const versions = fresh
        .filter((r) => r.partition === partition)
        .sort((a, b) => Number(BigInt(a.offset) - BigInt(b.offset)))
        .map((r) => r.value.modelVersion);
      const switches = versions.filter((v, i) => i > 0 && v !== versions[i - 1]).length;
      assert.equal(switches, 1, `partition ${partition}: ${versions[0]} → ${versions.at(-1)} in one step`);
      assert.equal(versions[0], 'v000001');
      assert.equal(versions.at(-1), 'v000002');
    }
  });

  it('a scorer starting later loads only the newest routing it can serve from the updates topic', async () => {
    // Traffic topics of their own: the late scorers must not score the clicks the others see.
    const own = await createTestTopics(runtime, ['click', 'predictions', 'dlq'], 1);
    const championsLoadedByALateScorer = async (name: string) => {
      const late = new Scorer({
        runtime,
        http: false,
        topics: {
          clicks: own.names.click,
          predictions: own.names.predictions,
          deadLetters: own.names.dlq,
          modelUpdates: topics.names.updates,
        },
        config: { ...loadScorerConfig({}), FW_SCORER_GROUP: `test.scorer.${name}.${topics.names.click}` },
      });
      const swaps: (string | null)[] = [];
      late.manager.on('swapped', (set) => swaps.push(set.routing.champion));
      await late.start();
      await late.stop();
      return swaps;
    };
    try {
      // The topic holds at least the first champion's update and the swap's, in its active segment.
      await admin.promote('v000001', 'champion', { actor: 'test', reason: 'back' });
      await admin.promote('v000002', 'champion', { actor: 'test', reason: 'and forth' });
      assert.deepEqual(await championsLoadedByALateScorer('late'), ['v000002']);

      // The newest routing names a version whose files no longer match: the one before it serves,
      // as it would have had every record been applied in turn.
      await admin.promote('v000001', 'champion', { actor: 'test', reason: 'about to break' });
      const weights = join(registryDir, 'versions', 'v000001', 'weights.bin');
      await chmod(weights, 0o644);
      await appendFile(weights, Buffer.from([0]));
      assert.deepEqual(await championsLoadedByALateScorer('fallback'), ['v000002']);
    } finally {
      await admin.promote('v000002', 'champion', { actor: 'test', reason: 'restore' });
      await own.cleanup();
    }
  });

  it('serves the same models over HTTP, validates input and shows the routing', async () => {
    const base = `http://127.0.0.1:${scorer.port}`;
    const click = { ...sampleRecords(Date.now()).click, eventId: 'api-1', sessionId: 'api-session' };
    const ok = await fetch(`${base}/v1/predict?debug=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: click }),
    });
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as {
      predictions: { score: number; modelVersion: string; arm: string; features: unknown }[];
    };
    assert.equal(body.predictions[0]?.modelVersion, 'v000002');
    assert.equal(body.predictions[0]?.arm, 'champion');
    assert.ok(body.predictions[0]?.features);
    const bad = await fetch(`${base}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: { ...click, price: -1 } }),
    });
    assert.equal(bad.status, 400);
    const future = await fetch(`${base}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ event: { ...click, eventTime: Date.now() + 86_400_000 } }),
    });
    assert.equal(((await future.json()) as { error: { code: string } }).error.code, 'FW_BAD_REQUEST');
    const big = await fetch(`${base}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        events: Array.from({ length: 400 }, (_, i) => ({ ...click, eventId: `e${i}` })),
      }),
    });
    assert.equal(big.status, 413);
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { routing: { champion: string } };
    assert.equal(models.routing.champion, 'v000002');
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /flywheel_scorer_predictions_total\{arm="champion"/);
    assert.match(metrics, /flywheel_consumer_lag\{/);
    assert.match(metrics, /flywheel_scorer_model_info\{alias="champion",version="v000002"/);
  });
});
