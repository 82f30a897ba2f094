// Experiments decided on the whole live loop: the simulated shop (paced, on the wall clock) sends
// clicks whose purchase odds depend on the version serving each user (its ground truth, by the
// split the scorer applies), the scorer serves and records predictions, the joiner labels them,
// and the rollout controller ramps, promotes or rolls back from the labels, moving the routing
// the scorer and the shop then follow. A candidate that truly sells more becomes champion; one
// that sells less is rolled back without its share ever passing the first step; an equal one ends
// inconclusive at its budget.
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { liftFor } from '../../services/cli/treatment.js';
import type { LabeledExample, Routing } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ExperimentAdmin, firstCount, rampFor } from '../../services/registry/experiment-admin.js';
import { ENDED_STATES, ExperimentStore, type ExperimentRecord } from '../../services/registry/experiments.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { loadRolloutConfig } from '../../services/rollout/config.js';
import { estimateRate } from '../../services/rollout/estimate.js';
import { RolloutController } from '../../services/rollout/service.js';
import { runSimulator } from '../../services/simulator/runner.js';
import { TopicCollector } from '../helpers/collect.js';
import { LabelPipeline } from '../helpers/pipeline.js';
import { heldExamples, registerTrained } from '../helpers/held-examples.js';
import { testRuntime } from '../helpers/kafka.js';

const STEPS = [0.1, 0.5];
const WINDOW_MS = 15_000;

/** The examples whose window has closed: the newest timeout label's window end is past them. */
function settled(examples: LabeledExample[]): LabeledExample[] {
  const timeouts = examples.filter((e) => e.labelSource === 'timeout').map((e) => e.labelTime);
  const closed = Math.max(0, ...timeouts) - WINDOW_MS;
  return examples.filter((e) => e.clickTime <= closed);
}

describe('experiments on the live loop', () => {
  const runtime = testRuntime('rollout-live');
  const spec = new FeatureSpec();
  let producer: Producer;
  let previousRegistry: string | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    await initBackend(runtime.logger);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    previousRegistry = process.env.FW_REGISTRY_DIR;
  });
  after(async () => {
    if (previousRegistry === undefined) delete process.env.FW_REGISTRY_DIR;
    else process.env.FW_REGISTRY_DIR = previousRegistry;
    for (const cleanup of cleanups.reverse()) await cleanup();
    await producer.disconnect();
  });

  /** One candidate's experiment (see group). */
  async function experiment(
    lift: number,
    ramp: Parameters<typeof rampFor>[0],
    seed: number,
    /** Candidate outcomes at 100% to gather after a promotion (its live rate). */
    afterPromotion = 0,
  ) {
    const run = await group([lift], ramp, seed, { afterPromotion });
    return { ...run, ended: run.ended[0] as ExperimentRecord, candidate: run.candidates[0] as string };
  }

  /**
   * Runs the shop through scorer, joiner and controller until the experiments of candidates
   * whose users buy with `lifts` more log-odds end, started as one group; returns them, the
   * predictions and the moves.
   */
  async function group(
    lifts: readonly number[],
    ramp: Parameters<typeof rampFor>[0],
    seed: number,
    options: {
      afterPromotion?: number;
      baselineShare?: number;
      segments?: string[];
      mode?: 'shadow';
      /** The champion trained on flipped labels: worse than any honest model. */
      flippedControl?: boolean;
    } = {},
  ) {
    const afterPromotion = options.afterPromotion ?? 0;
    const pipeline = await LabelPipeline.create(runtime, { windowMs: WINDOW_MS, idleMs: 5_000 });
    cleanups.push(() => pipeline.close());
    const n = pipeline.topics.names;
    const dir = pipeline.registryDir;
    const registry = new FileModelRegistry(dir);
    const examples = heldExamples(spec, 3000, seed);
    const control = await registerTrained(registry, spec, examples, {
      by: 'test',
      flipped: options.flippedControl ?? false,
    });
    const candidates: string[] = [];
    for (const [i] of lifts.entries())
      candidates.push(await registerTrained(registry, spec, examples.slice(1000 + i), { by: 'test' }));
    const [candidate] = candidates as [string];
    const admin = new RegistryAdmin(
      registry,
      spec,
      { producer, codecs: runtime.codecs, topic: n.updates },
      runtime.logger,
    );
    await admin.promote(control, 'champion', { actor: 'test', reason: 'set-up' });
    const experiments = new ExperimentAdmin(new ExperimentStore(dir), admin);
    const started = await experiments.startGroup(candidates, {
      actor: 'test',
      reason: `lifts ${lifts.join(', ')}`,
      config: rampFor(ramp),
      ...(options.baselineShare ? { baselineShare: options.baselineShare } : {}),
      ...(options.segments ? { segments: options.segments } : {}),
      ...(options.mode ? { mode: options.mode } : {}),
    });
    const treated = new Map(candidates.map((c, i) => [c, lifts[i] as number]));

    const looked = new EventEmitter<{ look: [] }>();
    const controller = new RolloutController({
      runtime,
      http: false,
      registryDir: dir,
      config: {
        ...loadRolloutConfig({}),
        FW_ROLLOUT_GROUP: `test.live.${n.feedback}`,
        FW_ROLLOUT_TICK_MS: 500,
      },
      topics: { feedback: n.feedback, deadLetters: n.dlq, modelUpdates: n.updates },
      onTick: () => looked.emit('look'),
    });
    const predictions = await new TopicCollector(runtime.kafka, n.predictions, (b) =>
      runtime.codecs.prediction.decode(b),
    ).start();
    cleanups.push(() => predictions.stop());
    const feedback = pipeline.labels;
    await pipeline.startInProcess();
    // The shop's ground truth follows what the scorer serves (the candidate is routed only once
    // the controller starts the experiment, after this).
    let routing: Routing | null = null;
    pipeline.scorer?.manager.on('swapped', (set) => (routing = set.routing));
    await controller.start();
    const shop = new AbortController();
    const traffic = runSimulator({
      producer,
      codecs: runtime.codecs,
      logger: runtime.logger,
      simulation: {
        seed,
        startTime: Date.now(),
        trafficRate: 500,
        purchaseDelayScale: 0.05,
        treatment: (userId, _time, segment) => liftFor(userId, routing, treated, segment),
      },
      rate: 500,
      maxEvents: null,
      durationMs: null,
      malformedRate: 0,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      showProgress: false,
      signal: shop.signal,
      clickTopic: n.clicks,
      purchaseTopic: n.purchases,
    });
    let ended: ExperimentRecord[];
    try {
      const deadline = Date.now() + 240_000;
      for (;;) {
        await once(looked, 'look');
        const all = await Promise.all(started.map((e) => experiments.get(e.id)));
        if (all.every((e) => ENDED_STATES.includes(e.state))) {
          ended = all;
          break;
        }
        if (Date.now() > deadline)
          throw new Error(`experiments still running: ${JSON.stringify(all.map((e) => e.decisions))}`);
      }
      const atFull = (records: { value: LabeledExample }[]) =>
        settled(records.map((r) => r.value)).filter(
          (x) => x.modelVersion === candidate && x.propensity === 1,
        );
      if (ended[0]?.state === 'promoted' && afterPromotion > 0)
        await feedback.until(
          (records) => atFull(records).length >= afterPromotion,
          `${afterPromotion} settled outcomes at 100%`,
          180_000,
        );
    } finally {
      shop.abort();
      await traffic.catch(() => undefined);
      await controller.stop();
    }
    const moves = (await registry.history()).filter((m) => m.actor === 'rollout');
    const served = predictions.records.filter((r) => r.value.arm !== 'shadow');
    const share = served.filter((r) => r.value.modelVersion === candidate).length / served.length;
    const labels = feedback.records.map((r) => r.value);
    const records = predictions.records.map((r) => r.value);
    const queued = (await experiments.list()).filter((e) => !started.some((s) => s.id === e.id));
    return {
      queued,
      ended,
      moves,
      share,
      served: served.length,
      control,
      candidates,
      registry,
      labels,
      records,
    };
  }

  it('promotes a candidate that truly sells more; its rate estimated off-policy from the canary holds its live rate', async () => {
    const run = await experiment(
      0.8,
      { primary: 'purchaseRate', steps: STEPS, minOutcomes: 500, budget: 20_000 },
      31,
      3000,
    );
    assert.equal(run.ended.state, 'promoted', JSON.stringify(run.ended.decisions));
    assert.deepEqual(
      run.ended.decisions.map((d) => d.action),
      ['start', 'advance', 'promote'],
    );
    assert.deepEqual(
      run.moves.map((m) => `${m.alias}:${m.to}:${m.challengerWeight}`),
      [
        `challenger:${run.candidate}:0.1`,
        `challenger:${run.candidate}:0.5`,
        `champion:${run.candidate}:0.5`,
        'challenger:null:0',
      ],
    );
    assert.equal((await run.registry.routing()).champion, run.candidate);
    const rise = run.ended.decisions.at(-1)!.intervals['purchaseRate'];
    assert.ok(rise && (rise.lower ?? 0) > 0, `a significant rise: ${JSON.stringify(rise)}`);
    // Off-policy: the canary's outcomes (shares 10% and 50%) weighed by their propensity, against
    // the rate measured once it served everyone.
    const labels = settled(run.labels);
    const canary = labels.filter((e) => e.propensity < 1);
    const live = labels.filter((e) => e.modelVersion === run.candidate && e.propensity === 1);
    const estimate = estimateRate(canary, run.candidate)!;
    const liveRate = estimateRate(live, run.candidate)!;
    assert.ok(live.length >= 3000 && estimate.propensity.min === STEPS[0], JSON.stringify(estimate));
    // The estimate's interval covers the rate at 100%; the live rate is a sample of it too, so the
    // two agree within their joint noise (3 standard errors: a sound estimator fails 0.3% of runs,
    // where its 95% interval alone would miss the noisy live rate one run in eight).
    const se = (r: { lower: number; upper: number }) => (r.upper - r.lower) / (2 * 1.959964);
    const joint = Math.hypot(se(estimate), se(liveRate));
    assert.ok(
      Math.abs(estimate.estimate - liveRate.estimate) <= 3 * joint,
      `estimated ${JSON.stringify(estimate)}, live ${JSON.stringify(liveRate)}`,
    );
  });

  it('rolls back a candidate that truly sells less before its share passes the first step', async () => {
    const run = await experiment(
      -1.5,
      { primary: 'purchaseRate', steps: STEPS, minOutcomes: 500, budget: 20_000 },
      32,
    );
    assert.equal(run.ended.state, 'rolled-back', JSON.stringify(run.ended.decisions));
    assert.ok(!run.ended.decisions.some((d) => d.action === 'advance'));
    assert.ok(Math.max(...run.moves.map((m) => m.challengerWeight)) <= STEPS[0]!, 'never routed above 10%');
    // What the scorer served, counted from its predictions: at most the cap (and its noise).
    const noise = 3 * Math.sqrt((STEPS[0]! * (1 - STEPS[0]!)) / run.served);
    assert.ok(run.share <= STEPS[0]! + noise, `served ${run.share} of ${run.served} predictions`);
    assert.equal((await run.registry.routing()).champion, run.control);
    assert.equal((await run.registry.routing()).challenger, null);
  });

  it('ends an equal candidate inconclusive at its budget', async () => {
    // Alpha 1%: an A/A experiment that must not decide (5% would let one in 60 runs decide).
    const budget = 2500;
    const run = await experiment(
      0,
      { primary: 'purchaseRate', steps: STEPS, minOutcomes: 500, budget, alpha: 0.01 },
      33,
    );
    assert.equal(run.ended.state, 'inconclusive', JSON.stringify(run.ended.decisions));
    assert.ok(firstCount(run.ended, 'candidate') >= budget);
    assert.equal((await run.registry.routing()).champion, run.control);
    assert.equal((await run.registry.routing()).challenger, null);
  });

  it('decides two candidates at once beside a baseline arm, in segments only; the better one ends the other', async () => {
    const segments = ['*/mobile', '*/desktop'];
    const run = await group(
      [0.8, 0],
      { primary: 'purchaseRate', steps: [0.1, 0.4], minOutcomes: 400, budget: 20_000 },
      34,
      {
        baselineShare: 0.05,
        segments,
      },
    );
    const [better, equal] = run.ended as [ExperimentRecord, ExperimentRecord];
    assert.equal(better.state, 'promoted', JSON.stringify(better.decisions));
    assert.equal(equal.state, 'aborted', JSON.stringify(equal.decisions));
    assert.match(equal.endReason ?? '', /of the same group was promoted/);
    assert.equal((await run.registry.routing()).champion, run.candidates[0]);
    // Both were served at once, with the baseline, inside the segments only.
    const split = run.moves.find((m) => m.split && m.split.challengers.length === 2)?.split;
    assert.deepEqual(split, {
      challengers: [
        { version: run.candidates[0], weight: 0.1 },
        { version: run.candidates[1], weight: 0.1 },
      ],
      baselineWeight: 0.05,
      segments,
    });
    const served = run.records.filter((p) => p.arm !== 'shadow');
    // The group's splits, as the scorer named them: every one with a challenger serving.
    const splits = new Set(served.filter((p) => p.arm === 'challenger').map((p) => p.split));
    const underSplit = served.filter((p) => splits.has(p.split?.replace(/\.out$/, '') ?? null));
    const tablets = underSplit.filter((p) => p.segment.endsWith('/tablet'));
    assert.ok(tablets.length > 100, `${tablets.length} tablet predictions under the group's splits`);
    for (const p of tablets)
      assert.ok(
        p.arm === 'champion' && p.propensity === 1 && p.split?.endsWith('.out'),
        `a tablet user outside the split: ${JSON.stringify({ ...p, features: undefined })}`,
      );
    const inside = underSplit.filter((p) => !p.segment.endsWith('/tablet'));
    assert.ok(inside.every((p) => !p.split?.endsWith('.out')));
    // Users, not clicks, are split (a user's clicks share an arm): the share counts users.
    const users = new Map(inside.map((p) => [p.userId, p.arm]));
    const baselineShare = [...users.values()].filter((arm) => arm === 'baseline').length / users.size;
    assert.ok(
      Math.abs(baselineShare - 0.05) < 4 * Math.sqrt((0.05 * 0.95) / users.size),
      `baseline served ${baselineShare} of ${users.size} users`,
    );
    // The baseline arm's outcomes were counted, and the control's lift over it recorded.
    assert.ok((Object.values(better.baseline ?? {})[0]?.n ?? 0) > 100, JSON.stringify(better.baseline));
    assert.ok(
      better.timeline.some((t) => t.baselineIntervals?.['purchaseRate']),
      'control − baseline on the timeline',
    );
    assert.equal(better.config.alpha, 0.025, 'alpha shared out between the two');
  });

  it('passes a better shadow on log loss while it serves no one, and queues its canary', async () => {
    const run = await group([0], { primary: 'logLoss', steps: STEPS, minOutcomes: 300, budget: 20_000 }, 35, {
      mode: 'shadow',
      flippedControl: true,
    });
    const shadow = run.ended[0] as ExperimentRecord;
    assert.equal(shadow.state, 'promoted', JSON.stringify(shadow.decisions));
    const drop = shadow.decisions.at(-1)!.intervals['logLoss'];
    assert.ok(drop && (drop.upper ?? 0) < 0, `log loss significantly lower: ${JSON.stringify(drop)}`);
    // Up to its end (the shadow cleared): its queued canary may start right after it, on a busy
    // machine before the controller is stopped; what that serves is not the shadow's.
    const candidate = run.candidates[0] as string;
    const cleared = run.moves.findIndex((m) => m.alias === 'shadow' && m.to === null);
    assert.deepEqual(
      run.moves.slice(0, cleared + 1).map((m) => `${m.alias}:${m.to}`),
      [`shadow:${candidate}`, 'shadow:null'],
    );
    const next = run.moves[cleared + 1];
    const canaryAt = next ? Date.parse(next.at) : Infinity;
    // It scored as the shadow, never served, and the champion served everyone meanwhile.
    const own = run.records.filter((p) => p.modelVersion === candidate && p.serveTime < canaryAt);
    assert.ok(own.length > 300 && own.every((p) => p.arm === 'shadow'), `${own.length} shadow predictions`);
    const served = run.records.filter((p) => p.arm !== 'shadow' && p.serveTime < canaryAt);
    assert.ok(served.length > 0 && served.every((p) => p.modelVersion !== candidate), 'served no one');
    assert.equal((await run.registry.routing()).champion, run.control, 'a shadow does not take the champion');
    assert.deepEqual(
      run.queued.map((e) => [e.candidate, e.mode, e.config.steps]),
      [[candidate, undefined, STEPS]],
      'its canary is queued on the ramp given',
    );
  });
});
