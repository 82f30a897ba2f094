// The outcome join against an independent, brute-force reference that sees every event at once:
// in order, shuffled within the allowed lateness, for every match rule and attribution; plus
// late input, duplicates and idle partitions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import {
  PartitionJoin,
  type Attribution,
  type JoinConfig,
  type JoinDecision,
  type MatchRule,
  type PendingPrediction,
  type PurchaseRef,
} from '../../services/joiner/join.js';
import { ShopSimulation } from '../../services/simulator/generator.js';

const START = Date.UTC(2026, 2, 1);
const base: JoinConfig = {
  windowMs: 10 * 60_000,
  allowedLatenessMs: 60_000,
  match: 'same-item',
  attribution: 'last',
  idleMs: 30_000,
  idleLagMs: 5_000,
};

type Input = { kind: 'prediction'; value: PendingPrediction } | { kind: 'purchase'; value: PurchaseRef };
const timeOf = (e: Input) => (e.kind === 'prediction' ? e.value.clickTime : e.value.eventTime);

function stream(seed: number, events: number): Input[] {
  const sim = new ShopSimulation({ seed, startTime: START, trafficRate: 5 });
  const out: Input[] = [];
  while (out.length < events) {
    const e = sim.next();
    if (e.type === 'click') {
      const c = e.click;
      out.push({
        kind: 'prediction',
        value: {
          predictionId: `p:${c.eventId}`,
          userId: c.userId,
          itemId: c.itemId,
          sessionId: c.sessionId,
          clickTime: c.eventTime,
        },
      });
    } else {
      const p = e.purchase;
      out.push({
        kind: 'purchase',
        value: {
          eventId: p.eventId,
          userId: p.userId,
          itemId: p.itemId,
          sessionId: p.sessionId,
          eventTime: p.eventTime,
        },
      });
    }
  }
  return out;
}

/** Brute force with full knowledge: purchases in time order, each attributed among unlabeled matches. */
function reference(inputs: Input[], config: JoinConfig): Map<string, 0 | 1> {
  const predictions = inputs.filter((i) => i.kind === 'prediction').map((i) => i.value);
  const purchases = inputs
    .filter((i) => i.kind === 'purchase')
    .map((i) => i.value)
    .sort((a, b) => a.eventTime - b.eventTime || a.eventId.localeCompare(b.eventId));
  const labels = new Map<string, 0 | 1>();
  const matches = (p: PendingPrediction, q: PurchaseRef) =>
    p.userId === q.userId &&
    q.eventTime >= p.clickTime &&
    q.eventTime <= p.clickTime + config.windowMs &&
    (config.match === 'any-item' ||
      (config.match === 'same-item' ? p.itemId === q.itemId : q.sessionId === p.sessionId));
  for (const q of purchases) {
    const candidates = predictions
      .filter((p) => !labels.has(p.predictionId) && matches(p, q))
      .sort((a, b) => a.clickTime - b.clickTime || a.predictionId.localeCompare(b.predictionId));
    if (candidates.length === 0) continue;
    const chosen =
      config.attribution === 'all'
        ? candidates
        : config.attribution === 'first'
          ? [candidates[0]!]
          : [candidates.at(-1)!];
    for (const p of chosen) labels.set(p.predictionId, 1);
  }
  for (const p of predictions) if (!labels.has(p.predictionId)) labels.set(p.predictionId, 0);
  return labels;
}

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
  const inputs = stream(11, 6000).sort((a, b) => timeOf(a) - timeOf(b));

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
});
