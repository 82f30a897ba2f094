// The scorer's session state in real Redis: contexts by event time, and the earlier clicks (item,
// category, price) a labeler sees, including sessions written before items and prices were kept.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { isRetriable } from '../../services/common/errors.js';
import type { ClickEvent } from '../../services/common/contracts.js';
import { createRedis } from '../../services/common/redis.js';
import { scorerKeys } from '../../services/scorer/keys.js';
import { RedisSessionStore, earlierClicks } from '../../services/scorer/session-store.js';
import { sessionContext } from '../../services/model/session.js';
import { sampleRecords } from '../helpers/records.js';
import { testRuntime } from '../helpers/kafka.js';

describe('session store', () => {
  const runtime = testRuntime('scorer');
  let redis: Redis;
  const sessions: string[] = [];
  before(async () => {
    redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await redis.connect();
  });
  after(async () => {
    if (sessions.length > 0) await redis.del(...sessions.map((s) => scorerKeys.session(s)));
    await redis.quit();
  });
  const click = (sessionId: string, n: number, over: Partial<ClickEvent> = {}): ClickEvent => ({
    ...sampleRecords().click,
    eventId: `${sessionId}-c${n}`,
    sessionId,
    itemId: `item-${n}`,
    price: 10 + n,
    category: n % 2 ? 'books' : 'toys',
    eventTime: Date.UTC(2026, 5, 1) + n * 1000,
    ...over,
  });

  it('records clicks and gives each its context and the clicks before it, even out of order', async () => {
    const store = new RedisSessionStore(redis);
    const session = `s-${randomUUID()}`;
    sessions.push(session);
    const { contexts, recorded } = await store.observe([
      click(session, 1),
      click(session, 3),
      click(session, 2),
    ]);
    await recorded;
    assert.deepEqual(
      contexts.map((c) => [c.clicksBefore, c.categoriesSeen]),
      [
        [0, 0],
        [1, 1],
        [1, 1],
      ],
    );
    const earlier = await earlierClicks(redis, session, click(session, 3).eventTime);
    assert.deepEqual(
      earlier.map((c) => [c.itemId, c.category, c.price]),
      [
        ['item-1', 'books', 11],
        ['item-2', 'toys', 12],
      ],
    );
    // The predict API's read of Redis gives the definition's answer too.
    assert.deepEqual(
      await store.peek(click(session, 3)),
      sessionContext(
        [1, 2, 3].map((n) => click(session, n)),
        click(session, 3).eventTime,
      ),
    );
    assert.deepEqual(await earlierClicks(redis, session, click(session, 3).eventTime, 1), [earlier[1]]);
  });

  it('reads sessions recorded before items and prices were kept', async () => {
    const store = new RedisSessionStore(redis);
    const session = `s-${randomUUID()}`;
    sessions.push(session);
    await redis.zadd(scorerKeys.session(session), click(session, 0).eventTime, `${session}-c0\tgames`);
    const {
      contexts: [context],
    } = await store.observe([click(session, 1)]);
    assert.deepEqual([context?.clicksBefore, context?.categoriesSeen], [1, 1]);
    const earlier = await earlierClicks(redis, session, click(session, 1).eventTime);
    assert.deepEqual(
      earlier.map((c) => [c.itemId, c.category, c.price]),
      [[null, 'games', null]],
    );
  });

  it('writes behind: another scorer loads what this one recorded, and a replay adds nothing', async () => {
    const session = `s-${randomUUID()}`;
    sessions.push(session);
    const first = new RedisSessionStore(redis);
    const observed = await first.observe([click(session, 1), click(session, 2)]);
    await observed.recorded;
    // A scorer that takes the partition over holds nothing and loads the session from Redis.
    const second = new RedisSessionStore(redis);
    const next = await second.observe([click(session, 3), click(session, 1)]);
    await next.recorded;
    assert.deepEqual(
      next.contexts.map((c) => [c.clicksBefore, c.categoriesSeen, c.sessionStart]),
      [
        [2, 2, click(session, 1).eventTime],
        [0, 0, click(session, 1).eventTime],
      ],
    );
    assert.equal(await redis.zcard(scorerKeys.session(session)), 3);
    // The first scorer's copy went stale while the other had the partition; cleared, it reloads.
    first.clear();
    const replay = await first.observe([click(session, 3)]);
    await replay.recorded;
    assert.deepEqual(
      replay.contexts.map((c) => c.clicksBefore),
      [2],
    );
    assert.equal(await redis.zcard(scorerKeys.session(session)), 3);
    assert.ok((await redis.ttl(scorerKeys.session(session))) > 0, 'the session expires when idle');
  });

  it('reports Redis being unreachable as retriable, so the batch is retried, not dead-lettered', async () => {
    const down = new Redis({
      host: '127.0.0.1',
      port: 1,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    try {
      const store = new RedisSessionStore(down);
      await assert.rejects(
        store.observe([click(`s-${randomUUID()}`, 1)]),
        (error: Error) => isRetriable(error) && /session state load failed/.test(error.message),
      );
    } finally {
      down.disconnect();
    }
  });
});
