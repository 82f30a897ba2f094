// The scorer's in-memory sessions give every click the context the definition in
// services/model/session.ts gives it: in order, out of order, replayed, and after a session was
// dropped and loaded back from what Redis holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import { sessionContext, type SeenClick } from '../../services/model/session.js';
import { SessionCache, type CachedClick } from '../../services/scorer/session-cache.js';

const options = { maxSessions: 1000, maxClicksPerSession: 500, idleMs: 3_600_000 };

describe('session cache', () => {
  it('agrees with the definition on shuffled, replayed clicks of many sessions', () => {
    const random = new Random(7);
    const cache = new SessionCache({ ...options, maxSessions: 5 });
    // What Redis holds: every click recorded so far, per session.
    const recorded = new Map<string, SeenClick[]>();
    const categories = ['toys', 'books', 'games', 'garden'];
    const clicks: (CachedClick & { sessionId: string })[] = [];
    for (let s = 0; s < 20; s++) {
      let t = 1_000_000 + s * 10;
      for (let k = 0; k < 1 + Math.floor(random.next() * 12); k++) {
        t += Math.floor(random.next() * 3) * 1000; // ties included
        const category = categories[Math.floor(random.next() * categories.length)] as string;
        clicks.push({ sessionId: `s${s}`, eventId: `s${s}-c${k}`, eventTime: t, category });
      }
    }
    // Mostly in order, with a fifth of the clicks moved and a tenth played twice.
    const stream = clicks.map((c, i) => ({
      c,
      at: i + (random.next() < 0.2 ? (random.next() - 0.5) * 40 : 0),
    }));
    stream.sort((a, b) => a.at - b.at);
    const events = stream.flatMap(({ c }) => (random.next() < 0.1 ? [c, c] : [c]));

    let loads = 0;
    for (const click of events) {
      const seen = recorded.get(click.sessionId) ?? [];
      if (!cache.has(click.sessionId, 0)) {
        // Dropped (only 5 held) or never seen: loaded back from Redis.
        cache.merge(click.sessionId, seen, 0);
        loads++;
      }
      const { context, added } = cache.observe(click.sessionId, click, 0)!;
      const replay = seen.some((s) => s.eventId === click.eventId);
      assert.equal(added, !replay, `added ${click.eventId}`);
      if (!replay) seen.push(click);
      recorded.set(click.sessionId, seen);
      cache.shrink();
      assert.deepEqual(context, sessionContext(seen, click.eventTime), `context of ${click.eventId}`);
    }
    assert.ok(loads > 20, `sessions were dropped and loaded back (${loads} loads)`);
    assert.ok(cache.size <= 5);
  });

  it('keeps the clicks it added when a load that was issued before them returns', () => {
    const cache = new SessionCache(options);
    cache.merge('s', [], 0);
    cache.observe('s', { eventId: 'b', eventTime: 2000, category: 'toys' }, 0);
    // An older read of Redis: only click a.
    cache.merge('s', [{ eventId: 'a', eventTime: 1000, category: 'books' }], 0);
    const { context } = cache.observe('s', { eventId: 'c', eventTime: 3000, category: 'toys' }, 0)!;
    assert.deepEqual(context, { clicksBefore: 2, sessionStart: 1000, categoriesSeen: 2 });
  });

  it('keeps the newest clicks up to the cap, the click at the cap seeing one more', () => {
    const cache = new SessionCache({ ...options, maxClicksPerSession: 3 });
    cache.merge('s', [], 0);
    const seen = [1, 2, 3, 4, 5].map(
      (k) => cache.observe('s', { eventId: `c${k}`, eventTime: k * 1000, category: `k${k}` }, 0)!.context,
    );
    assert.deepEqual(
      seen.map((c) => [c.clicksBefore, c.sessionStart]),
      [
        [0, 1000],
        [1, 1000],
        [2, 1000],
        [3, 1000], // cap + 1 held when its context is taken, as the Redis key is trimmed after
        [3, 2000],
      ],
    );
  });

  it('does not trust a session idle past the Redis expiry, and forgets on request', () => {
    const cache = new SessionCache({ ...options, idleMs: 1000 });
    cache.merge('s', [], 0);
    assert.equal(cache.has('s', 1000), true);
    assert.equal(cache.has('s', 2001), false);
    cache.merge('t', [], 0);
    cache.forget('t');
    assert.equal(cache.has('t', 0), false);
    assert.equal(cache.observe('t', { eventId: 'x', eventTime: 1, category: 'toys' }, 0), undefined);
  });
});
