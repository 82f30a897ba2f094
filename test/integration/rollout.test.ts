// The rollout controller on the real stack: outcomes in a feedback topic, the experiment in a
// registry folder, the routing it sets in a model-updates topic. A candidate that sells more is
// ramped and becomes champion (across a restart of the controller, each outcome counted once); one
// that sells less is rolled back at its first step; an equal one ends inconclusive at its budget.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { Random } from '../../services/common/random.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ExperimentAdmin, firstCount, rampFor, shareOf } from '../../services/registry/experiment-admin.js';
import { ExperimentStore, type ExperimentRecord } from '../../services/registry/experiments.js';
import { readModelState } from '../../services/registry/publisher.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { loadRolloutConfig } from '../../services/rollout/config.js';
import { MATURITY_BUCKET_MS } from '../../services/rollout/outcomes.js';
import { RolloutController } from '../../services/rollout/service.js';
import { encodeFeedback, simulatedFeedback } from '../../services/simulator/feedback.js';
import { heldExamples, registerTrained } from '../helpers/held-examples.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

const ROUND = 300;

describe('rollout controller', () => {
  const runtime = testRuntime('rollout');
  const spec = new FeatureSpec();
  let producer: Producer;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await producer.disconnect();
  });

  /** A registry with a champion and two more versions, topics of its own, a controller to start. */
  async function setUp() {
    const topics: TestTopics<'feedback' | 'dlq' | 'updates'> = await createTestTopics(
      runtime,
      ['feedback', 'dlq', 'updates'],
      3,
    );
    const dir = await mkdtemp(join(tmpdir(), 'flywheel-rollout-'));
    cleanups.push(
      () => topics.cleanup(),
      () => rm(dir, { recursive: true, force: true }),
    );
    const registry = new FileModelRegistry(dir);
    const examples = heldExamples(spec, 200);
    const [control, candidate] = [
      await registerTrained(registry, spec, examples, { by: 'test' }),
      await registerTrained(registry, spec, examples.slice(50), { by: 'test' }),
    ];
    const admin = new RegistryAdmin(
      registry,
      spec,
      { producer, codecs: runtime.codecs, topic: topics.names.updates },
      runtime.logger,
    );
    await admin.promote(control, 'champion', { actor: 'test', reason: 'set-up' });
    const experiments = new ExperimentAdmin(new ExperimentStore(dir), admin);
    const taken = new EventEmitter<{ taken: [] }>();
    let current: RolloutController | null = null;
    let takenByCurrent = 0;
    let batchesTaken = 0;
    // Looks are the test's to call (the timer's interval is longer than any test): a "crash"
    // can land between taking records in and storing what they changed.
    cleanups.push(async () => {
      await current?.stop();
    });
    const controller = () => {
      takenByCurrent = 0;
      current = new RolloutController({
        runtime,
        http: false,
        registryDir: dir,
        config: {
          ...loadRolloutConfig({}),
          FW_ROLLOUT_GROUP: `test.rollout.${topics.names.feedback}`,
          FW_ROLLOUT_TICK_MS: 600_000,
        },
        topics: {
          feedback: topics.names.feedback,
          deadLetters: topics.names.dlq,
          modelUpdates: topics.names.updates,
        },
        onTaken: (records) => {
          takenByCurrent += records;
          batchesTaken++;
          taken.emit('taken');
        },
      });
      return current;
    };
    /** Looks until `done` holds of the experiment, between batches of feedback taken in. */
    const until = async (id: string, done: (e: ExperimentRecord) => boolean): Promise<ExperimentRecord> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const batches = batchesTaken;
        await current?.lookNow();
        const e = await experiments.get(id);
        if (done(e)) return e;
        if (Date.now() > deadline) throw new Error(`experiment ${id} stuck: ${JSON.stringify(e.stats)}`);
        // A batch taken during the look is looked at again at once; otherwise the next one is awaited.
        if (batchesTaken === batches)
          await once(taken, 'taken', { signal: AbortSignal.timeout(deadline - Date.now()) }).catch(() => {
            throw new Error(`experiment ${id} stuck, no feedback arriving: ${JSON.stringify(e.stats)}`);
          });
      }
    };
    return {
      events: taken,
      taken: () => takenByCurrent,
      topics,
      dir,
      registry,
      experiments,
      controller,
      until,
      control: control,
      candidate: candidate,
    };
  }

  let sequence = 0;
  /** `count` outcomes: each user to the candidate with its current share; purchases at each arm's rate. */
  async function sendOutcomes(
    topic: string,
    e: ExperimentRecord,
    rates: { control: number; candidate: number } | 'equal',
    random: Random,
  ): Promise<void> {
    const share = shareOf(e);
    const examples = simulatedFeedback({ seed: ++sequence, count: ROUND, idPrefix: `r${sequence}-` }).map(
      (x, i) => {
        // Equal arms see the same outcomes in turn: no look at any prefix finds a difference.
        const arm =
          rates === 'equal'
            ? i % 2 === 1
              ? 'candidate'
              : 'control'
            : random.chance(share)
              ? 'candidate'
              : 'control';
        const label = (rates === 'equal' ? Math.floor(i / 2) % 10 === 0 : random.chance(rates[arm])) ? 1 : 0;
        const now = Date.now();
        return {
          ...x,
          modelVersion: arm === 'candidate' ? e.candidate : (e.control as string),
          arm: arm === 'candidate' ? 'challenger' : 'champion',
          propensity: arm === 'candidate' ? share : 1 - share,
          score: 0.1,
          label,
          labelSource: label ? ('outcome' as const) : ('timeout' as const),
          clickTime: now,
          labelTime: now,
        };
      },
    );
    // The joiner's clock: a timeout of a later click (of no arm's version) shows these clicks'
    // windows closed, as the joiner's later timeouts would.
    const [clock] = simulatedFeedback({ seed: sequence, count: 1, idPrefix: `clock${sequence}-` });
    const tick: LabeledExample = {
      ...(clock as LabeledExample),
      modelVersion: 'v999999',
      clickTime: Date.now() + 2 * MATURITY_BUCKET_MS,
      label: 0,
      labelSource: 'timeout',
    };
    await sendInChunks(producer, topic, await encodeFeedback(runtime, [...examples, tick]));
  }

  const ramp = rampFor({ primary: 'purchaseRate', steps: [0.1, 0.5], minOutcomes: 100, budget: 20_000 });

  it('ramps a candidate that sells more to champion, counting each outcome once across a restart', async () => {
    const s = await setUp();
    const started = await s.experiments.start(s.candidate, { actor: 'test', reason: 'better', config: ramp });
    let controller = s.controller();
    await controller.start();
    let e = await s.until(started.id, (x) => x.state === 'running');
    assert.equal(e.control, s.control);
    const random = new Random(1);
    let sent = 0;
    const shares = new Set<number>();
    let restarted = false;
    for (let round = 0; e.state === 'running' && round < 60; round++) {
      shares.add(shareOf(e));
      await sendOutcomes(s.topics.names.feedback, e, { control: 0.1, candidate: 0.25 }, random);
      sent += ROUND;
      if (round === 3) {
        // A crash after the round was taken in (its offsets committed by the group), before a
        // look stored it: the stored summaries and offsets must go on together.
        while (s.taken() < sent) await once(s.events, 'taken');
        await controller.stop();
        controller = s.controller();
        await controller.start();
        restarted = true;
      }
      e = await s.until(
        e.id,
        (x) => x.state !== 'running' || firstCount(x, 'control') + firstCount(x, 'candidate') >= sent,
      );
      if (e.state === 'running')
        assert.equal(
          firstCount(e, 'control') + firstCount(e, 'candidate'),
          sent,
          'every outcome counted once',
        );
      if (round === 1) {
        // What Prometheus scrapes: the arms' counts, rates, calibration and the interval.
        const text = await runtime.metrics.metrics();
        const id = `experiment="${e.id}"`;
        assert.match(
          text,
          new RegExp(
            `flywheel_experiment_outcomes\\{${id},arm="candidate"[^}]*\\} ${firstCount(e, 'candidate')}`,
          ),
        );
        assert.match(text, new RegExp(`flywheel_experiment_calibration_error\\{${id},arm="control"`));
        assert.match(
          text,
          new RegExp(`flywheel_experiment_difference\\{${id},metric="purchaseRate",bound="lower"`),
        );
        assert.match(
          text,
          new RegExp(`flywheel_experiment_share\\{${id},candidate="${e.candidate}"[^}]*\\} 0.1`),
        );
      }
    }
    await controller.stop();
    assert.ok(restarted, 'the controller was restarted mid-experiment');
    assert.equal(e.state, 'promoted', JSON.stringify(e.decisions));
    assert.deepEqual([...shares].sort(), [0.1, 0.5]);
    assert.deepEqual(
      e.decisions.map((d) => d.action),
      ['start', 'advance', 'promote'],
    );
    const promote = e.decisions.at(-1)!;
    assert.ok((promote.intervals['purchaseRate']?.lower ?? 0) > 0, 'promoted on a significant rise');
    assert.ok(promote.outcomes.control + promote.outcomes.candidate <= sent);
    const routing = await s.registry.routing();
    assert.equal(routing.champion, s.candidate);
    assert.equal(routing.challenger, null);
    const state = await readModelState(runtime.kafka, runtime.codecs, s.topics.names.updates);
    assert.equal(state.routing?.champion, s.candidate, 'the scorers are told');
    const moves = (await s.registry.history()).filter((m) => m.actor === 'rollout');
    assert.deepEqual(
      moves.map((m) => `${m.alias}:${m.to}:${m.challengerWeight}`),
      [
        `challenger:${s.candidate}:0.1`,
        `challenger:${s.candidate}:0.5`,
        `champion:${s.candidate}:0.5`,
        'challenger:null:0',
      ],
    );
    assert.match(moves.at(-2)!.reason, /promote: purchaseRate is significantly better/);
  });

  it('rolls back a candidate that sells less at its first step, and ends an equal one inconclusive', async () => {
    const worse = await setUp();
    const tried = await worse.experiments.start(worse.candidate, {
      actor: 'test',
      reason: 'worse',
      config: ramp,
    });
    const controller = worse.controller();
    await controller.start();
    let e = await worse.until(tried.id, (x) => x.state === 'running');
    const random = new Random(2);
    for (let round = 0; e.state === 'running' && round < 60; round++) {
      await sendOutcomes(worse.topics.names.feedback, e, { control: 0.2, candidate: 0.02 }, random);
      const total = firstCount(e, 'control') + firstCount(e, 'candidate') + ROUND;
      e = await worse.until(
        e.id,
        (x) => x.state !== 'running' || firstCount(x, 'control') + firstCount(x, 'candidate') >= total,
      );
    }
    await controller.stop();
    assert.equal(e.state, 'rolled-back', JSON.stringify(e.decisions));
    assert.ok(!e.decisions.some((d) => d.action === 'advance'), 'never above its first share');
    assert.equal((await worse.registry.routing()).challenger, null);
    assert.equal((await worse.registry.routing()).champion, worse.control);

    const equal = await setUp();
    const config = rampFor({ primary: 'purchaseRate', steps: [0.5], minOutcomes: 100, budget: 600 });
    const same = await equal.experiments.start(equal.candidate, { actor: 'test', reason: 'equal', config });
    const second = equal.controller();
    await second.start();
    e = await equal.until(same.id, (x) => x.state === 'running');
    for (let round = 0; e.state === 'running' && round < 60; round++) {
      await sendOutcomes(equal.topics.names.feedback, e, 'equal', random);
      const total = firstCount(e, 'control') + firstCount(e, 'candidate') + ROUND;
      e = await equal.until(
        e.id,
        (x) => x.state !== 'running' || firstCount(x, 'control') + firstCount(x, 'candidate') >= total,
      );
    }
    await second.stop();
    assert.equal(e.state, 'inconclusive', JSON.stringify(e.decisions));
    assert.ok(firstCount(e, 'candidate') >= 600);
    assert.equal((await equal.registry.routing()).challenger, null);
  });
});
