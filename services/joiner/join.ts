// The outcome join (pure, one partition): predictions wait for a purchase inside their
// attribution window; the partition's watermark (event time, minus the allowed lateness)
// decides when a window is closed. Decisions depend on event times only, never on arrival order
// within the allowed lateness, so replaying a day gives the labels it gave live.
//
// Rules:
// - A purchase at time q matches an open prediction of click time c when c <= q <= c + window
//   and the match rule holds (same item / same session / any item of the user).
// - A purchase is attributed once the watermark reaches q (every click before it has arrived, up
//   to the allowed lateness): to the latest matching click (`last`), the earliest (`first`), or
//   every matching click (`all`). Labeled predictions are not matched again.
// - A prediction whose window end c + window is behind the watermark gets label 0 (`timeout`).
// - Late input (event time already behind the watermark) is still used where it can be: a late
//   purchase matches predictions whose window is still open; a late prediction is decided at
//   once against the purchases still held. Either way it is counted as late; nothing is dropped
//   silently.
// - Duplicates (same prediction id, same purchase event id) are ignored and counted, for as long
//   as ids are remembered: two windows behind the watermark (label ids are deterministic, so a
//   duplicate older than that is caught downstream).
// - Two inputs: stream time is the minimum of the two inputs' latest event times, so a replay
//   that reads one topic ahead of the other still decides as live did (an input that is caught
//   up, i.e. was at the end of its partition when last read, does not hold the other back). The
//   watermark never moves backwards.
// - Idle partitions: when both inputs are caught up and no input arrived for `idleMs` of
//   wall-clock time, the watermark moves to (wall clock − idleLagMs − allowed lateness), so an
//   idle partition's windows still close. A slow reader with a backlog is not idle.
// - Decisions of one step leave in label-time order (the purchase, or the window's end).
// - Every change of state is reported to an optional journal, so a service can persist the
//   state (pending predictions, purchases, seen ids) and `restore` it after a restart.

import { MinHeap } from '../common/min-heap.js';

export type MatchRule = 'same-item' | 'same-session' | 'any-item';
export type Attribution = 'last' | 'first' | 'all';

export interface JoinConfig {
  windowMs: number;
  allowedLatenessMs: number;
  match: MatchRule;
  attribution: Attribution;
  idleMs: number;
  idleLagMs: number;
}

export const DEFAULT_JOIN: JoinConfig = {
  windowMs: 30 * 60 * 1000,
  allowedLatenessMs: 60 * 1000,
  match: 'same-item',
  attribution: 'last',
  idleMs: 30 * 1000,
  idleLagMs: 5 * 1000,
};

export interface PendingPrediction {
  predictionId: string;
  userId: string;
  itemId: string;
  sessionId: string;
  clickTime: number;
}

export interface PurchaseRef {
  eventId: string;
  userId: string;
  itemId: string;
  sessionId: string | null;
  eventTime: number;
}

export interface JoinDecision<P extends PendingPrediction> {
  prediction: P;
  label: 0 | 1;
  source: 'outcome' | 'timeout';
  purchase: PurchaseRef | null;
  late: boolean;
}

/** When a decision's label became knowable in event time: the purchase, or the window's end. */
export function labelTimeOf(purchase: PurchaseRef | null, clickTime: number, windowMs: number): number {
  return purchase ? purchase.eventTime : clickTime + windowMs;
}

export interface JoinCounters {
  predictions: number;
  purchases: number;
  duplicatePredictions: number;
  duplicatePurchases: number;
  latePredictions: number;
  latePurchases: number;
  /** Late purchases that found no open prediction: logged, and counted here. */
  lateUnmatchedPurchases: number;
  unattributedPurchases: number;
  positives: number;
  negatives: number;
}

export type JoinInput = 'prediction' | 'purchase';

/** Receives every change of the join state, in order; what a durable copy must apply. */
export interface JoinJournal<P extends PendingPrediction> {
  opened(prediction: P): void;
  closed(predictionId: string): void;
  purchaseAdded(purchase: PurchaseRef): void;
  purchaseForgotten(eventId: string): void;
  seen(input: JoinInput, id: string, eventTime: number): void;
  forgotten(input: JoinInput, id: string): void;
}

/** What `restore` needs: the persisted state of one partition. */
export interface JoinSnapshot<P extends PendingPrediction> {
  open: P[];
  purchases: PurchaseRef[];
  seenPredictions: [string, number][];
  seenPurchases: [string, number][];
  streamTimes: Record<JoinInput, number>;
  watermark: number;
  lastPrune: number;
  counters: JoinCounters;
}

export class PartitionJoin<P extends PendingPrediction> {
  private readonly open = new Map<string, P>();
  private readonly openByUser = new Map<string, Set<string>>();
  /** Open predictions by window end (lazy: entries of decided predictions are skipped). */
  private readonly deadlines = new MinHeap<{ end: number; id: string }>(
    (a, b) => a.end < b.end || (a.end === b.end && a.id < b.id),
  );
  /** Purchases not yet attributed (event time not yet behind the watermark), earliest first. */
  private readonly waiting = new MinHeap<PurchaseRef>(
    (a, b) => a.eventTime < b.eventTime || (a.eventTime === b.eventTime && a.eventId < b.eventId),
  );
  private lastPrune = -Infinity;
  /** Attributed purchases, kept for one window so late predictions can still match them. */
  private readonly held: PurchaseRef[] = [];
  /** Ids seen, with their event time, forgotten two windows behind the watermark. */
  private readonly seenPredictions = new Map<string, number>();
  private readonly seenPurchases = new Map<string, number>();
  /** Latest event time per input, and whether the input was at the end of its partition. */
  private readonly streamTimes: Record<JoinInput, number> = { prediction: -Infinity, purchase: -Infinity };
  private readonly caughtUp: Record<JoinInput, boolean> = { prediction: true, purchase: true };
  private mark = -Infinity;
  private lastInputAt = 0;
  journal: JoinJournal<P> | null = null;
  readonly counters: JoinCounters = {
    predictions: 0,
    purchases: 0,
    duplicatePredictions: 0,
    duplicatePurchases: 0,
    latePredictions: 0,
    latePurchases: 0,
    lateUnmatchedPurchases: 0,
    unattributedPurchases: 0,
    positives: 0,
    negatives: 0,
  };

  constructor(readonly config: JoinConfig = DEFAULT_JOIN) {}

  /** Event time up to which every input is taken to have arrived. */
  get watermark(): number {
    return this.mark;
  }

  /** The latest event time seen on each input. */
  get times(): Readonly<Record<JoinInput, number>> {
    return this.streamTimes;
  }

  isCaughtUp(input: JoinInput): boolean {
    return this.caughtUp[input];
  }

  /** Whether `input` was at the end of its partition when last read (see the file comment). */
  setCaughtUp(input: JoinInput, caughtUp: boolean): JoinDecision<P>[] {
    if (this.caughtUp[input] === caughtUp) return [];
    this.caughtUp[input] = caughtUp;
    return this.advance();
  }

  /** Restores a persisted state (the journal is not told: the state is already durable). */
  restore(snapshot: JoinSnapshot<P>, wallNow: number): void {
    for (const prediction of snapshot.open) this.openPrediction(prediction);
    for (const purchase of snapshot.purchases) {
      if (purchase.eventTime <= snapshot.watermark) this.held.push(purchase);
      else this.waiting.push(purchase);
    }
    for (const [id, time] of snapshot.seenPredictions) this.seenPredictions.set(id, time);
    for (const [id, time] of snapshot.seenPurchases) this.seenPurchases.set(id, time);
    Object.assign(this.streamTimes, snapshot.streamTimes);
    Object.assign(this.counters, snapshot.counters);
    this.mark = snapshot.watermark;
    this.lastPrune = snapshot.lastPrune;
    this.lastInputAt = wallNow;
  }

  /** The pruning position, persisted with the state so a restored join prunes as the live one. */
  get pruneMark(): number {
    return this.lastPrune;
  }

  get openCount(): number {
    return this.open.size;
  }

  addPrediction(prediction: P, wallNow: number): JoinDecision<P>[] {
    if (!this.firstSight('prediction', prediction.predictionId, prediction.clickTime, wallNow)) {
      this.counters.duplicatePredictions++;
      return [];
    }
    this.counters.predictions++;
    const decisions: JoinDecision<P>[] = [];
    if (prediction.clickTime + this.config.windowMs < this.watermark) {
      // Its window closed before it arrived: decide now against what is still held.
      this.counters.latePredictions++;
      const purchase = [...this.held, ...this.waiting.toArray()]
        .filter((q) => this.matches(prediction, q))
        .sort((a, b) => a.eventTime - b.eventTime)[0];
      decisions.push(this.decide(prediction, purchase ?? null, true, false));
    } else {
      this.openPrediction(prediction);
      this.journal?.opened(prediction);
    }
    decisions.push(...this.observe('prediction', prediction.clickTime));
    return decisions;
  }

  private openPrediction(prediction: P): void {
    this.open.set(prediction.predictionId, prediction);
    this.deadlines.push({ end: prediction.clickTime + this.config.windowMs, id: prediction.predictionId });
    let ids = this.openByUser.get(prediction.userId);
    if (!ids) this.openByUser.set(prediction.userId, (ids = new Set()));
    ids.add(prediction.predictionId);
  }

  addPurchase(purchase: PurchaseRef, wallNow: number): JoinDecision<P>[] {
    if (!this.firstSight('purchase', purchase.eventId, purchase.eventTime, wallNow)) {
      this.counters.duplicatePurchases++;
      return [];
    }
    this.counters.purchases++;
    this.journal?.purchaseAdded(purchase);
    const decisions: JoinDecision<P>[] = [];
    if (purchase.eventTime < this.watermark) {
      this.counters.latePurchases++;
      const attributed = this.attribute(purchase, true);
      if (attributed.length === 0) this.counters.lateUnmatchedPurchases++;
      decisions.push(...attributed);
      this.held.push(purchase);
    } else {
      this.waiting.push(purchase);
    }
    decisions.push(...this.observe('purchase', purchase.eventTime));
    return decisions;
  }

  /** Records an input id; false when it was seen already (a duplicate). */
  private firstSight(input: JoinInput, id: string, eventTime: number, wallNow: number): boolean {
    const seen = input === 'prediction' ? this.seenPredictions : this.seenPurchases;
    if (seen.has(id)) return false;
    seen.set(id, eventTime);
    this.journal?.seen(input, id, eventTime);
    this.lastInputAt = wallNow;
    return true;
  }

  /** Wall-clock tick: closes windows of an idle partition (see the file comment). */
  tick(wallNow: number): JoinDecision<P>[] {
    if (this.lastInputAt === 0 || wallNow - this.lastInputAt < this.config.idleMs) return [];
    if (!this.caughtUp.prediction || !this.caughtUp.purchase) return [];
    return this.moveWatermark(wallNow - this.config.idleLagMs - this.config.allowedLatenessMs);
  }

  /** An input's stream time moves to `eventTime` if later. */
  private observe(input: JoinInput, eventTime: number): JoinDecision<P>[] {
    if (eventTime <= this.streamTimes[input]) return [];
    this.streamTimes[input] = eventTime;
    return this.advance();
  }

  /** Recompute stream time from both inputs (see the file comment) and move the watermark. */
  private advance(): JoinDecision<P>[] {
    const { prediction, purchase } = this.streamTimes;
    let streamTime = Math.min(
      this.caughtUp.prediction ? Infinity : prediction,
      this.caughtUp.purchase ? Infinity : purchase,
    );
    if (streamTime === Infinity) streamTime = Math.max(prediction, purchase);
    return this.moveWatermark(streamTime - this.config.allowedLatenessMs);
  }

  /** Attribute purchases and close windows the new watermark passed. */
  private moveWatermark(to: number): JoinDecision<P>[] {
    if (!(to > this.mark)) return [];
    this.mark = to;
    const w = to;
    const decisions: JoinDecision<P>[] = [];
    // Purchases first, in event-time order: a purchase at q competes with windows ending at >= q.
    while ((this.waiting.peek()?.eventTime ?? Infinity) <= w) {
      const purchase = this.waiting.pop() as PurchaseRef;
      const attributed = this.attribute(purchase, false);
      if (attributed.length === 0) this.counters.unattributedPurchases++;
      decisions.push(...attributed);
      this.held.push(purchase);
    }
    while ((this.deadlines.peek()?.end ?? Infinity) < w) {
      const { id } = this.deadlines.pop() as { id: string };
      const prediction = this.open.get(id);
      if (prediction) decisions.push(this.decide(prediction, null, false, true));
    }
    // Held purchases matter only to clicks within one window before them; seen ids are kept two
    // windows. Pruned every tenth of a window of event time, not per event.
    if (w - this.lastPrune >= this.config.windowMs / 10) {
      this.lastPrune = w;
      const keepAfter = w - this.config.windowMs;
      let kept = 0;
      for (const purchase of this.held) {
        if (purchase.eventTime >= keepAfter) this.held[kept++] = purchase;
        else this.journal?.purchaseForgotten(purchase.eventId);
      }
      this.held.length = kept;
      const forgetBefore = w - 2 * this.config.windowMs;
      for (const [input, seen] of [
        ['prediction', this.seenPredictions],
        ['purchase', this.seenPurchases],
      ] as const) {
        for (const [id, time] of seen) {
          if (time >= forgetBefore) continue;
          seen.delete(id);
          this.journal?.forgotten(input, id);
        }
      }
    }
    // In label-time order, so every stretch of the output has the class mix of its time. By click
    // time, a watermark that jumps far would put its newest positives after all its negatives,
    // and a trainer's holdout of the newest examples would see one class.
    const labelTime = (d: JoinDecision<P>) =>
      labelTimeOf(d.purchase, d.prediction.clickTime, this.config.windowMs);
    return decisions.sort(
      (a, b) =>
        labelTime(a) - labelTime(b) ||
        a.prediction.clickTime - b.prediction.clickTime ||
        a.prediction.predictionId.localeCompare(b.prediction.predictionId),
    );
  }

  private attribute(purchase: PurchaseRef, late: boolean): JoinDecision<P>[] {
    const candidates = [...(this.openByUser.get(purchase.userId) ?? [])]
      .map((id) => this.open.get(id) as P)
      .filter((p) => this.matches(p, purchase))
      .sort((a, b) => a.clickTime - b.clickTime || a.predictionId.localeCompare(b.predictionId));
    if (candidates.length === 0) return [];
    const chosen =
      this.config.attribution === 'all'
        ? candidates
        : this.config.attribution === 'first'
          ? [candidates[0] as P]
          : [candidates.at(-1) as P];
    return chosen.map((p) => this.decide(p, purchase, late, true));
  }

  private matches(prediction: P, purchase: PurchaseRef): boolean {
    if (prediction.userId !== purchase.userId) return false;
    if (
      purchase.eventTime < prediction.clickTime ||
      purchase.eventTime > prediction.clickTime + this.config.windowMs
    )
      return false;
    if (this.config.match === 'same-item') return prediction.itemId === purchase.itemId;
    if (this.config.match === 'same-session')
      return purchase.sessionId !== null && prediction.sessionId === purchase.sessionId;
    return true;
  }

  private decide(
    prediction: P,
    purchase: PurchaseRef | null,
    late: boolean,
    wasOpen: boolean,
  ): JoinDecision<P> {
    if (wasOpen) this.journal?.closed(prediction.predictionId);
    this.open.delete(prediction.predictionId);
    const ids = this.openByUser.get(prediction.userId);
    ids?.delete(prediction.predictionId);
    if (ids && ids.size === 0) this.openByUser.delete(prediction.userId);
    if (purchase) this.counters.positives++;
    else this.counters.negatives++;
    return { prediction, label: purchase ? 1 : 0, source: purchase ? 'outcome' : 'timeout', purchase, late };
  }
}
