// Lanes: the scorer queues a batch's slices at once; one partition's are scored one after another
// in call order, other partitions' alongside.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lanes } from '../../services/scorer/scoring-worker.js';

/** A task that finishes when told to, logging its start and end. */
function gated(log: string[], name: string) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  return {
    open,
    task: async () => {
      log.push(`start ${name}`);
      await gate;
      log.push(`end ${name}`);
      return name;
    },
  };
}

describe('Lanes', () => {
  it('runs one lane in call order, each task after the previous ended, and other lanes alongside', async () => {
    const lanes = new Lanes();
    const log: string[] = [];
    const a1 = gated(log, 'a1');
    const a2 = gated(log, 'a2');
    const b1 = gated(log, 'b1');
    const results = [lanes.run('a', a1.task), lanes.run('a', a2.task), lanes.run('b', b1.task)];
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ['start a1', 'start b1']);
    a2.open(); // a2 may not start (or end) before a1 ended
    b1.open();
    await results[2];
    assert.deepEqual(log, ['start a1', 'start b1', 'end b1']);
    a1.open();
    assert.deepEqual(await Promise.all(results), ['a1', 'a2', 'b1']);
    assert.deepEqual(log, ['start a1', 'start b1', 'end b1', 'end a1', 'start a2', 'end a2']);
  });

  it('goes on with a lane after a task fails, and the failure reaches only its caller', async () => {
    const lanes = new Lanes();
    const failed = lanes.run('a', () => Promise.reject(new Error('boom')));
    const next = lanes.run('a', () => Promise.resolve('next'));
    await assert.rejects(failed, /boom/);
    assert.equal(await next, 'next');
  });
});
