// The outcome join (pure, one partition): clicks, known by their predictions, wait for purchases
// inside their attribution window; the watermark (event time up to which every input is complete,
// minus the allowed lateness) decides when a purchase is attributed and a window closed. A label
// is a function of the events alone, never of arrival order or of which service lagged.
//
// Labels (what the brute-force reference in test/helpers/join-reference.ts computes):
// - A purchase at time q matches a click at time c when c <= q <= c + window and the match rule
//   holds (same item / same session / any item of the user).
// - Each purchase credits the latest matching click (`last`), the earliest (`first`), or every
//   one (`all`), among all the user's clicks, whether or not they were credited before (ties by
//   the click's event id). A click is labeled 1 when some purchase credits it, else 0. Every
//   prediction of a click (the served one, a shadow's) gets the click's label.
// Completeness (where the watermark comes from):
// - The service tells each input's progress: the event time up to which it is complete (for
//   predictions, how far the scorer has scored the click topic; for purchases, how far they were
//   repartitioned), and whether it is idle (caught up and quiet). The watermark is the least
//   progress of the inputs that are not idle (of both, when both are, or when the stream is not
//   live: in a replay an idle input's next records can be older than the other's progress),
//   minus the allowed lateness; it never moves back. So an input that lags, or a scorer that is
//   down, holds the labels back instead of changing them.
// - When every input is idle and the stream is live (its progress was within `liveLagMs` of the
//   wall clock when it last moved), the wall clock closes the windows: the watermark moves to
//   wall − idleLag − allowed lateness. A replay of history (far behind the clock) is never moved
//   by the clock, so a pause in a replay loses nothing.
// Decisions:
// - A purchase is attributed once the watermark passes it (every click before it is in); a click
//   credited then is decided 1. A click whose window end is behind the watermark is decided 0.
// - Late input (event time behind the watermark: disorder beyond the allowed lateness within its
//   own source partition) is still joined exactly: a late click is matched against the purchases
//   held, taking credits by the rule (a click that loses its only credit gets 0 again), and a late
//   purchase credits its click. Where that changes a label already published, the decision is a
//   correction: the same prediction with the new label and the next `revision`. Decided clicks
//   and attributed purchases are held for `retentionMs` after their window could matter; input
//   later than that is joined with what is still held and counted as uncorrectable.
// - Duplicates (same prediction id, same purchase event id) are ignored and counted, while ids
//   are remembered (two windows and the retention behind the watermark; labels have
//   deterministic ids, so an older duplicate is caught downstream).
// - Decisions of one step leave in label-time order (the purchase, or the window's end).
// - Every change of state is reported to the join's journal, which the service takes after each
//   step (`takeChanges`) to persist the state and `restore` it after a restart.
import { MinHeap } from '../common/min-heap.js';
import { JoinStore, refOf, stored, type Click } from './join-store.js';
import {
  DEFAULT_JOIN,
  emptyCounters,
  labelTimeOf,
  type InputProgress,
  type JoinConfig,
  type JoinCounters,
  type JoinDecision,
  type JoinInput,
  type JoinJournal,
  type JoinPosition,
  type JoinSnapshot,
  type PendingPrediction,
  type PurchaseRef,
  UNKEPT_JOURNAL,
} from './join-types.js';

export * from './join-types.js';

export class PartitionJoin<J extends JoinJournal = JoinJournal> {
  /** Open clicks by window end (lazy: entries of decided clicks are skipped). */
  private readonly deadlines = new MinHeap<{ end: number; id: string }>(
    (a, b) => a.end < b.end || (a.end === b.end && a.id < b.id),
  );
  /** Purchases not attributed yet (not behind the watermark), earliest first. */
  private readonly waiting = new MinHeap<PurchaseRef>(
    (a, b) => a.eventTime < b.eventTime || (a.eventTime === b.eventTime && a.eventId < b.eventId),
  );
  private readonly position: JoinPosition = {
    watermark: -Infinity,
    progress: {
      prediction: { time: -Infinity, idle: false },
      purchase: { time: -Infinity, idle: false },
    },
    streamTimes: { prediction: -Infinity, purchase: -Infinity },
    lastAdvance: null,
    lastPrune: -Infinity,
    counters: emptyCounters(),
  };
  private open = 0;
  /** Decisions made in the current step (emptied when a step returns). */
  private out: JoinDecision[] = [];
  private journal: J;

  private readonly store: JoinStore;

  /** `newJournal` collects the changes of each step (takeChanges); by default they are not kept. */
  constructor(
    readonly config: JoinConfig = DEFAULT_JOIN,
    private readonly newJournal: () => J = (() => UNKEPT_JOURNAL) as () => J,
  ) {
    this.journal = newJournal();
    this.store = new JoinStore(config, () => this.journal);
  }

  /** The changes since the last call, what a durable copy must apply; collection starts over. */
  takeChanges(): J {
    const changes = this.journal;
    this.journal = this.newJournal();
    return changes;
  }

  /** Event time up to which every input is taken to have arrived. */
  get watermark(): number {
    return this.position.watermark;
  }

  get counters(): JoinCounters {
    return this.position.counters;
  }

  /** The latest event time read on each input. */
  get times(): Readonly<Record<JoinInput, number>> {
    return this.position.streamTimes;
  }

  progressOf(input: JoinInput): Readonly<InputProgress> {
    return this.position.progress[input];
  }

  /** The position to persist with the state (a copy). */
  snapshotPosition(): JoinPosition {
    const p = this.position;
    return {
      watermark: p.watermark,
      progress: { prediction: { ...p.progress.prediction }, purchase: { ...p.progress.purchase } },
      streamTimes: { ...p.streamTimes },
      lastAdvance: p.lastAdvance && { ...p.lastAdvance },
      lastPrune: p.lastPrune,
      counters: { ...p.counters },
    };
  }

  /** Clicks not decided yet. */
  get openCount(): number {
    return this.open;
  }

  /** Clicks held (open, or decided and kept for corrections). */
  get heldClicks(): number {
    return this.store.clicks.size;
  }

  /** Restores a persisted state (the journal is not told: the state is already durable). */
  restore(snapshot: JoinSnapshot): void {
    for (const stored of snapshot.clicks) {
      const click: Click = { ...stored, refs: new Map() };
      for (const p of stored.predictions)
        click.refs.set(p.predictionId, { ...refOf(stored), predictionId: p.predictionId });
      this.index(click);
    }
    for (const { ref, credited } of snapshot.purchases) {
      if (credited === null) this.waiting.push(ref);
      else this.store.hold({ ref, credited });
    }
    for (const [id, time] of snapshot.seenPredictions) this.store.seenPredictions.set(id, time);
    for (const [id, time] of snapshot.seenPurchases) this.store.seenPurchases.set(id, time);
    Object.assign(this.position, {
      watermark: snapshot.watermark,
      progress: snapshot.progress,
      streamTimes: snapshot.streamTimes,
      lastAdvance: snapshot.lastAdvance,
      lastPrune: snapshot.lastPrune,
      counters: { ...emptyCounters(), ...snapshot.counters },
    });
  }

  addPrediction(prediction: PendingPrediction): JoinDecision[] {
    if (!this.store.firstSight('prediction', prediction.predictionId, prediction.clickTime)) {
      this.counters.duplicatePredictions++;
      return [];
    }
    this.counters.predictions++;
    this.journal.predictionAdded(prediction);
    this.observe('prediction', prediction.clickTime);
    const known = this.store.clicks.get(prediction.eventId);
    if (known) {
      // Another prediction of a click already held: it shares the click's label.
      known.refs.set(prediction.predictionId, prediction);
      known.predictions.push({ predictionId: prediction.predictionId, label: null, revision: 0 });
      if (known.decided) this.publish(known, known.label as 0 | 1, false);
      this.changed(known);
      return this.flush();
    }
    const click: Click = {
      eventId: prediction.eventId,
      userId: prediction.userId,
      itemId: prediction.itemId,
      sessionId: prediction.sessionId,
      clickTime: prediction.clickTime,
      decided: false,
      label: null,
      credits: [],
      predictions: [{ predictionId: prediction.predictionId, label: null, revision: 0 }],
      refs: new Map([[prediction.predictionId, prediction]]),
    };
    this.index(click);
    const w = this.watermark;
    if (click.clickTime < w) {
      // Behind the watermark: purchases it could match may be attributed already.
      this.counters.latePredictions++;
      if (this.beyondRetention(click.clickTime)) this.counters.uncorrectable++;
      this.joinLateClick(click);
    }
    this.changed(click);
    return this.flush();
  }

  addPurchase(purchase: PurchaseRef): JoinDecision[] {
    if (!this.store.firstSight('purchase', purchase.eventId, purchase.eventTime)) {
      this.counters.duplicatePurchases++;
      return [];
    }
    this.counters.purchases++;
    this.observe('purchase', purchase.eventTime);
    if (purchase.eventTime < this.watermark) {
      this.counters.latePurchases++;
      if (this.beyondRetention(purchase.eventTime)) this.counters.uncorrectable++;
      const credited = this.attribute(purchase, true);
      if (credited.length === 0) this.counters.lateUnmatchedPurchases++;
    } else {
      this.waiting.push(purchase);
      this.journal.purchaseChanged({ ref: purchase, credited: null });
    }
    return this.flush();
  }

  /** An input's progress (see the file comment); moves the watermark when it can. */
  setProgress(input: JoinInput, progress: InputProgress, wallNow: number): JoinDecision[] {
    const current = this.position.progress[input];
    const time = Math.max(current.time, progress.time);
    if (time > current.time) this.position.lastAdvance = { eventTime: time, wallTime: wallNow };
    this.position.progress[input] = { time, idle: progress.idle };
    // Live, an idle input does not hold the other back: what it writes next is newer than the
    // watermark. In a replay it may not be (a batch's purchases taken after its clicks were
    // scored would arrive late), so there both count until both are idle; then the lesser.
    const inputs = ['prediction', 'purchase'] as const;
    const active = inputs.filter((i) => !this.position.progress[i].idle);
    const counted = this.live && active.length > 0 ? active : inputs;
    const complete = Math.min(...counted.map((i) => this.position.progress[i].time));
    this.moveWatermark(complete - this.config.allowedLatenessMs);
    return this.flush();
  }

  /** Whether the stream was live when its progress last moved (see the file comment). */
  get live(): boolean {
    const last = this.position.lastAdvance;
    return last !== null && last.wallTime - last.eventTime <= this.config.liveLagMs;
  }

  /** Wall-clock tick: when every input is idle and the stream live, the clock closes windows. */
  tick(wallNow: number): JoinDecision[] {
    const { progress } = this.position;
    if (progress.prediction.idle && progress.purchase.idle && this.live)
      this.moveWatermark(wallNow - this.config.idleLagMs - this.config.allowedLatenessMs);
    return this.flush();
  }

  /** The step's decisions in label-time order (see the file comment). */
  private flush(): JoinDecision[] {
    const out = this.out;
    this.out = [];
    if (out.length < 2) return out;
    // By click time, a watermark that jumps far would put its newest positives after all its
    // negatives, and a trainer's holdout of the newest examples would see one class.
    const labelTime = (d: JoinDecision) =>
      labelTimeOf(d.purchase, d.prediction.clickTime, this.config.windowMs);
    return out.sort(
      (a, b) =>
        labelTime(a) - labelTime(b) ||
        a.prediction.clickTime - b.prediction.clickTime ||
        (a.prediction.predictionId < b.prediction.predictionId ? -1 : 1) ||
        a.revision - b.revision,
    );
  }

  private observe(input: JoinInput, eventTime: number): void {
    if (eventTime > this.position.streamTimes[input]) this.position.streamTimes[input] = eventTime;
  }

  private beyondRetention(eventTime: number): boolean {
    return eventTime + this.config.windowMs + this.config.retentionMs < this.watermark;
  }

  private index(click: Click): void {
    this.store.addClick(click);
    if (!click.decided) {
      this.open++;
      this.deadlines.push({ end: click.clickTime + this.config.windowMs, id: click.eventId });
    }
  }

  private changed(click: Click): void {
    this.journal.clickChanged(stored(click));
  }

  /** Attribute purchases and close windows the new watermark passed. */
  private moveWatermark(to: number): void {
    if (!(to > this.position.watermark)) return;
    this.position.watermark = to;
    // Purchases first, in event-time order: a purchase at q competes with windows ending at >= q.
    while ((this.waiting.peek()?.eventTime ?? Infinity) < to) {
      const purchase = this.waiting.pop() as PurchaseRef;
      if (this.attribute(purchase, false).length === 0) this.counters.unattributedPurchases++;
    }
    while ((this.deadlines.peek()?.end ?? Infinity) < to) {
      const { id } = this.deadlines.pop() as { id: string };
      const click = this.store.clicks.get(id);
      if (click && !click.decided) this.decide(click, 0, false);
    }
    if (to - this.position.lastPrune >= this.config.windowMs / 10) {
      this.position.lastPrune = to;
      this.store.prune(to);
    }
  }

  /** A purchase behind the watermark: credits its clicks (deciding or correcting them). */
  private attribute(purchase: PurchaseRef, late: boolean): Click[] {
    const credited = this.store.creditOf(purchase);
    this.store.hold({ ref: purchase, credited: credited.map((c) => c.eventId) });
    this.journal.purchaseChanged({ ref: purchase, credited: credited.map((c) => c.eventId) });
    for (const click of credited) {
      this.store.addCredit(click, purchase);
      if (!click.decided || click.label !== 1) this.decide(click, 1, late);
      else this.changed(click);
    }
    return credited;
  }

  /** A click that arrived behind the watermark: takes the credits the rule gives it. */
  private joinLateClick(click: Click): void {
    const candidates = this.store.heldMatching(click);
    const losers = new Set<Click>();
    for (const purchase of candidates) {
      const now = this.store.creditOf(purchase.ref).map((c) => c.eventId);
      if (!now.includes(click.eventId)) continue;
      for (const id of purchase.credited) {
        if (now.includes(id)) continue;
        const loser = this.store.clicks.get(id);
        if (!loser) continue;
        loser.credits = loser.credits.filter((q) => q !== purchase.ref.eventId);
        losers.add(loser);
      }
      purchase.credited = now;
      this.journal.purchaseChanged({ ref: purchase.ref, credited: now });
      this.store.addCredit(click, purchase.ref);
    }
    if (click.credits.length > 0) this.decide(click, 1, true);
    else if (click.clickTime + this.config.windowMs < this.watermark) this.decide(click, 0, true);
    for (const loser of losers) {
      if (loser.credits.length > 0) this.changed(loser);
      else if (loser.clickTime + this.config.windowMs < this.watermark) this.decide(loser, 0, true);
      else {
        // Its window is still open: it waits again (a later purchase may credit it).
        loser.decided = false;
        loser.label = null;
        this.counters.positives--;
        this.open++;
        this.deadlines.push({ end: loser.clickTime + this.config.windowMs, id: loser.eventId });
        this.changed(loser);
      }
    }
  }

  private decide(click: Click, label: 0 | 1, late: boolean): void {
    if (!click.decided) this.open--;
    else if (click.label === 1) this.counters.positives--;
    else if (click.label === 0) this.counters.negatives--;
    click.decided = true;
    click.label = label;
    if (label === 1) this.counters.positives++;
    else this.counters.negatives++;
    this.publish(click, label, late);
    this.changed(click);
  }

  /** Decisions for every prediction of the click whose published label differs from `label`. */
  private publish(click: Click, label: 0 | 1, late: boolean): void {
    const firstCredit = click.credits[0];
    const purchase =
      label === 1 && firstCredit !== undefined ? (this.store.held.get(firstCredit)?.ref ?? null) : null;
    for (const p of click.predictions) {
      if (p.label === label) continue;
      const revision = p.label === null ? p.revision : p.revision + 1;
      if (p.label !== null) this.counters.corrections++;
      p.label = label;
      p.revision = revision;
      this.out.push({
        prediction: click.refs.get(p.predictionId) as PendingPrediction,
        label,
        source: label === 1 ? 'outcome' : 'timeout',
        purchase,
        late,
        revision,
      });
    }
  }
}
