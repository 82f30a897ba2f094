// The trainer's read order: runs of one partition, coalesced, replayable by runsOf, and cut at a
// candidate so a version's lineage only holds what was read since the previous snapshot.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReadOrder, runsOf } from '../../services/trainer/read-order.js';

describe('read order', () => {
  it('coalesces consecutive records of a partition into one run, gaps included', () => {
    const order = new ReadOrder();
    for (const [key, offset] of [
      ['f:0', '0'],
      ['f:0', '1'],
      ['f:0', '3'], // 2 was a transaction marker or a dead letter: still in the run
      ['f:1', '10'],
      ['f:0', '4'],
    ] as const)
      order.note(key, offset);
    const state = order.state();
    assert.deepEqual(state, { keys: ['f:0', 'f:1'], starts: ['0', '10'], runs: '0@4 1@11 0@5' });
    assert.deepEqual(
      runsOf(order.ranges(), state.runs).map((r) => [r.range, r.from, r.to]),
      [
        [0, 0n, 4n],
        [1, 10n, 11n],
        [0, 4n, 5n],
      ],
    );
    // Restored from its state, it goes on the same.
    const restored = new ReadOrder(state);
    restored.note('f:0', '5');
    order.note('f:0', '5');
    assert.deepEqual(restored.state(), order.state());
  });

  it('a cut ends the run; a rebase keeps only what came after, starting where the cut was', () => {
    const order = new ReadOrder();
    order.note('f:0', '0');
    order.note('f:0', '1');
    const cut = order.cut();
    order.note('f:0', '2'); // same partition, but a new run after the cut
    order.note('f:1', '7');
    assert.equal(order.state().runs, '0@2 0@3 1@8');
    order.rebase(cut);
    const state = order.state();
    assert.deepEqual(state, { keys: ['f:0', 'f:1'], starts: ['2', '7'], runs: '0@3 1@8' });
    assert.deepEqual(
      order.ranges().map((r) => [r.partition, r.from, r.to]),
      [
        [0, '2', '3'],
        [1, '7', '8'],
      ],
    );
  });

  it('refuses a run that names no range', () => {
    assert.throws(() => runsOf([], '0@5'), /names range 0 of 0/);
    assert.throws(() => runsOf([], 'x'), /bad read-order run/);
  });
});
