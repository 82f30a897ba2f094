// The monitor on the real stack: predictions and labels read from Kafka into its windows; quiet
// on traffic like the version's reference; the shifted category flagged, exported on /metrics and
// one candidate asked of the trainer (a stand-in HTTP server) however many looks follow; a
// garbage record dead-lettered; and after a restart the windows neither forgotten nor doubled.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import type { Prediction } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { toArtifacts } from '../../services/model/artifacts.js';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { FeatureSpec } from '../../services/model/features.js';
import { versionReference } from '../../services/model/profile.js';
import { loadMonitorConfig } from '../../services/monitor/config.js';
import type { Look } from '../../services/monitor/core.js';
import { Monitor } from '../../services/monitor/service.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { TopicCollector } from '../helpers/collect.js';
import { servedPredictions } from '../helpers/monitor.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

const TOKEN = 'monitor-test-admin-token';
const EVEN = [1, 1, 1, 1];

describe('monitor', () => {
  const runtime = testRuntime('monitor');
  const spec = new FeatureSpec();
  let topics: TestTopics<'predictions' | 'feedback' | 'dlq'>;
  let producer: Producer;
  let dir: string;
  let trainer: FastifyInstance;
  const asked: { reason: string; trigger: string; authorization?: string }[] = [];

  before(async () => {
    topics = await createTestTopics(runtime, ['predictions', 'feedback', 'dlq'], 2);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    dir = await mkdtemp(join(tmpdir(), 'fw-monitor-'));
    trainer = Fastify();
    trainer.post<{ Body: { reason: string; trigger: string } }>('/v1/candidates', (request) => {
      asked.push({
        ...request.body,
        ...(request.headers.authorization ? { authorization: request.headers.authorization } : {}),
      });
      return { version: 'v999' };
    });
    await trainer.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await trainer.close();
    await producer.disconnect();
    await topics.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('watches a version: quiet, then drift, one retrain, and a restart that keeps its windows', async () => {
    const registry = new FileModelRegistry(join(dir, 'registry'));
    const base = Date.now() - 110_000;
    const referenceRecords = servedPredictions(spec, {
      seed: 1,
      n: 5000,
      from: base - 3600_000,
      spanMs: 3600_000,
      weights: EVEN,
    });
    const { version } = await registry.register({
      artifacts: await toArtifacts(new HeuristicBaseline(), spec),
      parent: null,
      seed: 0,
      training: { source: 'upload', description: 'monitor test', examples: 5000 },
      metrics: null,
      reference: versionReference(
        spec,
        referenceRecords.map((p) => ({ ...p, label: 0 })),
      ),
      createdBy: 'test',
    });
    const send = async (records: Prediction[]) =>
      producer.send({
        topic: topics.names.predictions,
        messages: await Promise.all(
          records.map(async (p) => ({ key: p.userId, value: await runtime.codecs.prediction.encode(p) })),
        ),
      });
    const port = (trainer.server.address() as { port: number }).port;
    const config = {
      ...loadMonitorConfig({}),
      FW_MONITOR_GROUP: `test.monitor.${topics.names.predictions}`,
      FW_MONITOR_DIR: join(dir, 'monitor'),
      FW_MONITOR_HTTP_PORT: 0,
      FW_MONITOR_LOOK_MS: 200,
      FW_MONITOR_BUCKET_MS: 1000,
      FW_MONITOR_WINDOW_MS: 60_000,
      FW_MONITOR_LABEL_LAG_MS: 0,
      FW_MONITOR_MIN_RECORDS: 300,
      FW_MONITOR_TRAINER_URL: `http://127.0.0.1:${port}`,
      FW_CONSUMER_SESSION_TIMEOUT_MS: 6000,
    };
    const looks: Look[] = [];
    const waiters: { done: (look: Look) => boolean; resolve: () => void }[] = [];
    const lookUntil = (done: (look: Look) => boolean) =>
      new Promise<void>((resolve) => waiters.push({ done, resolve }));
    const start = async () => {
      const monitor = new Monitor({
        runtime,
        config,
        registryDir: join(dir, 'registry'),
        adminToken: TOKEN,
        topics: {
          predictions: topics.names.predictions,
          feedback: topics.names.feedback,
          deadLetters: topics.names.dlq,
        },
        onLook: (look) => {
          looks.push(look);
          for (const w of waiters.splice(0))
            if (w.done(look)) w.resolve();
            else waiters.push(w);
        },
      });
      await monitor.start();
      return monitor;
    };
    const predictionsOf = (look: Look) =>
      look.observations.find((o) => o.version === version)?.quality.predictions ?? 0;

    let monitor = await start();
    try {
      const normal = servedPredictions(spec, {
        seed: 2,
        n: 1000,
        from: base,
        spanMs: 50_000,
        weights: EVEN,
        version,
      });
      await send(normal);
      await producer.send({ topic: topics.names.predictions, messages: [{ key: 'x', value: 'not avro' }] });
      // Its reference is read on first sight; the look after that tests the window.
      await lookUntil((l) => predictionsOf(l) === 1000 && l.observations[0]?.drift !== null);
      const letters = await new TopicCollector(runtime.kafka, topics.names.dlq, (b) =>
        runtime.codecs.deadLetter.decode(b),
      ).start();
      await letters.atLeast(1);
      await letters.stop();
      assert.equal(letters.records[0]?.value.sourceTopic, topics.names.predictions);
      const quiet = looks.at(-1) as Look;
      assert.deepEqual(quiet.observations[0]?.drift?.drifted, []);
      assert.deepEqual(quiet.judgement.alerts, []);

      const shifted = servedPredictions(spec, {
        seed: 3,
        n: 1000,
        from: base + 70_000,
        spanMs: 30_000,
        weights: [1, 1, 1, 6],
        version,
      });
      await send(shifted);
      await lookUntil((l) => l.judgement.retrain !== null);
      const drifted = looks.at(-1) as Look;
      assert.ok(drifted.observations[0]?.drift?.drifted.includes('category'));
      const seen = looks.length;
      await lookUntil(() => looks.length >= seen + 5);
      assert.equal(asked.length, 1, 'one retrain request, however many looks see the drift');
      assert.equal(asked[0]?.trigger, 'alarm');
      assert.match(asked[0]?.reason ?? '', /category drifted/);
      assert.equal(asked[0]?.authorization, `Bearer ${TOKEN}`);
      const metrics = await (await fetch(`http://127.0.0.1:${monitor.port}/metrics`)).text();
      assert.match(
        metrics,
        new RegExp(`flywheel_monitor_drifted\\{[^}]*version="${version}",group="category"[^}]*\\} 1`),
      );
      assert.match(metrics, /flywheel_monitor_alerts_total\{[^}]*kind="drift"[^}]*\} 1/);
      const alerts = (await (
        await fetch(`http://127.0.0.1:${monitor.port}/v1/monitor/alerts`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        })
      ).json()) as {
        alerts: { subject: string }[];
      };
      assert.ok(alerts.alerts.some((a) => a.subject === 'category'));
      const anonymous = await fetch(`http://127.0.0.1:${monitor.port}/v1/monitor/dead-letters`);
      assert.equal(anonymous.status, 401, 'what the monitor knows is for admins where a token is set');
    } finally {
      await monitor.stop();
    }
    const before = predictionsOf(looks.at(-1) as Look);
    monitor = await start();
    try {
      const { inputs } = (await (
        await fetch(`http://127.0.0.1:${monitor.port}/v1/monitor`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        })
      ).json()) as {
        inputs: Record<string, { newestAt: number | null }>;
      };
      assert.notEqual(inputs.predictions?.newestAt, null, 'how fresh the inputs were survives the restart');
      const first = looks.length;
      // Until a look judged the drift again (the reference is read anew after a restart): the
      // looks before could not judge it, and the open alert stays open instead of being said again.
      await lookUntil((look) => looks.length > first && look.observations.some((o) => o.drift !== null));
      assert.equal(
        predictionsOf(looks.at(-1) as Look),
        before,
        'the windows survive the restart, counted once',
      );
      assert.equal(asked.length, 1, 'the cooldown survives the restart too');
      assert.equal(monitor.alertHistory.filter((a) => a.subject === 'category').length, 1);
    } finally {
      await monitor.stop();
    }
  });
});
