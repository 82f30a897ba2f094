// The trainer's policies of when to act, on their own: candidates by drift, count and time,
// checkpoints by count and time, the serving baseline's schedule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BASELINE_TRANSITIONS,
  BaselineSchedule,
  CandidatePolicy,
  CheckpointPolicy,
  type BaselineEvent,
  type BaselineState,
} from '../../services/trainer/triggers.js';

describe('trainer triggers', () => {
  it('a drift alarm comes first and is answered once; then the count, then the interval', () => {
    const policy = new CandidatePolicy({ every: 100, intervalMs: 60_000 }, 0);
    assert.equal(policy.due(1), null);
    policy.learned(150);
    policy.driftAlarm();
    assert.equal(policy.due(2), 'drift');
    assert.equal(policy.due(3), 'count', 'the alarm is answered once');
    policy.proposed(3);
    assert.equal(policy.due(4), null, 'a proposal starts the count over');
    policy.learned(1);
    assert.equal(policy.due(60_002), null, 'the interval runs from the last proposal');
    assert.equal(policy.due(60_003), 'interval');
    policy.proposed(60_003);
    assert.equal(policy.due(200_000), null, 'nothing learned since: no candidate by time');
  });

  it('0 turns the count and the interval off', () => {
    const policy = new CandidatePolicy({ every: 0, intervalMs: 0 }, 0);
    policy.learned(1_000_000);
    assert.equal(policy.due(1e12), null);
    policy.driftAlarm();
    assert.equal(policy.due(1e12), 'drift');
  });

  it('checkpoints by count after a batch, by time on a quiet tick only when something changed', () => {
    const policy = new CheckpointPolicy({ every: 50, intervalMs: 10_000 }, 0);
    assert.equal(policy.dueOnTick(20_000), false, 'nothing new');
    policy.taken(49);
    assert.equal(policy.dueAfterBatch(1), false);
    policy.taken(1);
    assert.equal(policy.dueAfterBatch(2), true);
    policy.written(2);
    policy.taken(0); // records taken in without learning still change the state (the holdout)
    assert.equal(policy.dueOnTick(10_001), false);
    assert.equal(policy.dueOnTick(10_002), true);
    assert.equal(policy.dueAfterBatch(10_002), true, 'by time after a batch too');
    policy.written(10_002);
    policy.touched();
    assert.equal(policy.dueOnTick(20_002), true, 'a candidate changed the lineage');
  });

  it('the baseline is published at the first count, then at each doubling', () => {
    const schedule = new BaselineSchedule(50);
    assert.equal(schedule.state, 'waiting');
    assert.equal(schedule.due(49), false);
    assert.equal(schedule.due(64), true);
    assert.equal(schedule.on('examples'), true);
    schedule.published(64);
    assert.equal(schedule.state, 'serving');
    assert.equal(schedule.due(127), false);
    assert.equal(schedule.due(128), true);
    const never = new BaselineSchedule(0);
    assert.equal(never.state, 'off');
    assert.equal(never.due(1e9), false);
  });

  it('moves by its table, publishing where the table says, and nowhere else', () => {
    const states = Object.keys(BASELINE_TRANSITIONS) as BaselineState[];
    const events: BaselineEvent[] = ['examples', 'refused', 'learned-champion', 'champion-failing'];
    // Every row of the table: reached from its state, with its own publish flag.
    const expected: Record<string, [BaselineState, boolean]> = {
      'waiting examples': ['serving', true],
      'waiting refused': ['serving', true],
      'waiting learned-champion': ['over', false],
      'waiting champion-failing': ['serving', true],
      'serving examples': ['serving', true],
      'serving refused': ['serving', true],
      'serving learned-champion': ['over', false],
      'serving champion-failing': ['serving', true],
      'over champion-failing': ['serving', true],
    };
    for (const from of states)
      for (const event of events) {
        const schedule = scheduleIn(from);
        const publish = schedule.on(event);
        const [to, published] = expected[`${from} ${event}`] ?? [from, false];
        assert.equal(schedule.state, to, `${from} --${event}-->`);
        assert.equal(publish, published, `${from} --${event}--> publishes`);
      }
  });

  it('after a learned champion publishes no more, and starts again from a failing champion', () => {
    const schedule = scheduleIn('over');
    assert.equal(schedule.due(1e9), false);
    assert.equal(schedule.on('refused'), false);
    assert.equal(schedule.on('champion-failing'), true);
    schedule.published(1000);
    assert.equal(schedule.due(1999), false);
    assert.equal(schedule.due(2000), true);
  });
});

/** A schedule brought to `state` through the table itself. */
function scheduleIn(state: BaselineState): BaselineSchedule {
  const schedule = new BaselineSchedule(state === 'off' ? 0 : 50);
  if (state === 'serving' || state === 'over') schedule.on('examples');
  if (state === 'over') schedule.on('learned-champion');
  assert.equal(schedule.state, state);
  return schedule;
}
