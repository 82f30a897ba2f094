// The experiment decision core: always-valid intervals, the state table, and its error rates over
// seeded simulations looked at every 20 outcomes (A/A: false promotion and false rollback at most
// alpha; a better model promoted; a worse one rolled back at a small share).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import {
  EXPERIMENT_TRANSITIONS,
  nextState,
  type ExperimentEvent,
  type ExperimentState,
} from '../../services/rollout/experiment.js';
import {
  EMPTY_ARM,
  differenceInterval,
  merge,
  stratifiedInterval,
  observe,
  variance,
} from '../../services/rollout/sequential.js';
import { DEFAULT_RAMP, endings } from '../helpers/rollout-simulation.js';

const RUNS = 500;
const users = { low: 0.01, high: 0.2 };

describe('always-valid intervals', () => {
  it('summarise outcomes as their mean and variance, batch by batch or at once', () => {
    const random = new Random(3);
    const xs = Array.from({ length: 1000 }, () => random.normal(2, 3));
    const all = xs.reduce(observe, EMPTY_ARM);
    const halves = merge(
      xs.slice(0, 400).reduce(observe, EMPTY_ARM),
      xs.slice(400).reduce(observe, EMPTY_ARM),
    );
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
    for (const s of [all, halves]) {
      assert.equal(s.n, 1000);
      assert.ok(Math.abs(s.mean - mean) < 1e-9);
      assert.ok(Math.abs(variance(s) - v) < 1e-9);
    }
  });

  it('are unbounded without data and narrow as outcomes come', () => {
    const settings = { alpha: 0.05, tau: 0.05 };
    assert.equal(differenceInterval(EMPTY_ARM, EMPTY_ARM, settings).lower, -Infinity);
    const random = new Random(5);
    let a = EMPTY_ARM;
    let b = EMPTY_ARM;
    const widths: number[] = [];
    for (let n = 1; n <= 10_000; n++) {
      a = observe(a, random.chance(0.1) ? 1 : 0);
      b = observe(b, random.chance(0.1) ? 1 : 0);
      if (n % 2500 === 0) {
        const i = differenceInterval(a, b, settings);
        widths.push(i.upper - i.lower);
        assert.ok(i.lower < 0 && i.upper > 0, 'equal arms: the interval holds zero');
      }
    }
    assert.ok(
      widths.every((w, k) => k === 0 || w < (widths[k - 1] as number)),
      widths.join(', '),
    );
  });
});

describe('stratified intervals', () => {
  const settings = { alpha: 0.05, tau: 0.05 };
  const arm = (n: number, rate: number) => ({ n, mean: rate, m2: n * rate * (1 - rate) });

  it('equal the pooled interval for one stratum', () => {
    const [control, candidate] = [arm(9000, 0.1), arm(1000, 0.12)];
    const one = stratifiedInterval([{ control, candidate }], settings);
    const pooled = differenceInterval(control, candidate, settings);
    for (const key of ['estimate', 'lower', 'upper'] as const)
      assert.ok(Math.abs(one[key] - pooled[key]) < 1e-12, `${key}: ${one[key]} vs ${pooled[key]}`);
  });

  it('compare arms served at the same share: a rate that moves with time is no effect', () => {
    // Equal arms; the rate is 0.10 while the candidate had 10% of users and 0.20 once it had 50%.
    const early = { control: arm(9000, 0.1), candidate: arm(1000, 0.1) };
    const late = { control: arm(5000, 0.2), candidate: arm(5000, 0.2) };
    const pooled = differenceInterval(
      merge(early.control, late.control),
      merge(early.candidate, late.candidate),
      settings,
    );
    assert.ok(pooled.lower > 0, `pooled, the candidate looks better: ${JSON.stringify(pooled)}`);
    const stratified = stratifiedInterval([early, late], settings);
    assert.ok(Math.abs(stratified.estimate) < 1e-12);
    assert.ok(stratified.lower < 0 && stratified.upper > 0);
    // A true difference in both strata is found, the same size.
    const better = stratifiedInterval(
      [
        { control: arm(9000, 0.1), candidate: arm(1000, 0.15) },
        { control: arm(5000, 0.2), candidate: arm(5000, 0.25) },
      ],
      settings,
    );
    assert.ok(Math.abs(better.estimate - 0.05) < 1e-9 && better.lower > 0, JSON.stringify(better));
    assert.equal(
      stratifiedInterval([{ control: arm(1, 0), candidate: EMPTY_ARM }], settings).upper,
      Infinity,
    );
  });
});

describe('experiment states', () => {
  it('move only by their table; the ended states take no event', () => {
    const events: ExperimentEvent[] = [
      'advance',
      'start',
      'promote',
      'rollback',
      'inconclusive',
      'pause',
      'resume',
      'abort',
    ];
    for (const state of Object.keys(EXPERIMENT_TRANSITIONS) as ExperimentState[])
      for (const event of events)
        assert.equal(
          nextState(state, event),
          EXPERIMENT_TRANSITIONS[state][event] ?? null,
          `${state} ${event}`,
        );
    for (const ended of ['promoted', 'rolled-back', 'inconclusive', 'aborted', 'superseded'] as const)
      assert.deepEqual(EXPERIMENT_TRANSITIONS[ended], {});
    assert.equal(nextState('paused', 'advance'), null, 'a paused ramp does not advance');
    assert.equal(nextState('queued', 'start'), 'running');
    assert.equal(nextState('queued', 'promote'), null, 'a candidate is promoted on outcomes only');
    assert.equal(nextState('paused', 'rollback'), 'rolled-back', 'the guardrail holds while paused');
  });
});

describe('experiment decisions over seeded simulations', () => {
  const { alpha } = DEFAULT_RAMP;

  it(`A/A: promotes and rolls back falsely at most alpha = ${alpha} of ${RUNS} runs, however often looked at`, (t) => {
    const { counts } = endings(RUNS, { ...users, rateLift: 0, candidate: 'mean' });
    t.diagnostic(`A/A endings: ${JSON.stringify(counts)}`);
    assert.ok(counts.promote / RUNS <= alpha, `false promotions ${counts.promote}`);
    assert.ok(counts.rollback / RUNS <= alpha, `false rollbacks ${counts.rollback}`);
    assert.equal(
      counts.inconclusive + counts.promote + counts.rollback,
      RUNS,
      'every run ends by its budget',
    );
  });

  it('promotes a model that knows the users (log loss lower by 0.058) in at least 80% of runs', (t) => {
    const { counts } = endings(RUNS, { ...users, rateLift: 0, candidate: 'own' });
    t.diagnostic(`better model endings: ${JSON.stringify(counts)}`);
    assert.ok(counts.promote / RUNS >= 0.8, `promoted ${counts.promote}`);
    assert.ok(counts.rollback / RUNS <= alpha, `rolled back ${counts.rollback}`);
  });

  it('rolls back a model that gets the users backwards, nearly always before the largest share', (t) => {
    const { counts, rollbackShares } = endings(RUNS, { ...users, rateLift: 0, candidate: 'swapped' });
    const beforeLast = rollbackShares.filter((s) => s < 0.5).length;
    t.diagnostic(`worse model endings: ${JSON.stringify(counts)}; rolled back below 50%: ${beforeLast}`);
    assert.ok(counts.rollback / RUNS >= 0.95, `rolled back ${counts.rollback}`);
    assert.ok(
      beforeLast / counts.rollback >= 0.9,
      `before the last step ${beforeLast} of ${counts.rollback}`,
    );
  });

  it('rolls back on the guardrail a model that costs purchases, even when it predicts better', (t) => {
    const { counts } = endings(RUNS, { ...users, rateLift: -0.04, candidate: 'own' });
    t.diagnostic(`fewer purchases endings: ${JSON.stringify(counts)}`);
    assert.ok(counts.rollback / RUNS >= 0.8, `rolled back ${counts.rollback}`);
  });
});
