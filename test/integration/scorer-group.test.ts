// Two scorer processes in one consumer group split the click partitions; when one is killed
// (SIGKILL, no goodbye), the other takes its partitions over and no click goes unscored, and a
// scorer started after it shares the work again. Under a champion/challenger split with a shadow,
// every user keeps one arm (the user hash's) whichever process scored them, before and after.
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
import { userBucket } from '../../services/scorer/routing.js';
import { sendTraffic } from '../helpers/traffic.js';
import { TopicCollector } from '../helpers/collect.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { simulatedTrainingExamples } from '../../services/simulator/dataset.js';

const PARTITIONS = 6;
const SHARE = 0.3;

/**
 * Each user's served predictions are all of one arm, the one their hash gives, with its
 * propensity; every click also has a shadow prediction, marked, never the served one.
 */
function assertArms(predictions: Prediction[]): void {
  const armOf = new Map<string, string>();
  const shadows = new Set<string>();
  const servedClicks = new Set<string>();
  for (const p of predictions) {
    if (p.arm === 'shadow') {
      assert.equal(p.modelVersion, 'v000002');
      assert.equal(p.propensity, 1);
      shadows.add(p.eventId);
      continue;
    }
    servedClicks.add(p.eventId);
    const expected = userBucket(p.userId) < SHARE ? 'challenger' : 'champion';
    assert.equal(p.arm, expected, `${p.userId} served by its hash's arm`);
    assert.equal(p.modelVersion, expected === 'challenger' ? 'v000002' : 'v000001');
    assert.equal(p.propensity, expected === 'challenger' ? SHARE : 1 - SHARE);
    const before = armOf.get(p.userId);
    assert.ok(before === undefined || before === p.arm, `${p.userId} kept its arm`);
    armOf.set(p.userId, p.arm);
  }
  assert.deepEqual(
    [...servedClicks].filter((id) => !shadows.has(id)),
    [],
    'every click shadowed',
  );
  const challengers = [...armOf.values()].filter((a) => a === 'challenger').length;
  assert.ok(
    challengers > 0.2 * armOf.size && challengers < 0.4 * armOf.size,
    `${challengers} of ${armOf.size} users`,
  );
}

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
    await modelTraining.train({ kind: 'ftrl', parent: null, seed: 2, training, actor: 'test' });
    await admin.promote('v000001', 'champion', { actor: 'test', reason: 'initial' });
    await admin.promote('v000002', 'challenger', { actor: 'test', reason: 'split', challengerWeight: SHARE });
    await admin.promote('v000002', 'shadow', { actor: 'test', reason: 'shadowed too' });
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
        if (value.arm === 'shadow') continue;
        const earlier = scored.get(value.eventId);
        if (earlier !== undefined) {
          repeats++;
          assert.equal(value.predictionId, earlier, 'a re-scored click gets the same prediction id');
        }
        scored.set(value.eventId, value.predictionId);
      }
      assert.equal(scored.size, clicks.size, 'every click scored');
      // A scorer started after the failover: the group splits again; more users, and the same.
      await startScorer(false);
      await untilAssigned((p) => p.length === 2, 'the survivor and the new member');
      await sendTraffic(runtime, producer, {
        clickTopic: topics.names.click,
        purchaseTopic: topics.names.purchase,
        events: 2000,
        seed: (Date.now() + 1) % 1_000_000,
        rate: 1500,
        onEvent: (e) => e.type === 'click' && clicks.add(e.click.eventId),
      });
      while (unique() < clicks.size) await predictions.atLeast(predictions.records.length + 1, 60_000);
      assertArms(predictions.records.map((r) => r.value));
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
