// The controller's look at the experiments file: queued ones start against the champion, one at
// a time; a moved champion ends an experiment; every look is on the timeline; decisions move the
// step and end experiments with their numbers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rampFor } from '../../services/registry/experiment-admin.js';
import {
  type ArmSummaries,
  type ExperimentRecord,
  type ExperimentsFile,
  type MeanSummary,
  type OutcomeSummaries,
} from '../../services/registry/experiments.js';
import { tick } from '../../services/rollout/controller.js';

const ramp = rampFor({ primary: 'purchaseRate', steps: [0.1, 0.5], minOutcomes: 100, budget: 5000 });

function queued(id: string, candidate: string, createdAt = 0): ExperimentRecord {
  const empty = { purchaseRate: { n: 0, mean: 0, m2: 0 } };
  return {
    id,
    candidate,
    control: null,
    state: 'queued',
    config: ramp,
    createdBy: 'operator',
    createdAt,
    reason: 'test',
    startedAt: null,
    endedAt: null,
    endReason: null,
    step: 0,
    stepStartedAt: createdAt,
    stepStartOutcomes: 0,
    stats: { control: { ...empty }, candidate: { ...empty } },
    timeline: [],
    decisions: [],
  };
}

/** A binary outcome's summary: n outcomes with a purchase rate of `rate`. */
function rate(n: number, mean: number): MeanSummary {
  return { n, mean, m2: n * mean * (1 - mean) };
}

/** One stratum's outcomes (every outcome served at one share). */
function arms(control: MeanSummary, candidate: MeanSummary): OutcomeSummaries {
  const stats: ArmSummaries = { control: { purchaseRate: control }, candidate: { purchaseRate: candidate } };
  return { stats, strata: { '0.1': stats } };
}

describe('rollout controller tick', () => {
  it('starts the oldest queued experiment against the champion, one at a time', () => {
    const file: ExperimentsFile = {
      experiments: [queued('exp-1', 'v2'), queued('exp-2', 'v3')],
      offsets: {},
    };
    const result = tick(file, { champion: 'v1', now: 1000, summaries: new Map() });
    assert.equal(result.started?.id, 'exp-1');
    assert.deepEqual(
      result.changed.map((e) => e.id),
      ['exp-1'],
    );
    const [first, second] = file.experiments as [ExperimentRecord, ExperimentRecord];
    assert.equal(first.state, 'running');
    assert.equal(first.control, 'v1');
    assert.equal(first.startedAt, 1000);
    assert.deepEqual(
      first.decisions.map((d) => `${d.action}:${d.share}`),
      ['start:0.1'],
    );
    assert.equal(second.state, 'queued', 'waits for the running one');
    const again = tick(file, { champion: 'v1', now: 2000, summaries: new Map() });
    assert.equal(again.started, null);
  });

  it("starts an operator's queued experiment before the trainer's", () => {
    const trainers = { ...queued('exp-1', 'v2'), createdBy: 'trainer' };
    const file: ExperimentsFile = {
      experiments: [trainers, queued('exp-2', 'v3'), queued('exp-3', 'v4')],
      offsets: {},
    };
    assert.equal(tick(file, { champion: 'v1', now: 1, summaries: new Map() }).started?.id, 'exp-2');
  });

  it('starts nothing without a champion, and drops a queued candidate that became champion', () => {
    const file: ExperimentsFile = {
      experiments: [queued('exp-1', 'v2'), queued('exp-2', 'v3')],
      offsets: {},
    };
    assert.equal(tick(file, { champion: null, now: 1, summaries: new Map() }).started, null);
    assert.equal(file.experiments[0]?.state, 'queued');
    const result = tick(file, { champion: 'v2', now: 2, summaries: new Map() });
    assert.equal(file.experiments[0]?.state, 'aborted');
    assert.match(file.experiments[0]?.endReason ?? '', /became champion/);
    assert.equal(result.started?.id, 'exp-2');
    assert.equal(result.started?.control, 'v2');
  });

  it("waits while an operator's challenger holds the alias outside any experiment", () => {
    const file: ExperimentsFile = { experiments: [queued('exp-1', 'v2')], offsets: {} };
    const held = tick(file, { champion: 'v1', challenger: 'v7', now: 1, summaries: new Map() });
    assert.equal(held.started, null);
    assert.match(held.waiting ?? '', /held by v7 outside any experiment/);
    assert.equal(file.experiments[0]?.state, 'queued');
    const cleared = tick(file, { champion: 'v1', challenger: null, now: 2, summaries: new Map() });
    assert.equal(cleared.started?.id, 'exp-1');
    assert.equal(cleared.waiting, null);
  });

  it('follows a refresh of the serving baseline as the same control', () => {
    const file: ExperimentsFile = { experiments: [queued('exp-1', 'v2')], offsets: {} };
    tick(file, { champion: 'v1', now: 1, summaries: new Map() });
    const continues = (from: string, to: string) => from === 'v1' && to === 'v3';
    const result = tick(file, { champion: 'v3', continues, now: 2, summaries: new Map() });
    const e = file.experiments[0]!;
    assert.equal(e.state, 'running');
    assert.equal(e.control, 'v3');
    assert.deepEqual(e.controls, ['v1', 'v3']);
    assert.deepEqual(result.changed, []);
    tick(file, { champion: 'v4', continues, now: 3, summaries: new Map() });
    assert.equal(e.state, 'aborted', 'another champion ends it');
  });

  it('ends an experiment whose control is no longer the champion', () => {
    const file: ExperimentsFile = { experiments: [queued('exp-1', 'v2')], offsets: {} };
    tick(file, { champion: 'v1', now: 1, summaries: new Map() });
    const result = tick(file, { champion: 'v9', now: 2, summaries: new Map() });
    const e = file.experiments[0]!;
    assert.equal(e.state, 'aborted');
    assert.match(e.endReason ?? '', /champion moved from v1 to v9/);
    assert.deepEqual(result.changed, [e]);
  });

  it('holds with too few outcomes, each look on the timeline; advances, then promotes a clear winner', () => {
    const file: ExperimentsFile = { experiments: [queued('exp-1', 'v2')], offsets: {} };
    tick(file, { champion: 'v1', now: 0, summaries: new Map() });
    const e = file.experiments[0]!;
    const few = new Map([['exp-1', arms(rate(400, 0.1), rate(40, 0.3))]]);
    const held = tick(file, { champion: 'v1', now: 1, summaries: few });
    assert.deepEqual(held.changed, [], 'a hold moves nothing');
    assert.equal(e.timeline.length, 1);
    assert.equal(e.stats.candidate['purchaseRate']?.n, 40, 'the summaries are stored');

    const enough = new Map([['exp-1', arms(rate(900, 0.1), rate(150, 0.3))]]);
    const advanced = tick(file, { champion: 'v1', now: 2, summaries: enough });
    assert.deepEqual(
      advanced.decisions.map((d) => d.decision.action),
      ['advance'],
    );
    assert.equal(e.step, 1);
    assert.equal(e.stepStartOutcomes, 150);

    const won = new Map([['exp-1', arms(rate(2000, 0.1), rate(2000, 0.3))]]);
    tick(file, { champion: 'v1', now: 3, summaries: won });
    assert.equal(e.state, 'promoted');
    const promote = e.decisions.at(-1)!;
    assert.equal(promote.action, 'promote');
    assert.deepEqual(promote.outcomes, { control: 2000, candidate: 2000 });
    assert.ok((promote.intervals['purchaseRate']?.lower ?? 0) > 0);
    assert.equal(e.timeline.length, 3);
    assert.equal(e.endedAt, 3);
  });

  it('rolls back on a significant harm at the first step, without advancing', () => {
    const file: ExperimentsFile = { experiments: [queued('exp-1', 'v2')], offsets: {} };
    tick(file, { champion: 'v1', now: 0, summaries: new Map() });
    const harm = new Map([['exp-1', arms(rate(3000, 0.2), rate(300, 0.02))]]);
    const result = tick(file, { champion: 'v1', now: 1, summaries: harm });
    const e = file.experiments[0]!;
    assert.equal(e.state, 'rolled-back');
    assert.equal(e.step, 0);
    assert.deepEqual(
      result.decisions.map((d) => d.decision.action),
      ['rollback'],
    );
  });

  it('starts a group whole; promoting one candidate ends the others in the same look', () => {
    const grouped = (id: string, candidate: string) => ({ ...queued(id, candidate), group: 'exp-1' });
    const file: ExperimentsFile = {
      experiments: [grouped('exp-1', 'v2'), grouped('exp-2', 'v3'), queued('exp-3', 'v4')],
      offsets: {},
    };
    const started = tick(file, { champion: 'v1', now: 0, summaries: new Map() });
    assert.deepEqual(started.changed.map((e) => e.id).sort(), ['exp-1', 'exp-2']);
    assert.deepEqual(
      file.experiments.map((e) => e.state),
      ['running', 'running', 'queued'],
    );
    // Straight to the last step for both, then v3 wins clearly and v2 does not.
    for (const e of file.experiments.slice(0, 2)) e.step = 1;
    const summaries = new Map([
      ['exp-1', arms(rate(2000, 0.1), rate(2000, 0.1))],
      ['exp-2', arms(rate(2000, 0.1), rate(2000, 0.3))],
    ]);
    const result = tick(file, { champion: 'v1', now: 5, summaries });
    const [first, second] = file.experiments as [ExperimentRecord, ExperimentRecord];
    assert.equal(second.state, 'promoted');
    assert.equal(first.state, 'aborted');
    assert.match(first.endReason ?? '', /v3 of the same group was promoted/);
    assert.ok(result.changed.includes(first), 'the ended sibling is routed too');
    assert.equal(file.experiments[2]?.state, 'queued', 'the next experiment waits for the next look');
  });

  it("records the baseline arm's outcomes and the control's lift over it on the timeline", () => {
    const file: ExperimentsFile = {
      experiments: [{ ...queued('exp-1', 'v2'), baselineShare: 0.05 }],
      offsets: {},
    };
    tick(file, { champion: 'v1', now: 0, summaries: new Map() });
    const e = file.experiments[0]!;
    assert.deepEqual(e.baseline, { purchaseRate: { n: 0, mean: 0, m2: 0 } });
    const summaries = new Map([
      ['exp-1', { ...arms(rate(3000, 0.2), rate(50, 0.2)), baseline: { purchaseRate: rate(3000, 0.1) } }],
    ]);
    tick(file, { champion: 'v1', now: 1, summaries });
    const point = e.timeline.at(-1)!;
    assert.equal(point.arms.baseline?.n, 3000);
    const lift = point.baselineIntervals?.['purchaseRate'];
    assert.ok(lift && Math.abs(lift.estimate - 0.1) < 1e-9, `control − baseline: ${lift?.estimate}`);
    assert.ok((lift.lower ?? 0) > 0, 'the champion beats the baseline significantly');
  });

  it('decides a shadow on log loss alone, serving no one; passing queues its canary on the ramp given', () => {
    const file: ExperimentsFile = {
      experiments: [
        {
          ...queued('exp-1', 'v2'),
          config: rampFor({ steps: [0.1, 0.5], minOutcomes: 100 }),
          mode: 'shadow',
        },
      ],
      offsets: {},
    };
    tick(file, { champion: 'v1', now: 0, summaries: new Map() });
    const shadow = file.experiments[0]!;
    const loss = (n: number, mean: number): MeanSummary => ({ n, mean, m2: n * 0.04 });
    // Same purchases (the shadow serves no one), clearly lower log loss.
    const stats = {
      control: { logLoss: loss(3000, 0.4), purchaseRate: rate(3000, 0.1) },
      candidate: { logLoss: loss(3000, 0.3), purchaseRate: rate(3000, 0.1) },
    };
    const result = tick(file, {
      champion: 'v1',
      now: 1,
      summaries: new Map([['exp-1', { stats, strata: { s: stats } }]]),
    });
    assert.equal(shadow.state, 'promoted', JSON.stringify(shadow.decisions));
    const decision = shadow.decisions.at(-1)!;
    assert.deepEqual(Object.keys(decision.intervals), ['logLoss'], 'log loss alone');
    assert.equal(decision.share, 0, 'a shadow serves no one');
    assert.equal(result.queued.length, 1);
    const canary = result.queued[0]!;
    assert.deepEqual(
      [canary.candidate, canary.state, canary.mode, canary.config.steps],
      ['v2', 'queued', undefined, [0.1, 0.5]],
    );
    assert.match(canary.reason, /passed its shadow experiment exp-1/);
    const next = tick(file, { champion: 'v1', now: 2, summaries: new Map() });
    assert.equal(next.started?.id, canary.id, 'the canary starts at the next look');
  });
});
