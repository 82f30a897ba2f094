import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { murmur3 } from '../../services/model/hash.js';
import type { ClickEvent } from '../../services/common/contracts.js';
import { BUCKETS, FeatureSpec, bucketOf, type SessionContext } from '../../services/model/features.js';
import { ShopSimulation } from '../../services/simulator/generator.js';
import { SessionTracker } from '../../services/model/session.js';
import { sampleRecords } from '../helpers/records.js';

describe('murmur3 (x86, 32-bit)', () => {
  it('matches the reference test vectors', () => {
    assert.equal(murmur3('', 0), 0);
    assert.equal(murmur3('', 1), 0x514e28b7);
    assert.equal(murmur3('hello', 0), 0x248bfa47);
    assert.equal(murmur3('The quick brown fox jumps over the lazy dog', 0), 0x2e4ff723);
  });
});

describe('feature spec', () => {
  const spec = new FeatureSpec();
  const click = sampleRecords(Date.UTC(2026, 5, 1, 14, 30)).click;
  const session = { clicksBefore: 3, sessionStart: click.eventTime - 95_000, categoriesSeen: 2 };

  it('is deterministic, sorted, unique, inside the dimension, with dense values at the end', () => {
    const a = spec.vectorize(click, session);
    assert.deepEqual(spec.vectorize({ ...click }, { ...session }), a);
    assert.equal(a.indices.length, a.values.length);
    for (let i = 1; i < a.indices.length; i++) assert.ok(a.indices[i]! > a.indices[i - 1]!);
    assert.ok(a.indices.every((i) => i >= 0 && i < spec.dimension));
    assert.deepEqual(a.indices.slice(-3), [spec.hashSize, spec.hashSize + 1, spec.hashSize + 2]);
    assert.ok(a.indices.length <= spec.maxNonZero);
  });

  it('changes the vector when a feature changes, and only the slots that feature touches', () => {
    const base = spec.vectorize(click, session);
    const other = spec.vectorize({ ...click, device: 'desktop' }, session);
    const changed = base.indices.filter((i) => !other.indices.includes(i));
    assert.ok(
      changed.length >= 2 && changed.length <= 4,
      `device, segment×category, device×category (${changed.length})`,
    );
  });

  it('has a stable hash that changes with the spec', () => {
    assert.equal(new FeatureSpec().hash, spec.hash);
    assert.match(spec.hash, /^[0-9a-f]{16}$/);
    assert.notEqual(new FeatureSpec({ hashBits: 18 }).hash, spec.hash);
    assert.notEqual(new FeatureSpec({ seed: 1 }).hash, spec.hash);
    assert.throws(() => new FeatureSpec({ hashBits: 30 }), /hashBits/);
  });

  it('equals the definition, murmur3 of "name=value" per feature, on simulated traffic', () => {
    // The definition written out plainly; vectorize caches and precomputes, and must agree.
    const definition = (spec: FeatureSpec, c: ClickEvent, s: SessionContext) => {
      const slot = (name: string, value: string | number) =>
        murmur3(`${name}=${value}`, spec.seed) & (spec.hashSize - 1);
      const bucket = (name: keyof typeof BUCKETS, value: number) =>
        slot(name, bucketOf(value, BUCKETS[name]));
      const seconds = Math.max(0, (c.eventTime - s.sessionStart) / 1000);
      const price = bucketOf(Math.log2(1 + Math.max(0, c.price)), BUCKETS.priceLog2);
      const counts = new Map<number, number>();
      for (const i of [
        slot('bias', 1),
        ...(['user', 'item', 'category', 'device', 'country', 'referrer', 'pageType'] as const).map((f) =>
          slot(f, c[f === 'user' ? 'userId' : f === 'item' ? 'itemId' : f]),
        ),
        slot('segment×category', `${c.country}/${c.device}|${c.category}`),
        slot('device×category', `${c.device}|${c.category}`),
        slot('referrer×pageType', `${c.referrer}|${c.pageType}`),
        slot('user×category', `${c.userId}|${c.category}`),
        slot('priceBucket×category', `${price}|${c.category}`),
        bucket('clicksBefore', s.clicksBefore),
        bucket('secondsInSession', seconds),
        slot('priceLog2', price),
        bucket('categoriesSeen', s.categoriesSeen),
        bucket('hourOfDay', new Date(c.eventTime).getUTCHours()),
      ])
        counts.set(i, (counts.get(i) ?? 0) + 1);
      const indices = [...counts.keys()].sort((a, b) => a - b);
      return {
        indices: [...indices, spec.hashSize, spec.hashSize + 1, spec.hashSize + 2],
        values: [
          ...indices.map((i) => counts.get(i)),
          Math.log1p(Math.max(0, c.price)) / 10,
          Math.min(s.clicksBefore, 20) / 20,
          Math.log1p(seconds) / 10,
        ],
      };
    };
    // 256 slots: many clicks have colliding features, which add up.
    const small = new FeatureSpec({ hashBits: 8 });
    const simulation = new ShopSimulation({ seed: 5, startTime: Date.UTC(2026, 3, 1), trafficRate: 50 });
    const tracker = new SessionTracker();
    let clicks = 0;
    let collisions = 0;
    while (clicks < 5000) {
      const event = simulation.next();
      if (event.type !== 'click') continue;
      clicks++;
      const session = tracker.observe(event.click);
      for (const s of [spec, small])
        assert.deepEqual(s.vectorize(event.click, session), definition(s, event.click, session));
      if (small.vectorize(event.click, session).values.some((v) => v > 1)) collisions++;
    }
    assert.ok(collisions > 500, `${collisions} clicks with colliding features in 256 slots`);
  });

  it('buckets by the last boundary not above the value', () => {
    assert.equal(bucketOf(0, [0, 1, 2, 3, 5]), 0);
    assert.equal(bucketOf(4, [0, 1, 2, 3, 5]), 3);
    assert.equal(bucketOf(99, [0, 1, 2, 3, 5]), 4);
  });
});

describe('session tracker', () => {
  it('gives each click the context of the clicks before it in its session', () => {
    const tracker = new SessionTracker();
    const c = sampleRecords(1_800_000_000_000).click;
    assert.deepEqual(tracker.observe(c), { clicksBefore: 0, sessionStart: c.eventTime, categoriesSeen: 0 });
    assert.deepEqual(
      tracker.observe({ ...c, eventId: 'c-2', eventTime: c.eventTime + 5000, category: 'music' }),
      {
        clicksBefore: 1,
        sessionStart: c.eventTime,
        categoriesSeen: 1,
      },
    );
    assert.deepEqual(tracker.observe({ ...c, eventId: 'c-3', eventTime: c.eventTime + 9000 }), {
      clicksBefore: 2,
      sessionStart: c.eventTime,
      categoriesSeen: 2,
    });
    assert.equal(tracker.observe({ ...c, eventId: 'c-4', sessionId: 'other' }).clicksBefore, 0);
  });

  it('is defined by event time: a replayed or late click gets the same context', () => {
    const c = sampleRecords(1_800_000_000_000).click;
    const tracker = new SessionTracker();
    const late = { ...c, eventId: 'late', eventTime: c.eventTime - 4000, category: 'toys' };
    tracker.observe(c);
    tracker.observe({ ...c, eventId: 'c-2', eventTime: c.eventTime + 1000 });
    // Arrives last but happened first: nothing came before it; the session started with it.
    assert.deepEqual(tracker.observe(late), {
      clicksBefore: 0,
      sessionStart: late.eventTime,
      categoriesSeen: 0,
    });
    assert.deepEqual(tracker.observe({ ...c, eventId: 'c-2', eventTime: c.eventTime + 1000 }), {
      clicksBefore: 2,
      sessionStart: late.eventTime,
      categoriesSeen: 2,
    });
  });
});
