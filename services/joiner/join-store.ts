// What one partition's join holds: the clicks (open, or decided and kept for corrections) and
// the attributed purchases, indexed by user, and the ids seen (duplicates); which clicks a purchase
// credits by the attribution rule; and the forgetting of what the retention no longer needs.
import type {
  JoinConfig,
  JoinInput,
  JoinJournal,
  PendingPrediction,
  PurchaseRef,
  StoredClick,
} from './join-types.js';

export interface Click extends StoredClick {
  /** The pending refs of its predictions, by id. */
  refs: Map<string, PendingPrediction>;
}

export interface HeldPurchase {
  ref: PurchaseRef;
  credited: string[];
}

export const byTimeThenId = (a: { t: number; id: string }, b: { t: number; id: string }) =>
  a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export class JoinStore {
  readonly clicks = new Map<string, Click>();
  private readonly clicksByUser = new Map<string, Set<string>>();
  readonly held = new Map<string, HeldPurchase>();
  private readonly heldByUser = new Map<string, Set<string>>();
  readonly seenPredictions = new Map<string, number>();
  readonly seenPurchases = new Map<string, number>();

  constructor(
    private readonly config: JoinConfig,
    private readonly journal: () => JoinJournal,
  ) {}

  addClick(click: Click): void {
    this.clicks.set(click.eventId, click);
    let ids = this.clicksByUser.get(click.userId);
    if (!ids) this.clicksByUser.set(click.userId, (ids = new Set()));
    ids.add(click.eventId);
  }

  hold(purchase: HeldPurchase): void {
    this.held.set(purchase.ref.eventId, purchase);
    let ids = this.heldByUser.get(purchase.ref.userId);
    if (!ids) this.heldByUser.set(purchase.ref.userId, (ids = new Set()));
    ids.add(purchase.ref.eventId);
  }

  /** The attributed purchases of the user that match the click, earliest first. */
  heldMatching(click: Click): HeldPurchase[] {
    return [...(this.heldByUser.get(click.userId) ?? [])]
      .map((id) => this.held.get(id) as HeldPurchase)
      .filter((h) => this.matches(click, h.ref))
      .sort((a, b) =>
        byTimeThenId({ t: a.ref.eventTime, id: a.ref.eventId }, { t: b.ref.eventTime, id: b.ref.eventId }),
      );
  }

  /** Records an input id; false when it was seen already (a duplicate). */
  firstSight(input: JoinInput, id: string, eventTime: number): boolean {
    const seen = input === 'prediction' ? this.seenPredictions : this.seenPurchases;
    if (seen.has(id)) return false;
    seen.set(id, eventTime);
    this.journal().seen(input, id, eventTime);
    return true;
  }

  /** The clicks a purchase credits by the attribution rule, among all the user's clicks held. */
  creditOf(purchase: PurchaseRef): Click[] {
    const candidates: Click[] = [];
    for (const id of this.clicksByUser.get(purchase.userId) ?? []) {
      const click = this.clicks.get(id) as Click;
      if (this.matches(click, purchase)) candidates.push(click);
    }
    if (candidates.length <= 1 || this.config.attribution === 'all') return candidates;
    const order = (a: Click, b: Click) =>
      byTimeThenId({ t: a.clickTime, id: a.eventId }, { t: b.clickTime, id: b.eventId });
    let chosen = candidates[0] as Click;
    for (const c of candidates) {
      const cmp = order(c, chosen);
      if (this.config.attribution === 'last' ? cmp > 0 : cmp < 0) chosen = c;
    }
    return [chosen];
  }

  /** Adds a purchase's credit to the click, the credits kept in purchase event-time order. */
  addCredit(click: Click, purchase: PurchaseRef): void {
    if (click.credits.includes(purchase.eventId)) return;
    click.credits.push(purchase.eventId);
    click.credits.sort((a, b) => {
      const qa = this.held.get(a)?.ref;
      const qb = this.held.get(b)?.ref;
      return byTimeThenId({ t: qa?.eventTime ?? 0, id: a }, { t: qb?.eventTime ?? 0, id: b });
    });
  }

  /** Forgets what no late input within the retention can change any more (watermark `w`). */
  prune(w: number): void {
    const journal = this.journal();
    const keep = this.config.windowMs + this.config.retentionMs;
    for (const click of this.clicks.values()) {
      if (!click.decided || click.clickTime + keep >= w) continue;
      this.clicks.delete(click.eventId);
      const ids = this.clicksByUser.get(click.userId);
      ids?.delete(click.eventId);
      if (ids && ids.size === 0) this.clicksByUser.delete(click.userId);
      journal.clickForgotten(stored(click));
    }
    for (const purchase of this.held.values()) {
      if (purchase.ref.eventTime + keep >= w) continue;
      this.held.delete(purchase.ref.eventId);
      const ids = this.heldByUser.get(purchase.ref.userId);
      ids?.delete(purchase.ref.eventId);
      if (ids && ids.size === 0) this.heldByUser.delete(purchase.ref.userId);
      journal.purchaseForgotten(purchase.ref.eventId);
    }
    const forgetBefore = w - 2 * this.config.windowMs - this.config.retentionMs;
    for (const [input, seen] of [
      ['prediction', this.seenPredictions],
      ['purchase', this.seenPurchases],
    ] as const) {
      for (const [id, time] of seen) {
        if (time >= forgetBefore) continue;
        seen.delete(id);
        journal.forgotten(input, id);
      }
    }
  }

  private matches(click: Click, purchase: PurchaseRef): boolean {
    if (click.userId !== purchase.userId) return false;
    if (purchase.eventTime < click.clickTime || purchase.eventTime > click.clickTime + this.config.windowMs)
      return false;
    if (this.config.match === 'same-item') return click.itemId === purchase.itemId;
    if (this.config.match === 'same-session')
      return purchase.sessionId !== null && click.sessionId === purchase.sessionId;
    return true;
  }
}

export function refOf(click: StoredClick): Omit<PendingPrediction, 'predictionId'> {
  return {
    eventId: click.eventId,
    userId: click.userId,
    itemId: click.itemId,
    sessionId: click.sessionId,
    clickTime: click.clickTime,
  };
}

export function stored(click: Click): StoredClick {
  return {
    ...refOf(click),
    decided: click.decided,
    label: click.label,
    credits: [...click.credits],
    predictions: click.predictions.map((p) => ({ ...p })),
  };
}
