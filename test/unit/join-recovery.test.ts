// The joiner's choice on taking a partition, row by row of the table in recovery.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseRecovery, type FoundState } from '../../services/joiner/recovery.js';

const ends = { prediction: 100n, purchase: 40n };
const state = (
  seq: number,
  outboxSeq: number | null = null,
  offsets: FoundState['offsets'] = { prediction: '90', purchase: '30' },
): FoundState => ({ seq, offsets, outboxSeq });

describe('join partition recovery', () => {
  it('is in step when Redis and Kafka name the same batch', () => {
    assert.deepEqual(chooseRecovery(state(7, 7), 7, ends), { action: 'in-step' });
    assert.deepEqual(chooseRecovery(state(0, null, {}), 0, ends), { action: 'in-step' });
  });

  it('publishes the outbox of a batch written to Redis and not to Kafka', () => {
    assert.deepEqual(chooseRecovery(state(8, 8), 7, ends), { action: 'publish-outbox' });
  });

  it('replays the inputs when Redis is behind, ahead without that outbox, or empty', () => {
    for (const [found, committed] of [
      [state(5, 5), 7],
      [state(9, 9), 7],
      [state(8, 7), 7],
      [state(8, null), 7],
      [state(0, null, {}), 12],
    ] as const) {
      const choice = chooseRecovery(found, committed, ends);
      assert.equal(choice.action, 'replay', JSON.stringify({ found, committed }));
    }
    assert.match((chooseRecovery(state(5, 5), 7, ends) as { reason: string }).reason, /behind/);
  });

  it('discards a state whose offsets lie past the end of a topic (the topic was recreated)', () => {
    const choice = chooseRecovery(state(7, 7, { prediction: '90', purchase: '41' }), 7, ends);
    assert.equal(choice.action, 'discard');
    assert.match((choice as { reason: string }).reason, /purchase offset 41/);
    // At the end exactly is still in step: the next offset to read.
    assert.deepEqual(chooseRecovery(state(7, 7, { prediction: '100', purchase: '40' }), 7, ends), {
      action: 'in-step',
    });
  });
});
