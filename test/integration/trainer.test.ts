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
import { CheckpointStore } from '../../services/trainer/checkpoint.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

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
  let encoded: { key: string; value: Buffer }[];
  /** Small sends: many record batches, so a kill lands between checkpoints. */
  const send = async (from: number, to: number) => {
    for (let i = from; i < to; i += 50)
      await sendInChunks(producer, topics.names.feedback, encoded.slice(i, Math.min(i + 50, to)));
  };

  before(async () => {
    topics = await createTestTopics(runtime, ['feedback', 'human', 'dlq'], 3);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    dir = await mkdtemp(join(tmpdir(), 'flywheel-trainer-'));
    const spec = new FeatureSpec();
    const now = Date.now() - 3600_000;
    const examples: LabeledExample[] = simulateLabeledExamples({
      spec,
      seed: 3,
      clicks: TOTAL,
      startTime: now,
    })
      .slice(0, TOTAL)
      .map((e, i) => ({
        exampleId: `outcome:p${i}`,
        predictionId: `p${i}`,
        eventId: e.eventId,
        userId: e.userId,
        itemId: e.itemId,
        category: e.category,
        segment: e.segment,
        label: e.label,
        labelSource: e.label ? 'outcome' : 'timeout',
        weight: 1,
        features: e.features,
        featureSpecHash: spec.hash,
        modelVersion: 'v000001',
        arm: 'champion',
        score: 0.2,
        clickTime: e.clickTime,
        purchaseEventId: null,
        purchaseTime: null,
        labelTime: e.clickTime + 1000,
        delayMs: null,
      }));
    encoded = await Promise.all(
      examples.map(async (e) => ({ key: e.userId, value: await runtime.codecs.labeledExample.encode(e) })),
    );
  });
  after(async () => {
    await producer.disconnect();
    await topics.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('learns every example exactly once across three SIGKILLs', async () => {
    const group = `test.trainer.${topics.names.feedback}`;
    const start = () => {
      const child = fork(join(import.meta.dirname, '..', 'fixtures', 'trainer-process.ts'), {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: {
          ...process.env,
          LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
          FW_TRAINER_GROUP: group,
          FW_TRAINER_DIR: dir,
          FW_TRAINER_HOLDOUT: String(HOLDOUT),
          FW_TRAINER_CHECKPOINT_EVERY: '250',
          FW_TRAINER_CHECKPOINT_MS: '500',
          FW_CONSUMER_SESSION_TIMEOUT_MS: '6000',
          FEEDBACK_TOPIC: topics.names.feedback,
          HUMAN_TOPIC: topics.names.human,
          DLQ_TOPIC: topics.names.dlq,
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
      const checkpointsAtLeast = (n: number) =>
        checkpoints.length >= n
          ? Promise.resolve()
          : new Promise<void>((resolve) => waiters.push({ until: (count) => count >= n, resolve }));
      return { child, exited, checkpoints, checkpointsAtLeast };
    };
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
  });
});
