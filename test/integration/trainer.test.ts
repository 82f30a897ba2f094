// The trainer on the real stack: killed with SIGKILL mid-stream and restarted, it learns every
// labeled example exactly once (the checkpoint holds the state and the offsets it reflects).
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { Random } from '../../services/common/random.js';
import { FeatureSpec } from '../../services/model/features.js';
import { simulateLabeledExamples } from '../../services/simulator/dataset.js';
import { historySource } from '../../services/common/read-ranges.js';
import { CheckpointStore } from '../../services/trainer/checkpoint.js';
import { DEFAULT_LABEL_POLICY } from '../../services/trainer/label-policy.js';
import { ReadOrder } from '../../services/trainer/read-order.js';
import { replayOnline } from '../../services/trainer/replay.js';
import { loadTrainerConfig, type TrainerConfig } from '../../services/trainer/config.js';
import { Trainer } from '../../services/trainer/service.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { encodeFeedback, simulatedFeedback } from '../../services/simulator/feedback.js';

const TOTAL = 6000;
const HOLDOUT = 200;

interface CheckpointMessage {
  checkpoint?: { seq: number; learned: number; holdout: number; offsets: Record<string, string> };
  ready?: boolean;
}

describe('trainer', () => {
  const runtime = testRuntime('trainer');
  let topics: TestTopics<'feedback' | 'human' | 'dlq'>;
  let producer: Producer;
  let dir: string;
  let examples: LabeledExample[];
  let encoded: { key: string; value: Buffer }[];
  /** Small sends: many record batches, so a kill lands between checkpoints. */
  const send = async (from: number, to: number, topic = topics.names.feedback) => {
    for (let i = from; i < to; i += 50)
      await sendInChunks(producer, topic, encoded.slice(i, Math.min(i + 50, to)));
  };

  before(async () => {
    topics = await createTestTopics(runtime, ['feedback', 'human', 'dlq'], 3);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    dir = await mkdtemp(join(tmpdir(), 'flywheel-trainer-'));
    examples = simulatedFeedback({ seed: 3, count: TOTAL });
    encoded = await encodeFeedback(runtime, examples);
  });
  const cleanups: (() => Promise<void>)[] = [];
  /** A trainer in this process on a test's own topics and checkpoint folder. */
  const inProcessTrainer = (
    own: TestTopics<'feedback' | 'human' | 'dlq' | 'updates'>,
    store: string,
    config: Partial<TrainerConfig>,
  ) =>
    new Trainer({
      runtime,
      http: false,
      config: {
        ...loadTrainerConfig({}),
        FW_TRAINER_GROUP: `test.trainer.${own.names.feedback}`,
        FW_TRAINER_DIR: store,
        FW_TRAINER_WARM_START: false,
        ...config,
      },
      topics: {
        feedback: own.names.feedback,
        humanLabels: own.names.human,
        deadLetters: own.names.dlq,
        modelUpdates: own.names.updates,
      },
    });
  after(async () => {
    await producer.disconnect();
    for (const cleanup of cleanups) await cleanup();
    await topics.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('learns every example exactly once across three SIGKILLs', async () => {
    const group = `test.trainer.${topics.names.feedback}`;
    const start = () =>
      trainerProcess(topics, {
        FW_TRAINER_GROUP: group,
        FW_TRAINER_DIR: dir,
        FW_TRAINER_CHECKPOINT_EVERY: '250',
        FW_TRAINER_CHECKPOINT_MS: '500',
      });
    const random = new Random(12);
    const learnedSeen: number[] = [];
    const consumed = (c: { offsets: Record<string, string> }) =>
      Object.values(c.offsets).reduce((sum, o) => sum + Number(o), 0);
    // Three rounds: a slice of the stream arrives, the trainer checkpoints once or twice, and is
    // killed while the rest of the slice is still coming in.
    const slice = TOTAL / 4;
    for (let round = 0; round < 3; round++) {
      const run = start();
      await once(run.child, 'message');
      await send(round * slice, (round + 1) * slice);
      await run.checkpointsAtLeast(1 + Math.floor(random.next() * 2));
      run.child.kill('SIGKILL');
      await run.exited;
      learnedSeen.push(...run.checkpoints.map((c) => c.learned));
    }
    const last = start();
    await once(last.child, 'message');
    await send(3 * slice, TOTAL);
    while (!last.checkpoints.some((c) => consumed(c) === TOTAL))
      await last.checkpointsAtLeast(last.checkpoints.length + 1);
    last.child.kill('SIGTERM');
    await last.exited;
    learnedSeen.push(...last.checkpoints.map((c) => c.learned));

    assert.ok(learnedSeen.length >= 4, 'checkpoints were written in every run');
    assert.deepEqual(
      learnedSeen,
      [...learnedSeen].sort((a, b) => a - b),
      'learning never went backwards',
    );
    const final = await new CheckpointStore(dir).load();
    assert.ok(final);
    assert.equal(consumed(final), TOTAL, 'every record consumed');
    assert.equal(
      final.state.learned + final.state.holdout.length,
      TOTAL,
      'every example learned once or held out',
    );
    assert.equal(final.state.holdout.length, HOLDOUT);
    const ids = new Set(final.state.holdout.map((e) => e.exampleId));
    assert.equal(ids.size, HOLDOUT, 'no example twice in the holdout');
    // The read order kept across the kills replays to the very same weights.
    assert.equal(final.orderComplete, true);
    const order = new ReadOrder(final.order);
    const replayed = await replayOnline(
      {
        source: 'kafka',
        ranges: order.ranges(),
        examples: final.state.learned,
        labelSources: {},
        kinds: { [topics.names.feedback]: 'labeledExample', [topics.names.human]: 'humanLabel' },
        online: {
          runs: order.state().runs,
          holdoutSize: HOLDOUT,
          policy: {
            ...DEFAULT_LABEL_POLICY,
            rememberOutcomes: loadTrainerConfig({}).FW_TRAINER_REMEMBER_OUTCOMES,
          },
        },
      },
      final.params,
      new FeatureSpec(),
      historySource(runtime),
    );
    const state = replayed.learner.state();
    assert.equal(state.learned, final.state.learned);
    assert.deepEqual(state.z, final.state.z, 'same weights as the trainer that was killed three times');
    assert.deepEqual(state.n, final.state.n);
    assert.deepEqual(
      state.holdout.map((e) => e.exampleId),
      final.state.holdout.map((e) => e.exampleId),
    );
  });

  it('after a kill, partitions the checkpoint does not name are read from their start: each example learned once', async () => {
    const own = await createTestTopics(runtime, ['feedback', 'human', 'dlq'], 3);
    const store = await mkdtemp(join(tmpdir(), 'flywheel-trainer-sparse-'));
    const group = `test.trainer.sparse.${own.names.feedback}`;
    const admin = runtime.kafka.admin();
    await admin.connect();
    let sent = 0;
    const sendTo = async (partition: number, count: number) => {
      const messages = encoded.slice(sent, sent + count).map((m) => ({ ...m, partition }));
      sent += messages.length;
      await producer.send({ topic: own.names.feedback, acks: -1, messages });
    };
    const committed = async (partition: number) => {
      const [topic] = await admin.fetchOffsets({ groupId: group, topics: [own.names.feedback] });
      return Number(topic?.partitions.find((p) => p.partition === partition)?.offset ?? -1);
    };
    // The group commits after batches, ahead of any checkpoint: send small pieces until it has.
    const readAndCommitted = async (partition: number) => {
      while ((await committed(partition)) <= 0) {
        await sendTo(partition, 10);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    };
    const consumed = (c: { offsets: Record<string, string> }) =>
      Object.values(c.offsets).reduce((sum, o) => sum + Number(o), 0);
    const env = (every: string, ms: string) => ({
      FW_TRAINER_GROUP: group,
      FW_TRAINER_DIR: store,
      FW_TRAINER_CHECKPOINT_EVERY: every,
      FW_TRAINER_CHECKPOINT_MS: ms,
    });
    const runs: ReturnType<typeof trainerProcess>[] = [];
    const started = (run: ReturnType<typeof trainerProcess>) => (runs.push(run), run);
    try {
      // Killed before its first checkpoint, with offsets committed on two partitions.
      const first = started(trainerProcess(own, env('1000000', '3600000')));
      await once(first.child, 'message');
      await readAndCommitted(0);
      await readAndCommitted(1);
      assert.equal(first.checkpoints.length, 0);
      first.child.kill('SIGKILL');
      await first.exited;

      // Checkpoints once over partitions 0 and 1, then reads partition 2 for the first time and
      // is killed before the next checkpoint (300 learned examples away).
      const second = started(trainerProcess(own, env('300', '3600000')));
      await once(second.child, 'message');
      // Everything sent so far is taken in again (the first run left no checkpoint): 300 learned
      // once the holdout is full.
      for (let i = 0; sent < HOLDOUT + 300; i++) await sendTo(i % 2, 20);
      await second.checkpointsAtLeast(1, 30_000);
      assert.ok(!Object.keys(second.checkpoints[0]?.offsets ?? {}).some((k) => k.endsWith(':2')));
      await readAndCommitted(2);
      assert.equal(second.checkpoints.length, 1, 'partition 2 was read after the last checkpoint');
      second.child.kill('SIGKILL');
      await second.exited;

      const last = started(trainerProcess(own, env('250', '500')));
      await once(last.child, 'message');
      for (let p = 0; p < 3; p++) await sendTo(p, 60);
      while (!last.checkpoints.some((c) => consumed(c) === sent))
        await last.checkpointsAtLeast(last.checkpoints.length + 1);
      last.child.kill('SIGTERM');
      await last.exited;
      const final = await new CheckpointStore(store).load();
      assert.ok(final);
      assert.equal(consumed(final), sent);
      assert.equal(
        final.state.learned + final.state.holdout.length,
        sent,
        'every example learned once or held out',
      );
      assert.equal(new Set(final.state.holdout.map((e) => e.exampleId)).size, HOLDOUT);
    } finally {
      for (const run of runs) if (run.child.exitCode === null) run.child.kill('SIGKILL');
      await admin.disconnect();
      // Topics go at the end: a KafkaJS producer stalls once a topic it wrote to is deleted.
      cleanups.push(() => own.cleanup());
      await rm(store, { recursive: true, force: true });
    }
  });

  it('trains human labels by the replacing policy: the reviewed label replaces the outcome, with its weight, untrusted labels out of the reference set', async () => {
    const own = await createTestTopics(runtime, ['feedback', 'human', 'dlq', 'updates'], 3);
    const store = await mkdtemp(join(tmpdir(), 'flywheel-trainer-human-'));
    try {
      const spec = new FeatureSpec();
      const base = simulateLabeledExamples({ spec, seed: 5, clicks: 30, startTime: Date.now() - 3600_000 });
      const outcome = (i: number): LabeledExample => ({
        exampleId: `outcome:h${i}`,
        predictionId: `h${i}`,
        eventId: `e${i}`,
        userId: `u${i}`,
        itemId: `i${i}`,
        category: 'books',
        segment: 'DE/mobile',
        label: i % 2,
        labelSource: i % 2 ? 'outcome' : 'timeout',
        weight: 1,
        features: base[i]!.features,
        featureSpecHash: spec.hash,
        modelVersion: 'v000001',
        arm: 'champion',
        score: 0.5,
        clickTime: base[i]!.clickTime,
        purchaseEventId: null,
        purchaseTime: null,
        labelTime: base[i]!.clickTime + 1000,
        delayMs: null,
        revision: 0,
        propensity: 1,
        split: null,
      });
      // Reviewers disagree with the outcome on the first ten predictions; their labels come first.
      for (let i = 0; i < 10; i++) {
        await producer.send({
          topic: own.names.human,
          messages: [
            {
              key: `u${i}`,
              value: await runtime.codecs.humanLabel.encode({
                labelId: `h${i}-ann`,
                taskId: `h${i}`,
                predictionId: `h${i}`,
                eventId: `e${i}`,
                userId: `u${i}`,
                itemId: `i${i}`,
                label: 1 - (i % 2),
                labelerId: 'ann',
                labelTime: Date.now() - 1000,
                agreement: null,
                note: null,
                flags: [],
              }),
            },
          ],
        });
      }
      const trainer = inProcessTrainer(own, store, {
        FW_TRAINER_HOLDOUT: 1000, // everything stays in the holdout, where it can be read back
        FW_TRAINER_HUMAN_WEIGHT: 3,
        FW_TRAINER_HUMAN_POLICY: 'replace',
      });
      await trainer.start();
      // Outcome examples only after the human labels were read: they wait for them.
      while (trainer.waitingHumanLabels < 10) await once(trainer, 'batch');
      await sendInChunks(
        producer,
        own.names.feedback,
        await Promise.all(
          Array.from({ length: 30 }, async (_, i) => ({
            key: `u${i}`,
            value: await runtime.codecs.labeledExample.encode(outcome(i)),
          })),
        ),
      );
      // 20 outcomes held out, and the 10 replaced ones held as judge-only examples.
      while (trainer.heldOut < 30) await once(trainer, 'batch');
      await trainer.stop();
      const checkpoint = (await new CheckpointStore(store).load())!;
      // Outcomes are held out for the gate; the human examples are learned at once, each with
      // the human weight (the learner's progressive record keeps the weight of what it learned).
      assert.equal(checkpoint.state.learned, 10);
      assert.equal(checkpoint.labelSources?.human, 10);
      assert.deepEqual(
        checkpoint.state.progressive.map((p) => p.weight),
        Array.from({ length: 10 }, () => 3),
      );
      const held = new Map(checkpoint.state.holdout.map((e) => [e.exampleId.split(':')[1], e]));
      // The replaced outcomes still judge the candidates: held out, never learned.
      assert.deepEqual(
        checkpoint.state.holdout
          .filter((e) => e.exampleId.startsWith('judge:'))
          .map((e) => [e.exampleId, e.label])
          .sort((a, b) => String(a[0]).localeCompare(String(b[0]), 'en', { numeric: true })),
        Array.from({ length: 10 }, (_, i) => [`judge:outcome:h${i}`, i % 2]),
      );
      for (let i = 0; i < 30; i++)
        assert.deepEqual(
          held.has(`h${i}`) ? [held.get(`h${i}`)!.label, held.get(`h${i}`)!.weight] : null,
          i < 10 ? null : [i % 2, 1],
          `h${i}: ${i < 10 ? 'replaced by the human label' : 'the outcome, held out'}`,
        );
      // ann contradicted every outcome: her labels train (the policy says so) but are no
      // trusted reference for the gate.
      assert.deepEqual(checkpoint.reference, []);
      assert.equal(trainer.labelers().labelers[0]?.trust, 0);
    } finally {
      // Topics go at the end: a KafkaJS producer stalls once a topic it wrote to is deleted.
      cleanups.push(() => own.cleanup());
      await rm(store, { recursive: true, force: true });
    }
  });

  it('registers candidates through the gate: the first beats the baseline and becomes champion, an idle repeat is rejected', async () => {
    const own = await createTestTopics(runtime, ['feedback', 'human', 'dlq', 'updates'], 3);
    const store = await mkdtemp(join(tmpdir(), 'flywheel-trainer-gate-'));
    const registryDir = await mkdtemp(join(tmpdir(), 'flywheel-trainer-registry-'));
    const previousRegistry = process.env.FW_REGISTRY_DIR;
    process.env.FW_REGISTRY_DIR = registryDir;
    try {
      await send(0, TOTAL, own.names.feedback);
      const trainer = inProcessTrainer(own, store, {
        FW_TRAINER_HOLDOUT: 1500,
        FW_TRAINER_CANDIDATE_EVERY: 0,
      });
      await trainer.start();
      try {
        while (trainer.learned + trainer.heldOut < TOTAL) await once(trainer, 'batch');
        const first = await trainer.proposeCandidate();
        assert.ok(first);
        assert.deepEqual(first.decision.reasons, []);
        assert.equal(first.alias, 'champion', 'no champion yet: the first accepted candidate becomes it');
        const second = await trainer.proposeCandidate();
        assert.ok(second);
        assert.equal(second.alias, null);
        assert.match(
          second.decision.reasons.join(' '),
          /improves the champion's holdout log loss by -?0\.00%/,
        );
      } finally {
        await trainer.stop();
      }
      const registry = new FileModelRegistry(registryDir);
      // The baseline served first (its versions); v1 and v2 are the learned candidates.
      const [v1, v2] = (await registry.list()).filter((v) => v.kind !== 'baseline');
      assert.equal(v1?.status, 'registered');
      assert.equal(v1?.training.source, 'kafka');
      assert.equal(v1?.training.examples, TOTAL - 1500);
      assert.ok(v1.metrics!.logLoss < v1.metrics!.baselineLogLoss!, 'beats the baseline on the holdout');
      assert.equal(v2?.status, 'rejected');
      assert.equal(v2?.parent, v1?.version);
      assert.match(v2?.statusReason ?? '', /improves the champion/);
      assert.equal((await registry.routing()).champion, v1?.version);
    } finally {
      if (previousRegistry === undefined) delete process.env.FW_REGISTRY_DIR;
      else process.env.FW_REGISTRY_DIR = previousRegistry;
      // Topics go at the end: a KafkaJS producer stalls once a topic it wrote to is deleted.
      cleanups.push(() => own.cleanup());
      await rm(store, { recursive: true, force: true });
      await rm(registryDir, { recursive: true, force: true });
    }
  });
});

/** A trainer process on `topics`; its checkpoints as it reports them over IPC. */
function trainerProcess(topics: TestTopics<'feedback' | 'human' | 'dlq'>, env: Record<string, string>) {
  const child = fork(join(import.meta.dirname, '..', 'fixtures', 'trainer-process.ts'), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: {
      ...process.env,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      FW_TRAINER_HOLDOUT: String(HOLDOUT),
      FW_TRAINER_WARM_START: 'false',
      FW_CONSUMER_SESSION_TIMEOUT_MS: '6000',
      FEEDBACK_TOPIC: topics.names.feedback,
      HUMAN_TOPIC: topics.names.human,
      DLQ_TOPIC: topics.names.dlq,
      ...env,
    },
  });
  const exited = once(child, 'exit');
  const checkpoints: NonNullable<CheckpointMessage['checkpoint']>[] = [];
  const waiters: { until: (n: number) => boolean; resolve: () => void }[] = [];
  child.on('message', (message: CheckpointMessage) => {
    if (!message.checkpoint) return;
    checkpoints.push(message.checkpoint);
    for (const w of waiters.splice(0))
      if (!w.until(checkpoints.length)) waiters.push(w);
      else w.resolve();
  });
  /** Resolves at the n-th checkpoint; rejects if none comes for `quietMs` (a stuck trainer). */
  const checkpointsAtLeast = (n: number, quietMs = 90_000) =>
    checkpoints.length >= n
      ? Promise.resolve()
      : new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no checkpoint ${n} within ${quietMs} ms (${checkpoints.length} so far)`)),
            quietMs,
          );
          waiters.push({
            until: (count) => count >= n,
            resolve: () => {
              clearTimeout(timer);
              resolve();
            },
          });
        });
  return { child, exited, checkpoints, checkpointsAtLeast };
}
