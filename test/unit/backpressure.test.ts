// The joiner's memory bound: pause predictions only where reading purchases closes windows,
// resume under 90% of the cap or when pausing stops helping, and say when nothing can help.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planBackpressure, type PartitionFlow } from '../../services/joiner/backpressure.js';

const flow = (partition: number, over: Partial<PartitionFlow> = {}): PartitionFlow => ({
  partition,
  paused: false,
  predictionTime: 2000,
  purchaseTime: 1000,
  purchasesCaughtUp: false,
  ...over,
});

describe('joiner backpressure', () => {
  it('does nothing under the cap', () => {
    assert.deepEqual(planBackpressure(99, 100, [flow(0), flow(1)]), {
      pause: [],
      resume: [],
      stalled: false,
    });
  });

  it('pauses predictions where purchases have a backlog and lag behind them', () => {
    const plan = planBackpressure(100, 100, [
      flow(0),
      flow(1, { purchasesCaughtUp: true }), // nothing more to read: pausing would stall
      flow(2, { purchaseTime: 3000 }), // purchases ahead: predictions hold the watermark
    ]);
    assert.deepEqual(plan, { pause: [0], resume: [], stalled: false });
  });

  it('resumes under 90% of the cap, or as soon as pausing stops helping', () => {
    assert.deepEqual(planBackpressure(95, 100, [flow(0, { paused: true })]).resume, [], 'hysteresis');
    assert.deepEqual(planBackpressure(89, 100, [flow(0, { paused: true })]).resume, [0]);
    const caughtUp = planBackpressure(150, 100, [flow(0, { paused: true, purchasesCaughtUp: true })]);
    assert.deepEqual(caughtUp.resume, [0], 'purchases caught up: the pause would never end');
    assert.equal(caughtUp.stalled, true);
  });

  it('reports a stall when over the cap and no partition can be paused usefully', () => {
    const plan = planBackpressure(500, 100, [
      flow(0, { purchasesCaughtUp: true }),
      flow(1, { purchaseTime: 5000 }),
    ]);
    assert.deepEqual(plan, { pause: [], resume: [], stalled: true });
    assert.equal(
      planBackpressure(500, 100, [flow(0, { paused: true })]).stalled,
      false,
      'one pause is working',
    );
  });
});
