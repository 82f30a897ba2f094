// The labeling queue against real Redis: priority order, leases, idempotent submit, skip,
// de-duplication, expiry by age, and 20 concurrent labelers labeling 2,000 tasks twice each
// while one of them dies holding leases.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { FlywheelError } from '../../services/common/errors.js';
import { createRedis } from '../../services/common/redis.js';
import { LabelingQueue, type QueueOptions } from '../../services/labeling/queue.js';
import { testRuntime } from '../helpers/kafka.js';

const runtime = testRuntime('labeling');
const connections: Redis[] = [];
async function connect(): Promise<Redis> {
  const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
  await redis.connect();
  connections.push(redis);
  return redis;
}
const options = (over: Partial<QueueOptions> = {}): QueueOptions => ({
  leaseMs: 60_000,
  maxAgeMs: 3_600_000,
  labelsRequired: 1,
  dedupeTtlSeconds: 60,
  ...over,
});
const codeOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof FlywheelError);
    return error.code;
  }
};

describe('labeling queue', () => {
  after(async () => {
    const redis = connections[0];
    if (redis) {
      const keys = await redis.keys('fw:labeling:test-*');
      if (keys.length > 0) await redis.del(...keys);
    }
    for (const c of connections) c.disconnect();
  });

  it('hands out tasks by priority, one lease per labeler, and takes each label once', async () => {
    let clock = 1_000_000;
    const queue = new LabelingQueue<{ n: number }>(
      await connect(),
      `test-${randomUUID()}`,
      options({ labelsRequired: 2, leaseMs: 1000 }),
      () => clock,
    );
    assert.equal(await queue.add({ id: 'low', priority: 0.2, payload: { n: 1 } }), true);
    assert.equal(await queue.add({ id: 'high', priority: 0.9, payload: { n: 2 } }), true);
    assert.equal(await queue.add({ id: 'high', priority: 0.9, payload: { n: 2 } }), false, 'same id twice');
    assert.equal(
      await queue.add({ id: 'other', priority: 0.5, payload: { n: 3 }, dedupeKeys: ['session-1'] }),
      true,
    );
    assert.equal(
      await queue.add({ id: 'again', priority: 0.5, payload: { n: 4 }, dedupeKeys: ['session-1'] }),
      false,
      'same session',
    );

    const a1 = await queue.next('ann');
    assert.equal(a1?.id, 'high');
    assert.deepEqual(a1?.payload, { n: 2 });
    assert.equal((await queue.next('bob'))?.id, 'high', 'needs two labels: a second labeler gets it too');
    assert.equal((await queue.next('cid'))?.id, 'other', 'two leases cover its two labels');
    assert.deepEqual(await queue.submit('high', 'ann', 1), { complete: false, labels: 1, required: 2 });
    assert.equal(
      await codeOf(queue.submit('high', 'ann', 1)),
      'FW_ALREADY_LABELED',
      'idempotent: nothing changes',
    );
    assert.equal(await codeOf(queue.submit('high', 'dan', 0)), 'FW_LEASE_EXPIRED', 'no lease, no label');
    assert.equal(await codeOf(queue.submit('nope', 'ann', 0)), 'FW_UNKNOWN_TASK');
    assert.deepEqual(await queue.submit('high', 'bob', 0), { complete: true, labels: 2, required: 2 });
    assert.deepEqual(await queue.labelsOf('high'), { ann: 1, bob: 0 });

    // cid skips 'other': it goes back, but not to cid.
    await queue.release('other', 'cid', 'skipped');
    assert.equal((await queue.next('cid'))?.id, 'low');
    assert.equal((await queue.next('ann'))?.id, 'other');
    // ann's lease on 'other' expires: the task comes back and her late submit is refused.
    clock += 1001;
    assert.equal(await codeOf(queue.submit('other', 'ann', 1)), 'FW_LEASE_EXPIRED');
    assert.equal((await queue.next('bob'))?.id, 'other');
    const stats = await queue.stats();
    assert.equal(stats.counters.completed, 1);
    assert.equal(stats.counters.duplicates, 2);
    assert.ok((stats.counters.leaseTimeouts ?? 0) >= 1);
    assert.equal(stats.counters.skipped, 1);
  });

  it('takes a task only when all its keys are free, and gives back the keys of one refused', async () => {
    const queue = new LabelingQueue<{ n: number }>(await connect(), `test-${randomUUID()}`, options({}));
    const offer = (id: string, keys: string[]) =>
      queue.offer({ id, priority: 1, payload: { n: 1 }, dedupeKeys: keys });
    assert.equal(await offer('t1', ['session:1', 'item:A']), 'added');
    assert.equal(await offer('t2', ['session:2', 'item:A']), 'duplicate', 'item A was reviewed already');
    // t2 took session 2 only for as long as it was considered: a task of session 2 still comes in.
    assert.equal(await offer('t3', ['session:2', 'item:B']), 'added');
    assert.equal(await offer('t4', ['session:1', 'item:C']), 'duplicate', 'session 1 was reviewed already');
    assert.equal(await offer('t5', ['session:3', 'item:C']), 'added', 't4 gave item C back');
    assert.equal(await offer('t6', []), 'added', 'no keys: no de-duplication');
  });

  it('adaptive overlap: a task whose labels disagree asks for one more, until two ahead or the maximum', async () => {
    const queue = new LabelingQueue(
      await connect(),
      `test-${randomUUID()}`,
      options({ labelsRequired: 2, maxLabels: 4 }),
    );
    await queue.add({ id: 'agreed', priority: 2, payload: {} });
    await queue.add({ id: 'split', priority: 1, payload: {} });
    const label = async (labeler: string, id: string, value: number) => {
      const leased = await queue.next(labeler);
      assert.equal(leased?.id, id, `${labeler} is offered ${id}`);
      return queue.submit(id, labeler, value);
    };
    // Two alike: done at two.
    await label('ann', 'agreed', 1);
    assert.deepEqual(await label('bob', 'agreed', 1), { complete: true, labels: 2, required: 2 });
    // 1–0: a third; 2–1: a fourth; 3–1 leads by two: done, at four (the maximum too).
    await label('ann', 'split', 1);
    assert.deepEqual(await label('bob', 'split', 0), { complete: false, labels: 2, required: 3 });
    assert.equal(await queue.next('ann'), null, 'not offered again to one who labeled it');
    assert.deepEqual(await label('cid', 'split', 1), { complete: false, labels: 3, required: 4 });
    assert.deepEqual(await label('dan', 'split', 1), { complete: true, labels: 4, required: 4 });
    assert.equal((await queue.stats()).counters.overlapGrown, 2);

    // At the maximum it stops, agreed or not.
    const capped = new LabelingQueue(
      await connect(),
      `test-${randomUUID()}`,
      options({ labelsRequired: 2, maxLabels: 3 }),
    );
    await capped.add({ id: 't', priority: 1, payload: {} });
    for (const [labeler, value] of [
      ['ann', 1],
      ['bob', 0],
    ] as const)
      await capped.submit((await capped.next(labeler))!.id, labeler, value);
    const last = await capped.submit((await capped.next('cid'))!.id, 'cid', 0);
    assert.deepEqual(last, { complete: true, labels: 3, required: 3 }, '2–1 at the maximum of three');
  });

  it('measures agreement beyond chance over completed tasks with several labels', async () => {
    const queue = new LabelingQueue(await connect(), `test-${randomUUID()}`, options({ labelsRequired: 2 }));
    // ann and bob: alike on t1 and t2, apart on t3 and t4.
    const answers: [string, number, number][] = [
      ['t1', 1, 1],
      ['t2', 0, 0],
      ['t3', 1, 0],
      ['t4', 0, 1],
    ];
    for (const [id] of answers) await queue.add({ id, priority: 1, payload: {} });
    // Each labeler takes the tasks in whatever order the queue leases them.
    for (const labeler of ['ann', 'bob'])
      for (let n = 0; n < answers.length; n++) {
        const leased = await queue.next(labeler);
        assert.ok(leased, `${labeler} gets a task`);
        const [, ann, bob] = answers.find(([task]) => task === leased.id)!;
        await queue.submit(leased.id, labeler, { label: labeler === 'ann' ? ann : bob });
      }
    const { agreement } = await queue.adminView();
    assert.equal(agreement.tasks, 4);
    // Observed 0.5, chance 0.5 (each said 1 half the time): kappa 0.
    assert.deepEqual(agreement.pairs, [{ a: 'ann', b: 'bob', tasks: 4, observed: 0.5, kappa: 0 }]);
    assert.ok(Math.abs(agreement.fleissKappa!) < 1e-12, "Fleiss' kappa 0 too");
  });

  it('queues at most the hourly budget, and a refused task does not use up its session key', async () => {
    let clock = Date.UTC(2026, 10, 26, 10, 59);
    const queue = new LabelingQueue(
      await connect(),
      `test-${randomUUID()}`,
      options({ tasksPerHour: 2 }),
      () => clock,
    );
    assert.equal(await queue.add({ id: 'a', priority: 1, payload: {} }), true);
    assert.equal(await queue.add({ id: 'b', priority: 1, payload: {} }), true);
    assert.equal(
      await queue.offer({ id: 'c', priority: 1, payload: {}, dedupeKeys: ['session-9'] }),
      'over_budget',
    );
    assert.equal(await queue.offer({ id: 'a', priority: 1, payload: {} }), 'duplicate');
    assert.deepEqual(await queue.budget(), {
      perHour: 2,
      usedThisHour: 2,
      refusedTotal: 1,
      spent: true,
      resetsAt: Date.UTC(2026, 10, 26, 11),
    });
    assert.deepEqual((await queue.adminView()).budget, await queue.budget(), 'the admin view shows it');
    clock += 60_000; // the next clock hour
    assert.equal(
      await queue.add({ id: 'd', priority: 1, payload: {}, dedupeKeys: ['session-9'] }),
      true,
      'new hour, key still free',
    );
    const stats = await queue.stats();
    assert.equal(stats.counters.overBudget, 1);
    assert.equal(stats.counters.added, 3);
    assert.equal((await queue.budget()).spent, false, 'a new hour, a new budget');
  });

  it('moves the first tasks of a rarely reviewed segment ahead of a segment asked about all the time', async () => {
    const take = async (rareBoost: number) => {
      const queue = new LabelingQueue<{ n: number }>(
        await connect(),
        `test-${randomUUID()}`,
        options({ rareBoost }),
      );
      for (let n = 0; n < 50; n++)
        await queue.add({ id: `common-${n}`, priority: 0.5, payload: { n }, stratum: 'DE/mobile' });
      await queue.add({ id: 'rare', priority: 0.4, payload: { n: 99 }, stratum: 'IS/tablet' });
      const order: string[] = [];
      for (let task = await queue.next('ann'); task; task = await queue.next('ann')) order.push(task.id);
      return order;
    };
    const plain = await take(0);
    assert.equal(plain.indexOf('rare'), 50, 'without the boost the lower priority comes last');
    const boosted = await take(1);
    // 0.4 × 2 = 0.8 beats 0.5 × (1 + 1/√n) from n = 3 on: third place, ahead of 48 common tasks.
    assert.equal(boosted.indexOf('rare'), 2, boosted.slice(0, 5).join(' '));
    assert.equal(boosted.length, 51);
  });

  it('expires tasks older than the maximum age instead of handing them out', async () => {
    let clock = 5_000_000;
    const queue = new LabelingQueue(
      await connect(),
      `test-${randomUUID()}`,
      options({ maxAgeMs: 10_000 }),
      () => clock,
    );
    await queue.add({ id: 'old', priority: 1, payload: {} });
    clock += 5_000;
    await queue.add({ id: 'young', priority: 0.1, payload: {} });
    clock += 6_000;
    assert.equal((await queue.next('ann'))?.id, 'young');
    assert.equal((await queue.stats()).counters.expired, 1);
  });

  it('20 concurrent labelers label 2,000 tasks twice each; a dead labeler’s tasks come back', async () => {
    const TASKS = 2000;
    const name = `test-${randomUUID()}`;
    const queueOptions = options({ labelsRequired: 2, leaseMs: 300 });
    const producer = new LabelingQueue<{ i: number }>(await connect(), name, queueOptions);
    for (let i = 0; i < TASKS; i++)
      await producer.add({ id: `t${i}`, priority: (i % 97) / 97, payload: { i } });

    // One labeler takes 25 tasks and dies without submitting.
    const dead = new LabelingQueue<{ i: number }>(await connect(), name, queueOptions);
    const abandoned: string[] = [];
    for (let i = 0; i < 25; i++) abandoned.push((await dead.next('dead'))!.id);

    const labelers = await Promise.all(
      Array.from({ length: 20 }, async (_, n) => ({
        id: `labeler-${n}`,
        queue: new LabelingQueue<{ i: number }>(await connect(), name, queueOptions),
      })),
    );
    const labeledBy = new Map<string, string[]>();
    let idleWaits = 0;
    const deadline = Date.now() + 120_000;
    await Promise.all(
      labelers.map(async ({ id, queue }) => {
        for (;;) {
          const task = await queue.next(id);
          if (!task) {
            const { ready, leased } = await queue.stats();
            if (ready === 0 && leased === 0) return;
            // Leases of the dead labeler have to time out: Redis has no event for that.
            if (Date.now() > deadline) throw new Error('queue did not drain');
            idleWaits++;
            await sleep(25);
            continue;
          }
          assert.equal(task.payload.i, Number(task.id.slice(1)));
          try {
            await queue.submit(task.id, id, task.payload.i % 2);
          } catch (error) {
            // A labeler slower than the lease loses the task to someone else: that is the rule.
            if (error instanceof FlywheelError && error.code === 'FW_LEASE_EXPIRED') continue;
            throw error;
          }
          labeledBy.set(task.id, [...(labeledBy.get(task.id) ?? []), id]);
        }
      }),
    );
    assert.equal(labeledBy.size, TASKS, 'every task labeled');
    for (const [task, who] of labeledBy) {
      assert.equal(who.length, 2, `${task} labeled twice`);
      assert.notEqual(who[0], who[1], `${task} by two different labelers`);
      assert.ok(!who.includes('dead'));
    }
    for (const task of abandoned) assert.equal(labeledBy.get(task)?.length, 2, `abandoned ${task} came back`);
    const stats = await producer.stats();
    assert.equal(stats.counters.completed, TASKS);
    assert.ok((stats.counters.leaseTimeouts ?? 0) >= abandoned.length);
    runtime.logger.info({ idleWaits }, 'drained');
  });
});
