import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EmbeddedSchemaRegistry } from '../../services/common/avro/registry.js';
import { classifyMessage } from '../../services/common/classify.js';
import { createCodecs, routingOf } from '../../services/common/contracts.js';
import { ShopSimulation, type SimEvent } from '../../services/simulator/generator.js';
import { EXPECTED_CODE, MALFORMED_KINDS, makeMalformed } from '../../services/simulator/malformed.js';
import { Random } from '../../services/common/random.js';
import { liftFor, parseLifts } from '../../services/cli/treatment.js';
import { servedArm } from '../../services/scorer/routing.js';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const logit = (p: number) => Math.log(p / (1 - p));

const START = Date.UTC(2026, 0, 1);
const take = (sim: ShopSimulation, n: number) => Array.from({ length: n }, () => sim.next());

describe('shop simulation', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = take(new ShopSimulation({ seed: 42, startTime: START }), 2000);
    const b = take(new ShopSimulation({ seed: 42, startTime: START }), 2000);
    const c = take(new ShopSimulation({ seed: 43, startTime: START }), 2000);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  it('emits events in event-time order, each purchase after its click, for the same user and item', () => {
    const events = take(new ShopSimulation({ seed: 7, startTime: START, trafficRate: 50 }), 30000);
    const clicks = new Map<string, SimEvent & { type: 'click' }>();
    let purchases = 0;
    for (let i = 1; i < events.length; i++)
      assert.ok(events[i]!.time >= events[i - 1]!.time, `order at ${i}`);
    for (const event of events) {
      if (event.type === 'click') clicks.set(event.click.eventId, event);
      else {
        purchases++;
        const click = clicks.get(event.clickEventId);
        assert.ok(click, `purchase ${event.purchase.eventId} follows a click`);
        assert.ok(event.time > click.time);
        assert.equal(event.purchase.userId, click.click.userId);
        assert.equal(event.purchase.itemId, click.click.itemId);
        assert.equal(click.truth.purchaseEventId, event.purchase.eventId);
      }
    }
    const rate = purchases / clicks.size;
    assert.ok(rate > 0.01 && rate < 0.2, `purchase rate ${rate} is shop-like`);
  });

  it('scales purchase delays on request, and nothing else', () => {
    const delays = (purchaseDelayScale: number) => {
      const sim = new ShopSimulation({ seed: 8, startTime: START, trafficRate: 50, purchaseDelayScale });
      const clickTimes = new Map<string, number>();
      const out = new Map<string, number>();
      for (const event of take(sim, 20000)) {
        if (event.type === 'click') clickTimes.set(event.click.eventId, event.time);
        else out.set(event.purchase.eventId, event.time - clickTimes.get(event.clickEventId)!);
      }
      return out;
    };
    const shop = delays(1);
    const fast = delays(0.1);
    let compared = 0;
    for (const [id, delay] of fast) {
      const original = shop.get(id);
      if (original === undefined) continue; // fast purchases of later clicks
      compared++;
      assert.ok(Math.abs(delay - Math.max(1000, original / 10)) <= 1, `${id}: ${delay} vs ${original}`);
    }
    assert.ok(compared > 100, `${compared} purchases compared`);
  });

  it('keeps the requested traffic rate in event time', () => {
    // From the first event on: the warm-up starts the stream with sessions already under way.
    const events = take(new ShopSimulation({ seed: 3, startTime: START, trafficRate: 100 }), 30000);
    const seconds = (events.at(-1)!.time - START) / 1000;
    const rate = events.length / seconds;
    assert.ok(rate > 90 && rate < 110, `rate ${rate.toFixed(1)}/s close to 100/s`);
  });

  it('drift raises the purchase probability of one category after its start time only', () => {
    const drift = { atMs: 600_000, category: 'books', shift: 2 };
    const sim = new ShopSimulation({ seed: 5, startTime: START, drift });
    assert.equal(sim.categoryShift('books', START + 599_999), 0);
    assert.equal(sim.categoryShift('books', START + 600_000), 2);
    assert.equal(sim.categoryShift('music', START + 600_000), 0);
    const mean = (events: SimEvent[], after: boolean) => {
      const ps = events
        .filter((e): e is SimEvent & { type: 'click' } => e.type === 'click' && e.click.category === 'books')
        .filter((e) => e.time >= START + drift.atMs === after)
        .map((e) => e.truth.probability);
      return ps.reduce((s, p) => s + p, 0) / ps.length;
    };
    const events = take(sim, 60000).filter((e) => e.time < START + 1_200_000);
    assert.ok(mean(events, true) > mean(events, false) * 2, 'books convert much better after the drift');
  });

  it("a drift's share moves the traffic mix to its category from its start on, and leaves the run before it as it was", () => {
    const drift = { atMs: 60_000, category: 'books', shift: 0, share: 0.4 };
    const plain = take(new ShopSimulation({ seed: 5, startTime: START }), 30000);
    const drifted = take(new ShopSimulation({ seed: 5, startTime: START, drift }), 30000);
    const clicks = (events: SimEvent[], after: boolean) =>
      events.filter(
        (e): e is SimEvent & { type: 'click' } =>
          e.type === 'click' && e.time >= START + drift.atMs === after,
      );
    const before = clicks(drifted, false);
    assert.deepEqual(
      before.map((e) => e.click.itemId),
      clicks(plain, false).map((e) => e.click.itemId),
      'the same clicks before the drift',
    );
    const share = (events: { click: { category: string } }[]) =>
      events.filter((e) => e.click.category === 'books').length / events.length;
    const after = clicks(drifted, true);
    assert.ok(after.length > 5000);
    // The campaign's share plus the books the rest of the traffic still picks.
    const expected = 0.4 + 0.6 * share(before);
    assert.ok(Math.abs(share(after) - expected) < 0.03, `books ${share(after)} after, ${expected} expected`);
  });

  it('a treatment lifts the purchases of the users the lifted version serves, by the split the scorers apply', () => {
    const lifts = parseLifts('v000002=1');
    const routing = routingOf({
      champion: 'v000001',
      challenger: 'v000002',
      challengerWeight: 0.3,
      shadow: 'v000002',
    });
    const treatment = (userId: string) => liftFor(userId, routing, lifts);
    const plain = take(new ShopSimulation({ seed: 6, startTime: START }), 20000);
    const treated = take(new ShopSimulation({ seed: 6, startTime: START, treatment }), 20000);
    const clicks = (events: SimEvent[]) =>
      events.filter((e): e is SimEvent & { type: 'click' } => e.type === 'click');
    // The same clicks (only purchases move, and with them how many clicks 20,000 events hold).
    const [before, after] = [clicks(plain), clicks(treated)];
    before.splice(Math.min(before.length, after.length));
    assert.ok(before.every((e, i) => e.click.eventId === after[i]?.click.eventId));
    let lifted = 0;
    before.forEach((e, i) => {
      const served = servedArm(e.click.userId, routing, () => true);
      const p = after[i]!.truth.probability;
      const expected =
        served.arm === 'challenger' ? sigmoid(logit(e.truth.probability) + 1) : e.truth.probability;
      assert.ok(Math.abs(p - expected) < 1e-12, `${e.click.userId} (${served.arm})`);
      if (served.arm === 'challenger') lifted++;
    });
    assert.ok(
      lifted > before.length * 0.2 && lifted < before.length * 0.4,
      `${lifted} of ${before.length} lifted`,
    );
    assert.equal(liftFor('u', null, lifts), 0, 'no routing, no lift');
    assert.throws(() => parseLifts('v2=1'), /VERSION=LOGODDS/);
  });
});

describe('malformed messages', () => {
  it('each kind is classified by the consumer with its expected dead-letter code', async () => {
    const codecs = createCodecs(new EmbeddedSchemaRegistry());
    const random = new Random(1);
    const now = Date.now();
    const events = take(new ShopSimulation({ seed: 9, startTime: now - 60_000 }), 5000);
    const click = events.find((e) => e.type === 'click')!;
    const purchase = events.find((e) => e.type === 'purchase')!;
    const limits = { now, maxClockSkewMs: 300_000, maxMessageBytes: 64 * 1024 };
    for (const event of [click, purchase]) {
      for (const kind of MALFORMED_KINDS) {
        const bad = await makeMalformed(kind, event, codecs, random, { oversizedBytes: 65 * 1024, now });
        const result = await classifyMessage(
          bad,
          event.type === 'click' ? 'click' : 'purchase',
          codecs,
          limits,
        );
        assert.equal(result.ok, false, `${event.type}/${kind} is rejected`);
        if (!result.ok)
          assert.equal(result.code, EXPECTED_CODE[kind], `${event.type}/${kind}: ${result.reason}`);
      }
    }
  });
});
