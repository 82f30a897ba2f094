// The outcome join against an independent, brute-force reference that sees every event at once:
// in order, shuffled within the allowed lateness, for every match rule and attribution; plus
// late input, duplicates and idle partitions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import {
  PartitionJoin,
  labelTimeOf,
  type Attribution,
  type JoinConfig,
  type JoinDecision,
  type JoinJournal,
  type MatchRule,
  type PendingPrediction,
  type PurchaseRef,
} from '../../services/joiner/join.js';
import { reference, stream, timeOf, type Input } from '../helpers/join-reference.js';

const START = Date.UTC(2026, 2, 1);
const base: JoinConfig = {
  windowMs: 10 * 60_000,
  allowedLatenessMs: 60_000,
  match: 'same-item',
  attribution: 'last',
  idleMs: 30_000,
  idleLagMs: 5_000,
};

function run(inputs: Input[], config: JoinConfig) {
  const join = new PartitionJoin<PendingPrediction>(config);
  const decisions: JoinDecision<PendingPrediction>[] = [];
  // Input arrives at wall-clock time 1; the closing tick below comes long after (idle).
  const wall = 1;
  for (const input of inputs) {
    decisions.push(
      ...(input.kind === 'prediction'
        ? join.addPrediction(input.value, wall)
        : join.addPurchase(input.value, wall)),
    );
  }
  // The input stops: after the idle time, wall-clock time closes the remaining windows.
  decisions.push(
    ...join.tick(
      Math.max(...inputs.map(timeOf)) + config.windowMs + config.allowedLatenessMs + config.idleLagMs + 1,
    ),
  );
  return { join, decisions, labels: new Map(decisions.map((d) => [d.prediction.predictionId, d.label])) };
}

describe('outcome join', () => {
  const inputs = stream(11, 6000, START).sort((a, b) => timeOf(a) - timeOf(b));

  for (const match of ['same-item', 'same-session', 'any-item'] as MatchRule[]) {
    for (const attribution of ['last', 'first', 'all'] as Attribution[]) {
      it(`in event-time order equals the reference (${match}, ${attribution})`, () => {
        const config = { ...base, match, attribution };
        const { labels, decisions, join } = run(inputs, config);
        const expected = reference(inputs, config);
        assert.equal(decisions.length, expected.size, 'every prediction labeled exactly once');
        assert.deepEqual(labels, expected);
        assert.ok(join.counters.positives > 0 && join.counters.negatives > 0);
        assert.equal(join.openCount, 0);
      });
    }
  }

  it('gives the same labels when input arrives shuffled within the allowed lateness', () => {
    const random = new Random(3);
    const jittered = inputs
      .map((e) => ({ e, arrival: timeOf(e) + random.next() * base.allowedLatenessMs * 0.9 }))
      .sort((a, b) => a.arrival - b.arrival)
      .map((x) => x.e);
    assert.notDeepEqual(jittered, inputs, 'the order really changed');
    const { labels, join } = run(jittered, base);
    assert.deepEqual(labels, reference(inputs, base));
    assert.equal(join.counters.latePredictions + join.counters.latePurchases, 0);
  });

  it('handles late input: counted, used where the window is still open, never silently dropped', () => {
    const join = new PartitionJoin<PendingPrediction>(base);
    const click = (id: string, t: number, item = 'i1'): PendingPrediction => ({
      predictionId: id,
      userId: 'u',
      itemId: item,
      sessionId: 's',
      clickTime: t,
    });
    const buy = (id: string, t: number, item = 'i1'): PurchaseRef => ({
      eventId: id,
      userId: 'u',
      itemId: item,
      sessionId: 's',
      eventTime: t,
    });
    const out: JoinDecision<PendingPrediction>[] = [];
    out.push(...join.addPrediction(click('a', START), 1));
    out.push(...join.addPrediction(click('b', START + 1000, 'i2'), 1));
    // Stream time moves 5 minutes on: both windows (10 min) still open.
    out.push(...join.addPrediction(click('x', START + 300_000, 'other'), 1));
    // A purchase from 4 minutes ago, beyond the allowed lateness, for b: still matches, late.
    out.push(...join.addPurchase(buy('q1', START + 60_000, 'i2'), 1));
    assert.deepEqual(
      out.map((d) => [d.prediction.predictionId, d.label, d.late]),
      [['b', 1, true]],
    );
    // Stream time passes a's window: a times out.
    out.push(...join.addPrediction(click('y', START + 12 * 60_000, 'other'), 1));
    assert.deepEqual(
      out.at(-1) && [out.at(-1)!.prediction.predictionId, out.at(-1)!.label, out.at(-1)!.source],
      ['a', 0, 'timeout'],
    );
    // The purchase that would have matched a arrives after a was decided: late, unmatched, counted.
    join.addPurchase(buy('q2', START + 30_000), 1);
    assert.equal(join.counters.latePurchases, 2);
    assert.equal(join.counters.lateUnmatchedPurchases, 1);
    // A prediction whose window closed before it arrived is decided at once against held purchases.
    const lateClick = join.addPrediction(click('c', START + 50_000, 'i2'), 1);
    assert.deepEqual(
      lateClick.map((d) => [d.prediction.predictionId, d.label, d.late]),
      [['c', 1, true]],
    );
    assert.equal(join.counters.latePredictions, 1);
  });

  it('ignores duplicate predictions and purchases, and counts them', () => {
    const doubled = inputs.flatMap((e, i) => (i % 7 === 0 ? [e, e] : [e]));
    const { labels, join } = run(doubled, base);
    assert.deepEqual(labels, reference(inputs, base));
    assert.ok(join.counters.duplicatePredictions > 0);
    assert.ok(join.counters.duplicatePurchases >= 0);
    assert.equal(
      join.counters.duplicatePredictions + join.counters.duplicatePurchases,
      doubled.length - inputs.length,
    );
  });

  it('gives the decisions of one step in label-time order, so each stretch has both classes', () => {
    // Lateness longer than the stream: nothing is decided until the idle tick decides it all.
    const span = timeOf(inputs.at(-1)!) - timeOf(inputs[0]!);
    const { decisions } = run(inputs, { ...base, allowedLatenessMs: span + base.windowMs });
    const labelTimes = decisions.map((d) => labelTimeOf(d.purchase, d.prediction.clickTime, base.windowMs));
    assert.deepEqual(
      labelTimes,
      [...labelTimes].sort((a, b) => a - b),
    );
    // While clicks and purchases both flow (label times from one window in to the last input),
    // purchases and timeouts alternate: each half of that stretch has its share of positives.
    const end = timeOf(inputs.at(-1)!);
    const steady = decisions.filter(
      (d, i) => labelTimes[i]! >= START + base.windowMs && labelTimes[i]! <= end,
    );
    const positives = (part: typeof decisions) => part.filter((d) => d.label === 1).length;
    const half = Math.floor(steady.length / 2);
    const [early, late] = [positives(steady.slice(0, half)), positives(steady.slice(half))];
    assert.ok(early > 0.6 * late && late > 0.6 * early, `positives in each half: ${early}, ${late}`);
  });

  it('closes the windows of an idle partition by wall-clock time, and only once it is idle', () => {
    const join = new PartitionJoin<PendingPrediction>(base);
    const now = Date.now();
    join.addPrediction({ predictionId: 'p', userId: 'u', itemId: 'i', sessionId: 's', clickTime: now }, now);
    assert.deepEqual(join.tick(now + 1000), [], 'not idle yet: input arrived a second ago');
    assert.deepEqual(join.tick(now + base.idleMs), [], 'idle, but the window is not over');
    const later = now + base.windowMs + base.allowedLatenessMs + base.idleLagMs;
    const closed = join.tick(later + 1);
    assert.deepEqual(
      closed.map((d) => [d.prediction.predictionId, d.label]),
      [['p', 0]],
    );
  });

  it('gives the live labels when a replay reads all predictions before any purchase', () => {
    const join = new PartitionJoin<PendingPrediction>(base);
    const decisions: JoinDecision<PendingPrediction>[] = [];
    // Both inputs have a backlog: neither is caught up, so stream time is the slower one's.
    join.setCaughtUp('prediction', false);
    join.setCaughtUp('purchase', false);
    for (const input of inputs.filter((i) => i.kind === 'prediction'))
      decisions.push(...join.addPrediction(input.value, 1));
    assert.equal(decisions.length, 0, 'no window closes while purchases are behind');
    for (const input of inputs.filter((i) => i.kind === 'purchase'))
      decisions.push(...join.addPurchase(input.value, 1));
    decisions.push(...join.setCaughtUp('purchase', true), ...join.setCaughtUp('prediction', true));
    decisions.push(...join.tick(Math.max(...inputs.map(timeOf)) + 2 * base.windowMs));
    assert.equal(join.counters.latePurchases, 0);
    assert.deepEqual(
      new Map(decisions.map((d) => [d.prediction.predictionId, d.label])),
      reference(inputs, base),
    );
  });

  it('restored from its journal, continues exactly as if never stopped', () => {
    // A durable copy kept only from journal calls, as the joiner's Redis state is.
    const open = new Map<string, PendingPrediction>();
    const purchases = new Map<string, PurchaseRef>();
    const seen = { prediction: new Map<string, number>(), purchase: new Map<string, number>() };
    const journal: JoinJournal<PendingPrediction> = {
      opened: (p) => open.set(p.predictionId, p),
      closed: (id) => open.delete(id),
      purchaseAdded: (q) => purchases.set(q.eventId, q),
      purchaseForgotten: (id) => purchases.delete(id),
      seen: (input, id, time) => seen[input].set(id, time),
      forgotten: (input, id) => seen[input].delete(id),
    };
    const config = { ...base, attribution: 'all' as const };
    const first = new PartitionJoin<PendingPrediction>(config);
    first.journal = journal;
    const feed = (join: PartitionJoin<PendingPrediction>, part: Input[]) =>
      part.flatMap((e) =>
        e.kind === 'prediction' ? join.addPrediction(e.value, 1) : join.addPurchase(e.value, 1),
      );
    const cut = Math.floor(inputs.length * 0.6);
    const before = feed(first, inputs.slice(0, cut));
    const restored = new PartitionJoin<PendingPrediction>(config);
    restored.restore(
      {
        open: [...open.values()],
        purchases: [...purchases.values()],
        seenPredictions: [...seen.prediction],
        seenPurchases: [...seen.purchase],
        streamTimes: { ...first.times },
        watermark: first.watermark,
        lastPrune: first.pruneMark,
        counters: { ...first.counters },
      },
      1,
    );
    assert.equal(restored.openCount, first.openCount);
    // Replayed input (a duplicate after the restart) is recognised, then the rest continues.
    assert.deepEqual(feed(restored, inputs.slice(cut - 50, cut)), []);
    const after = feed(restored, inputs.slice(cut));
    const end = Math.max(...inputs.map(timeOf)) + 2 * config.windowMs;
    after.push(...restored.tick(end));
    const uninterrupted = run(inputs, config);
    const labels = new Map([...before, ...after].map((d) => [d.prediction.predictionId, d.label]));
    assert.equal(before.length + after.length, uninterrupted.decisions.length);
    assert.deepEqual(labels, uninterrupted.labels);
    assert.equal(restored.counters.positives, uninterrupted.join.counters.positives);
    assert.equal(purchases.size < inputs.length / 5, true, 'old purchases were forgotten');
  });
});
