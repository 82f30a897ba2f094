// Two scorer processes in one consumer group split the click partitions; when one is killed
// (SIGKILL, no goodbye), the other takes its partitions over and no click goes unscored.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import type { Producer } from 'kafkajs';
import type { Prediction } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ModelTraining } from '../../services/training/model-training.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { sendTraffic } from '../helpers/traffic.js';
import { TopicCollector } from '../helpers/collect.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { simulatedTrainingExamples } from '../../services/simulator/dataset.js';

const PARTITIONS = 6;

describe('scorers in one consumer group', () => {
  const runtime = testRuntime('scorer-group');
  let topics: TestTopics<'click' | 'purchase' | 'predictions' | 'dlq' | 'updates'>;
  let producer: Producer;
  let registryDir: string;
  const children: ChildProcess[] = [];

  before(async () => {
    await initBackend(undefined, 'wasm');
    topics = await createTestTopics(
      runtime,
      ['click', 'purchase', 'predictions', 'dlq', 'updates'],
      PARTITIONS,
    );
    producer = createProducer(runtime.kafka);
    await producer.connect();
    registryDir = await mkdtemp(join(tmpdir(), 'flywheel-group-'));
    const admin = new RegistryAdmin(
      new FileModelRegistry(registryDir),
      new FeatureSpec(),
      { producer, codecs: runtime.codecs, topic: topics.names.updates },
      runtime.logger,
    );
    const modelTraining = new ModelTraining(admin.registry, admin.spec, runtime.logger, {
      simulated: simulatedTrainingExamples,
    });
    const training = {
      source: 'simulated' as const,
      seed: 5,
      clicks: 5000,
      startTime: Date.UTC(2026, 0, 1),
      trafficRate: 100,
      attributionWindowMs: 1_800_000,
      examples: 5000,
    };
    await modelTraining.train({ kind: 'ftrl', parent: null, seed: 1, training, actor: 'test' });
    await admin.promote('v000001', 'champion', { actor: 'test', reason: 'initial' });
  });
  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await producer.disconnect();
    await topics.cleanup();
    await rm(registryDir, { recursive: true, force: true });
  });

  const group = () => `test.scorer-group.${topics.names.click}`;
  /** One member scores in its worker thread, the other on its main thread: both paths in a group. */
  const startScorer = async (worker: boolean) => {
    const child = fork(join(import.meta.dirname, '..', 'fixtures', 'scorer-process.ts'), {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        LOG_LEVEL: 'warn',
        FW_REGISTRY_DIR: registryDir,
        FW_SCORER_GROUP: group(),
        FW_SCORER_WORKER: String(worker),
        FW_CONSUMER_SESSION_TIMEOUT_MS: '6000',
        CLICK_TOPIC: topics.names.click,
        PREDICTION_TOPIC: topics.names.predictions,
        DLQ_TOPIC: topics.names.dlq,
        UPDATES_TOPIC: topics.names.updates,
      },
    });
    children.push(child);
    await once(child, 'message');
    return child;
  };

  /** Partitions per member, from the group coordinator. */
  const assignment = async (): Promise<number[][]> => {
    const { groups } = await topics.admin.describeGroups([group()]);
    const members = groups[0]?.members ?? [];
    return members.map((m) => {
      const decoded = kafkajs.AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      return [...(decoded?.assignment[topics.names.click] ?? [])].sort((a, b) => a - b);
    });
  };
  /** The group's membership is state on the broker, not an event we receive: ask until it holds. */
  const untilAssigned = async (want: (parts: number[][]) => boolean, what: string) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const parts = await assignment();
      if (want(parts)) return parts;
      if (Date.now() > deadline)
        throw new Error(`group never reached: ${what}; last ${JSON.stringify(parts)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };

  it('splits the partitions, and the survivor takes over a killed member’s without losing clicks', async () => {
    const a = await startScorer(false);
    const b = await startScorer(true);
    const split = await untilAssigned(
      (p) => p.length === 2 && p.every((x) => x.length === PARTITIONS / 2),
      'two members with 3 partitions each',
    );
    assert.deepEqual(
      split.flat().sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5],
    );

    const predictions = await new TopicCollector<Prediction>(
      runtime.kafka,
      topics.names.predictions,
      (bytes) => runtime.codecs.prediction.decode(bytes),
    ).start();
    const clicks = new Set<string>();
    try {
      const traffic = sendTraffic(runtime, producer, {
        clickTopic: topics.names.click,
        purchaseTopic: topics.names.purchase,
        events: 6000,
        seed: Date.now() % 1_000_000,
        rate: 1500,
        onEvent: (e) => e.type === 'click' && clicks.add(e.click.eventId),
      });
      await predictions.atLeast(1500);
      const killed = once(a, 'exit');
      a.kill('SIGKILL');
      await killed;
      await traffic;
      await untilAssigned(
        (p) => p.length === 1 && p[0]?.length === PARTITIONS,
        'the survivor owning all partitions',
      );
      const unique = () => new Set(predictions.records.map((r) => r.value.eventId)).size;
      while (unique() < clicks.size) await predictions.atLeast(predictions.records.length + 1, 60_000);

      const scored = new Map<string, string>();
      let repeats = 0;
      for (const { value } of predictions.records) {
        const earlier = scored.get(value.eventId);
        if (earlier !== undefined) {
          repeats++;
          assert.equal(value.predictionId, earlier, 'a re-scored click gets the same prediction id');
        }
        scored.set(value.eventId, value.predictionId);
      }
      assert.equal(scored.size, clicks.size, 'every click scored');
      assert.deepEqual(
        [...scored.keys()].filter((id) => !clicks.has(id)),
        [],
      );
      // At least once: only the killed member's uncommitted batches can be scored twice.
      assert.ok(repeats < clicks.size / 4, `${repeats} clicks scored twice`);
      runtime.logger.info({ repeats, clicks: clicks.size }, 'failover done');
    } finally {
      await predictions.stop();
    }
    const stopped = once(b, 'exit');
    b.kill('SIGTERM');
    assert.equal((await stopped)[0], 0, 'the survivor stops cleanly');
  });
});
