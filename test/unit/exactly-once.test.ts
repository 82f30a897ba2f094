// The exactly-once protocol's choice on taking a partition, row by row of the table in
// common/exactly-once.ts, and reconcile carrying it out on a store held in memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  chooseRecovery,
  reconcile,
  seqMetadata,
  type FoundState,
} from '../../services/common/exactly-once.js';

type Input = 'prediction' | 'purchase';
const ends: Record<Input, bigint> = { prediction: 100n, purchase: 40n };
const state = (
  seq: number,
  outboxSeq: number | null = null,
  offsets: FoundState<Input>['offsets'] = { prediction: '90', purchase: '30' },
): FoundState<Input> => ({ seq, offsets, outboxSeq });

describe('exactly-once recovery', () => {
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

  it('tags the committed offsets with the batch seq', () => {
    assert.equal(seqMetadata('flywheel-join', 12), 'flywheel-join seq=12');
  });
});

/** A stage's state store for one partition, in memory, recording what reconcile asked of it. */
function store(initial: FoundState<Input>, afterDiscard: FoundState<Input>) {
  let current = initial;
  const calls: string[] = [];
  return {
    calls,
    steps: {
      load: () => Promise.resolve(current),
      found: (s: FoundState<Input>) => s,
      discard: (_s: FoundState<Input>, reason: string) => {
        calls.push(`discard: ${reason}`);
        current = afterDiscard;
        return Promise.resolve();
      },
      publishOutbox: (s: FoundState<Input>) => {
        calls.push(`publish ${s.seq}`);
        return Promise.resolve();
      },
      replay: (s: FoundState<Input>, reason: string) =>
        calls.push(`replay from ${s.offsets.prediction}: ${reason}`),
    },
  };
}

describe('reconcile', () => {
  it('does nothing in step', async () => {
    const { steps, calls } = store(state(7, 7), state(0));
    const result = await reconcile(steps, 7, ends);
    assert.deepEqual(result.recovery, { action: 'in-step' });
    assert.deepEqual(calls, []);
  });

  it('publishes the outbox of the unfinished batch, once', async () => {
    const { steps, calls } = store(state(8, 8), state(0));
    const result = await reconcile(steps, 7, ends);
    assert.equal(result.recovery.action, 'publish-outbox');
    assert.deepEqual(calls, ['publish 8']);
    assert.equal(result.state.seq, 8);
  });

  it('replays from the state it found when Kafka is ahead', async () => {
    const { steps, calls } = store(state(5, 5, { prediction: '60', purchase: '20' }), state(0));
    const result = await reconcile(steps, 7, ends);
    assert.equal(result.recovery.action, 'replay');
    assert.equal(calls.length, 1);
    assert.match(calls[0] as string, /^replay from 60: the state is behind Kafka/);
  });

  it('discards a state past the topics and decides again on what is left', async () => {
    const { steps, calls } = store(state(7, 7, { prediction: '900', purchase: '30' }), state(0, null, {}));
    const result = await reconcile(steps, 3, ends);
    assert.equal(result.discarded, true);
    assert.equal(result.recovery.action, 'replay');
    assert.match(calls[0] as string, /^discard: prediction offset 900/);
    assert.match(calls[1] as string, /^replay from undefined/);
  });
});
