// The outcome join against an independent, brute-force reference that sees every event at once:
// in order, shuffled within the allowed lateness, with one input lagging far behind, for every
// match rule and attribution; plus late input with re-attribution and corrections, predictions
// sharing a click, duplicates, the idle rule live and in a replay, and restore from the journal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import {
  PartitionJoin,
  labelTimeOf,
  type Attribution,
  type JoinConfig,
  type JoinDecision,
  type JoinInput,
  type JoinJournal,
  type MatchRule,
  type PendingPrediction,
  type PurchaseRef,
  type StoredClick,
  type StoredPurchase,
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
  liveLagMs: 5 * 60_000,
  retentionMs: 10 * 60_000,
};

/**
 * Drives a join as the service does with stream progress: each input's progress is the latest
 * event time read on it, at a wall clock that follows event time (a live stream).
 */
class Driver {
  readonly join: PartitionJoin;
  readonly decisions: JoinDecision[] = [];

  constructor(config: JoinConfig, journal?: JoinJournal) {
    this.join = new PartitionJoin(config, journal && (() => journal));
  }

  feed(inputs: Input[], progress: JoinInput[] = ['prediction', 'purchase']): this {
    for (const input of inputs) {
      this.decisions.push(
        ...(input.kind === 'prediction'
          ? this.join.addPrediction(input.value)
          : this.join.addPurchase(input.value)),
      );
      for (const which of progress) this.progress(which, false);
    }
    return this;
  }

  progress(input: JoinInput, idle: boolean, wall = this.join.times[input]): this {
    const time = this.join.times[input];
    if (Number.isFinite(time) || idle)
      this.decisions.push(
        ...this.join.setProgress(input, { time, idle }, Number.isFinite(wall) ? wall : START),
      );
    return this;
  }

  /** Both inputs complete up to START + t (as an upstream's progress says). */
  at(t: number): this {
    for (const input of ['prediction', 'purchase'] as const)
      this.decisions.push(...this.join.setProgress(input, { time: START + t, idle: false }, START + t));
    return this;
  }

  /** Both inputs go idle; long after, the clock closes the remaining windows. */
  finish(): this {
    const config = this.join.config;
    const last = Math.max(this.join.times.prediction, this.join.times.purchase);
    this.progress('prediction', true, last).progress('purchase', true, last);
    this.decisions.push(
      ...this.join.tick(last + config.windowMs + config.allowedLatenessMs + config.idleLagMs + 1),
    );
    return this;
  }

  /** The latest label of each prediction (corrections replace earlier ones). */
  get labels(): Map<string, 0 | 1> {
    const latest = new Map<string, JoinDecision>();
    for (const d of this.decisions) {
      const seen = latest.get(d.prediction.predictionId);
      if (!seen || d.revision > seen.revision) latest.set(d.prediction.predictionId, d);
    }
    return new Map([...latest].map(([id, d]) => [id, d.label]));
  }
}

const click = (id: string, t: number, item = 'i1', eventId = id): PendingPrediction => ({
  predictionId: id,
  eventId,
  userId: 'u',
  itemId: item,
  sessionId: 's',
  clickTime: START + t,
});
const buy = (id: string, t: number, item = 'i1'): PurchaseRef => ({
  eventId: id,
  userId: 'u',
  itemId: item,
  sessionId: 's',
  eventTime: START + t,
});
const p = (value: PendingPrediction): Input => ({ kind: 'prediction', value });
const q = (value: PurchaseRef): Input => ({ kind: 'purchase', value });
const shown = (decisions: JoinDecision[]) =>
  decisions.map((d) => [d.prediction.predictionId, d.label, d.revision, d.late]);

describe('outcome join', () => {
  const inputs = stream(11, 6000, START).sort((a, b) => timeOf(a) - timeOf(b));

  for (const match of ['same-item', 'same-session', 'any-item'] as MatchRule[]) {
    for (const attribution of ['last', 'first', 'all'] as Attribution[]) {
      it(`in event-time order equals the reference (${match}, ${attribution})`, () => {
        const config = { ...base, match, attribution };
        const driver = new Driver(config).feed(inputs).finish();
        const expected = reference(inputs, config);
        assert.equal(driver.decisions.length, expected.size, 'every prediction labeled exactly once');
        assert.deepEqual(driver.labels, expected);
        assert.ok(driver.join.counters.positives > 0 && driver.join.counters.negatives > 0);
        assert.equal(driver.join.openCount, 0);
        assert.equal(driver.join.counters.corrections, 0);
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
    const driver = new Driver(base).feed(jittered).finish();
    assert.deepEqual(driver.labels, reference(inputs, base));
    assert.equal(driver.join.counters.latePredictions + driver.join.counters.latePurchases, 0);
  });

  it('gives the same labels when purchases lag the predictions by three times the allowed lateness', () => {
    // What a replay, a slow purchase feed or a scorer catching up looks like: the lagging input's
    // progress is behind, and it holds the watermark back instead of turning positives into 0.
    const lag = 3 * base.allowedLatenessMs;
    const arrival = (e: Input) => timeOf(e) + (e.kind === 'purchase' ? lag : 0);
    const lagged = [...inputs].sort((a, b) => arrival(a) - arrival(b));
    const driver = new Driver(base).feed(lagged).finish();
    assert.deepEqual(driver.labels, reference(inputs, base));
    assert.equal(driver.join.counters.latePurchases + driver.join.counters.latePredictions, 0);
  });

  it('gives the live labels when a replay reads every prediction before any purchase', () => {
    const driver = new Driver(base);
    const predictions = inputs.filter((i) => i.kind === 'prediction');
    // Purchases have not started: their progress is nowhere, so nothing is decided.
    driver.feed(predictions, ['prediction']);
    assert.equal(driver.decisions.length, 0, 'no window closes while purchases are behind');
    driver.feed(
      inputs.filter((i) => i.kind === 'purchase'),
      ['purchase'],
    );
    driver.finish();
    assert.equal(driver.join.counters.latePurchases, 0);
    assert.deepEqual(driver.labels, reference(inputs, base));
  });

  it('matches a click that arrives behind the watermark against the purchases already attributed', () => {
    // The case that used to give 0: purchase at 10 s, watermark past it, then the click of 9 s.
    const driver = new Driver({ ...base, allowedLatenessMs: 1000 });
    driver.feed([q(buy('q1', 10_000))], []).at(13_000);
    assert.ok(driver.join.watermark > START + 10_000, 'the purchase is behind the watermark');
    driver.feed([p(click('c', 9_000))], []);
    assert.deepEqual(shown(driver.decisions), [['c', 1, 0, true]]);
    assert.equal(driver.join.counters.latePredictions, 1);
    assert.deepEqual(driver.decisions[0]?.purchase?.eventId, 'q1');
  });

  it('re-attributes under last: a late click takes the purchase, the click that loses it is corrected', () => {
    const driver = new Driver({ ...base, allowedLatenessMs: 1000 });
    driver.feed([p(click('a', 0)), q(buy('q', 30_000))], []).at(40_000);
    assert.deepEqual(shown(driver.decisions), [['a', 1, 0, false]]);
    // b (20 s) is later than a and before q: by `last`, q credits b, and a has nothing left.
    driver.feed([p(click('b', 20_000))], []);
    assert.deepEqual(shown(driver.decisions.slice(1)), [['b', 1, 0, true]]);
    // a's window is still open: it waits again, and at its end gets 0 as a correction.
    driver.at(11 * 60_000);
    const corrections = driver.decisions.filter((d) => d.revision > 0);
    assert.deepEqual(shown(corrections), [['a', 0, 1, false]]);
    assert.equal(driver.join.counters.corrections, 1);
    const inputsSoFar = [click('a', 0), buy('q', 30_000), click('b', 20_000)];
    const expected = reference(
      inputsSoFar.map((v) => ('predictionId' in v ? p(v) : q(v))),
      base,
    );
    assert.equal(driver.labels.get('a'), expected.get('a'));
    assert.equal(driver.labels.get('b'), expected.get('b'));
  });

  it('corrects a timeout when its purchase arrives after the window closed, within the retention', () => {
    const driver = new Driver({ ...base, allowedLatenessMs: 1000 });
    driver.feed([p(click('a', 0))], []).at(11 * 60_000);
    assert.deepEqual(shown(driver.decisions), [['a', 0, 0, false]]);
    driver.feed([q(buy('q', 5 * 60_000))], []);
    assert.deepEqual(shown(driver.decisions.slice(1)), [['a', 1, 1, true]]);
    assert.equal(driver.join.counters.latePurchases, 1);
    assert.equal(driver.join.counters.uncorrectable, 0);
    // Far beyond the retention the state is gone: counted as uncorrectable.
    driver.at(3 * 60 * 60_000).feed([q(buy('q-old', 60_000, 'gone'))], []);
    assert.equal(driver.join.counters.uncorrectable, 1);
  });

  it('gives every prediction of one click the same label (the served one and a shadow)', () => {
    const driver = new Driver(base).feed([
      p(click('served', 0, 'i1', 'c1')),
      p(click('shadow', 0, 'i1', 'c1')),
      q(buy('q1', 60_000)),
    ]);
    driver.finish();
    assert.deepEqual(Object.fromEntries(driver.labels), { served: 1, shadow: 1 });
  });

  it('ignores duplicate predictions and purchases, and counts them', () => {
    const doubled = inputs.flatMap((e, i) => (i % 7 === 0 ? [e, e] : [e]));
    const driver = new Driver(base).feed(doubled).finish();
    assert.deepEqual(driver.labels, reference(inputs, base));
    const c = driver.join.counters;
    assert.ok(c.duplicatePredictions > 0);
    assert.equal(c.duplicatePredictions + c.duplicatePurchases, doubled.length - inputs.length);
  });

  it('gives the decisions of one step in label-time order, so each stretch has both classes', () => {
    // Lateness longer than the stream: nothing is decided until the idle tick decides it all.
    const span = timeOf(inputs.at(-1)!) - timeOf(inputs[0]!);
    const config = { ...base, allowedLatenessMs: span + base.windowMs, liveLagMs: Infinity };
    const { decisions } = new Driver(config).feed(inputs).finish();
    const labelTimes = decisions.map((d) => labelTimeOf(d.purchase, d.prediction.clickTime, base.windowMs));
    assert.deepEqual(
      labelTimes,
      [...labelTimes].sort((a, b) => a - b),
    );
    const end = timeOf(inputs.at(-1)!);
    const steady = decisions.filter(
      (d, i) => labelTimes[i]! >= START + base.windowMs && labelTimes[i]! <= end,
    );
    const positives = (part: typeof decisions) => part.filter((d) => d.label === 1).length;
    const half = Math.floor(steady.length / 2);
    const [early, late] = [positives(steady.slice(0, half)), positives(steady.slice(half))];
    assert.ok(early > 0.6 * late && late > 0.6 * early, `positives in each half: ${early}, ${late}`);
  });

  it('closes windows by the clock only when every input is idle and the stream is live', () => {
    const join = new PartitionJoin(base);
    const now = Date.now();
    join.addPrediction({ ...click('p', 0), clickTime: now });
    join.setProgress('prediction', { time: now, idle: false }, now);
    const later = now + base.windowMs + base.allowedLatenessMs + base.idleLagMs + 1;
    assert.deepEqual(join.tick(later), [], 'the predictions are not idle');
    join.setProgress('prediction', { time: now, idle: true }, now + base.idleMs);
    assert.deepEqual(join.tick(later), [], 'purchases are not idle');
    join.setProgress('purchase', { time: -Infinity, idle: true }, now + base.idleMs);
    assert.deepEqual(shown(join.tick(later)), [['p', 0, 0, false]]);
  });

  it('never closes windows by the clock in a replay of history: a pause loses nothing', () => {
    // History from a month ago, read as fast as possible, pausing for hours in the middle.
    const old = stream(12, 3000, Date.now() - 30 * 24 * 3600_000).sort((a, b) => timeOf(a) - timeOf(b));
    const join = new PartitionJoin(base);
    const decisions: JoinDecision[] = [];
    const wall = () => Date.now();
    const read = (part: Input[]) => {
      for (const e of part) {
        decisions.push(
          ...(e.kind === 'prediction' ? join.addPrediction(e.value) : join.addPurchase(e.value)),
        );
        for (const input of ['prediction', 'purchase'] as const)
          if (Number.isFinite(join.times[input]))
            decisions.push(...join.setProgress(input, { time: join.times[input], idle: false }, wall()));
      }
    };
    read(old.slice(0, 1500));
    // The replay pauses: both inputs idle, hours of wall clock pass.
    for (const input of ['prediction', 'purchase'] as const)
      decisions.push(...join.setProgress(input, { time: join.times[input], idle: true }, wall()));
    decisions.push(...join.tick(wall() + 6 * 3600_000));
    read(old.slice(1500));
    for (const input of ['prediction', 'purchase'] as const)
      decisions.push(
        ...join.setProgress(input, { time: join.times[input] + 2 * base.windowMs, idle: false }, wall()),
      );
    assert.equal(join.counters.latePredictions + join.counters.latePurchases, 0);
    const labels = new Map(decisions.map((d) => [d.prediction.predictionId, d.label]));
    assert.deepEqual(labels, reference(old, base));
  });

  it('in a replay an idle input still holds the other back: its next records may be older', () => {
    // A fast replay writes a batch's clicks and purchases together; the purchase stage was idle
    // at the last pause and the clicks were scored first.
    const join = new PartitionJoin(base);
    const wall = Date.now();
    const decisions: JoinDecision[] = [...join.addPrediction(click('p', 0))];
    decisions.push(...join.setProgress('purchase', { time: START - 3_600_000, idle: true }, wall));
    decisions.push(...join.setProgress('prediction', { time: START + 3 * base.windowMs, idle: false }, wall));
    assert.equal(decisions.length, 0, 'nothing is decided past the idle purchases');
    decisions.push(...join.addPurchase(buy('b', 5 * 60_000)));
    decisions.push(...join.setProgress('purchase', { time: START + 3 * base.windowMs, idle: false }, wall));
    assert.deepEqual(shown(decisions), [['p', 1, 0, false]]);
    assert.equal(join.counters.latePurchases, 0);
  });

  it('live, an idle input does not hold the other back', () => {
    const join = new PartitionJoin(base);
    const now = Date.now();
    join.addPrediction({ ...click('p', 0), clickTime: now });
    join.setProgress('purchase', { time: now - 3_600_000, idle: true }, now);
    const later = now + 3 * base.windowMs;
    assert.deepEqual(shown(join.setProgress('prediction', { time: later, idle: false }, later)), [
      ['p', 0, 0, false],
    ]);
  });

  it('restored from its journal, continues exactly as if never stopped', () => {
    // A durable copy kept only from journal calls, as the joiner's Redis state is.
    const clicks = new Map<string, StoredClick>();
    const purchases = new Map<string, StoredPurchase>();
    const seen = { prediction: new Map<string, number>(), purchase: new Map<string, number>() };
    const journal: JoinJournal = {
      predictionAdded: () => undefined,
      clickChanged: (c) => clicks.set(c.eventId, c),
      clickForgotten: (c) => clicks.delete(c.eventId),
      purchaseChanged: (c) => purchases.set(c.ref.eventId, c),
      purchaseForgotten: (id) => purchases.delete(id),
      seen: (input, id, time) => seen[input].set(id, time),
      forgotten: (input, id) => seen[input].delete(id),
    };
    const config = { ...base, attribution: 'all' as const };
    const cut = Math.floor(inputs.length * 0.6);
    const first = new Driver(config, journal).feed(inputs.slice(0, cut));
    const restored = new Driver(config);
    restored.join.restore({
      ...first.join.snapshotPosition(),
      clicks: [...clicks.values()],
      purchases: [...purchases.values()],
      seenPredictions: [...seen.prediction],
      seenPurchases: [...seen.purchase],
    });
    assert.equal(restored.join.openCount, first.join.openCount);
    // Replayed input (a duplicate after the restart) is recognised, then the rest continues.
    restored.feed(inputs.slice(cut - 50, cut));
    assert.deepEqual(restored.decisions, []);
    restored.feed(inputs.slice(cut)).finish();
    const uninterrupted = new Driver(config).feed(inputs).finish();
    assert.equal(first.decisions.length + restored.decisions.length, uninterrupted.decisions.length);
    assert.deepEqual(new Map([...first.labels, ...restored.labels]), uninterrupted.labels);
    assert.equal(restored.join.counters.positives, uninterrupted.join.counters.positives);
    assert.ok(purchases.size < inputs.length / 5, 'old purchases were forgotten');
  });

  it("returns each step's changes: a journal per takeChanges, each holding only what came after", () => {
    const logs: string[][] = [];
    const newJournal = (): JoinJournal & { log: string[] } => {
      const log: string[] = [];
      logs.push(log);
      const note = (what: string) => () => void log.push(what);
      return {
        log,
        predictionAdded: (prediction) => void log.push(`added ${prediction.predictionId}`),
        clickChanged: note('click'),
        clickForgotten: note('click forgotten'),
        purchaseChanged: note('purchase'),
        purchaseForgotten: note('purchase forgotten'),
        seen: (input, id) => void log.push(`seen ${id}`),
        forgotten: note('forgotten'),
      };
    };
    const join = new PartitionJoin(base, newJournal);
    join.addPrediction(click('c1', 0));
    const first = join.takeChanges();
    assert.deepEqual(first.log, ['seen c1', 'added c1', 'click']);
    join.addPurchase(buy('q1', 60_000));
    const second = join.takeChanges();
    assert.deepEqual(second.log, ['seen q1', 'purchase']);
    assert.deepEqual(first.log, ['seen c1', 'added c1', 'click'], 'a journal taken is not written again');
    assert.deepEqual(join.takeChanges().log, [], 'nothing since');
    assert.equal(logs.length, 4);
  });
});
