// The scorer against a Confluent-compatible registry (the stand-in, under a path, with basic auth)
// that refuses to register, then hangs, then is gone: no good click is dead-lettered, nothing is
// committed past, /readyz says why, and when the registry is back every click is scored.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { Prediction } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { readTopicToEnd } from '../../services/common/read-topic.js';
import { createRuntime } from '../../services/common/runtime.js';
import { initBackend } from '../../services/model/backend.js';
import { loadScorerConfig } from '../../services/scorer/config.js';
import { MemoryReviewSink } from '../../services/scorer/review.js';
import { Scorer } from '../../services/scorer/service.js';
import { TopicCollector } from '../helpers/collect.js';
import { createTestTopics, type TestTopics } from '../helpers/kafka.js';
import { StandInRegistry } from '../helpers/schema-registry.js';
import { sendTraffic } from '../helpers/traffic.js';

/** Polls `check` (no event tells when a retry has failed) until it holds, or fails after `ms`. */
async function eventually(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('scorer with a schema registry that refuses, hangs and goes away', () => {
  const registry = new StandInRegistry({
    pathPrefix: '/apis/ccompat/v7',
    basicAuth: { user: 'flywheel', password: 'registry-pass' },
  });
  let runtime: ReturnType<typeof createRuntime>;
  let topics: TestTopics<'click' | 'purchase' | 'predictions' | 'dlq' | 'updates'>;
  let producer: Producer;
  let registryDir: string;

  before(async () => {
    await registry.start();
    runtime = createRuntime('scorer', {
      ...process.env,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      FW_SCHEMA_REGISTRY_URL: registry.url,
      FW_SCHEMA_REGISTRY_AUTH: 'flywheel:registry-pass',
      FW_SCHEMA_REGISTRY_TIMEOUT_MS: '300',
      FW_RETRY_MAX_BACKOFF_MS: '300',
    });
    await initBackend(undefined, 'wasm');
    topics = await createTestTopics(runtime, ['click', 'purchase', 'predictions', 'dlq', 'updates'], 3);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    registryDir = await mkdtemp(join(tmpdir(), 'flywheel-registry-outage-'));
    process.env.FW_REGISTRY_DIR = registryDir;
  });
  after(async () => {
    await producer.disconnect();
    await topics.cleanup();
    await registry.stop();
    await rm(registryDir, { recursive: true, force: true });
  });

  it('retries through every failure, dead-letters nothing, and scores every click once the registry is back', async () => {
    const clickIds: string[] = [];
    // Clicks written through the registry while it works (their schema is registered).
    await sendTraffic(runtime, producer, {
      clickTopic: topics.names.click,
      purchaseTopic: topics.names.purchase,
      events: 60,
      seed: 21,
      onEvent: (e) => {
        if (e.type === 'click') clickIds.push(e.click.eventId);
      },
    });
    registry.behaviour = 'refuse-register';
    const scorer = new Scorer({
      runtime,
      http: false,
      reviewSink: new MemoryReviewSink(),
      topics: {
        clicks: topics.names.click,
        predictions: topics.names.predictions,
        deadLetters: topics.names.dlq,
        modelUpdates: topics.names.updates,
      },
      config: { ...loadScorerConfig({}), FW_SCORER_GROUP: `test.scorer.outage.${topics.names.click}` },
    });
    const reason = () => {
      const readiness = scorer.readiness();
      return readiness.ready ? 'ready' : readiness.reason;
    };
    const predictions = await new TopicCollector<Prediction>(runtime.kafka, topics.names.predictions, (b) =>
      runtime.codecs.prediction.decode(b),
    ).start();
    await scorer.start();
    try {
      await eventually('refused registration reported', () =>
        /FW_SCHEMA_REGISTRY_REFUSED.*409.*incompatible/.test(reason()),
      );
      registry.behaviour = 'hang';
      await eventually('a hanging registry reported', () =>
        /FW_SCHEMA_REGISTRY_UNAVAILABLE.*did not answer within 300 ms/.test(reason()),
      );
      await registry.stop();
      await eventually('an unreachable registry reported', () =>
        /FW_SCHEMA_REGISTRY_UNAVAILABLE.*unreachable/.test(reason()),
      );
      assert.equal(predictions.records.length, 0, 'nothing scored while the registry was failing');
      assert.doesNotMatch(reason(), /registry-pass/, 'no credentials in what the service says');
      registry.behaviour = 'normal';
      await registry.start();
      await predictions.until(
        (records) => new Set(records.map((r) => r.value.eventId)).size >= clickIds.length,
        'a prediction of every click',
      );
      await eventually('ready again', () => reason() === 'ready');
    } finally {
      await scorer.stop();
      await predictions.stop();
    }
    const scored = new Set(predictions.records.map((r) => r.value.eventId));
    assert.deepEqual([...scored].sort(), [...clickIds].sort(), 'every click scored');
    const letters = await readTopicToEnd(runtime.kafka, topics.names.dlq);
    assert.equal(letters.length, 0, 'no click dead-lettered');
  });
});
