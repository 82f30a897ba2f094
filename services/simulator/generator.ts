// The event stream of the simulated shop, in event-time order. Sessions arrive as a Poisson
// process; each is a run of clicks; a click may lead to a purchase of its item after a delay
// (most within minutes, some hours later, most never). Pure: no I/O, no wall clock.
import { invariant } from '../common/errors.js';
import type { ClickEvent, PurchaseEvent } from '../common/contracts.js';
import { MinHeap } from '../common/min-heap.js';
import { Random } from '../common/random.js';
import { DEFAULT_SHOP, PAGE_TYPES, REFERRERS, Shop, type ShopConfig, type User } from './shop.js';

export interface DriftConfig {
  /** Simulated milliseconds after the start at which the shift begins. */
  atMs: number;
  category: string;
  /** Log-odds added to purchases of that category from then on. */
  shift: number;
  /**
   * Share of clicks sent to that category from then on (a campaign: the traffic mix moves, so the
   * feature distribution drifts as well as the purchase odds); 0 or absent, the mix stays.
   */
  share?: number;
}

export interface SimulationConfig {
  seed: number;
  /** Event time of the first session, ms since the epoch. */
  startTime: number;
  /** Events per simulated second. */
  trafficRate: number;
  shop: ShopConfig;
  meanClicksPerSession: number;
  meanClickGapMs: number;
  drift: DriftConfig | null;
  /**
   * Simulated time run before `startTime` and not emitted, so the stream starts in steady state
   * (sessions already under way) instead of ramping up from no session at all.
   */
  warmUpMs: number;
  /**
   * Multiplies every click-to-purchase delay (1 = the shop's own: a minute at the median, a
   * quarter of an hour for a quarter of buyers). Below 1, a short demo sees its outcomes.
   */
  purchaseDelayScale: number;
  /**
   * Log-odds added to a click's purchase probability by what served its user at that time (the
   * ground truth of an experiment: a better model sells more); null, none.
   */
  /** The purchase log-odds added for a user (its arm's lift), given its segment (country/device). */
  treatment: ((userId: string, time: number, segment: string) => number) | null;
}

export const DEFAULT_SIMULATION: Omit<SimulationConfig, 'seed' | 'startTime'> = {
  trafficRate: 100,
  shop: DEFAULT_SHOP,
  meanClicksPerSession: 5,
  meanClickGapMs: 20000,
  drift: null,
  warmUpMs: 15 * 60 * 1000,
  purchaseDelayScale: 1,
  treatment: null,
};

export interface ClickTruth {
  /** The generating model's purchase probability for this click. */
  probability: number;
  purchaseEventId: string | null;
  purchaseTime: number | null;
}

export type SimEvent =
  | { type: 'click'; time: number; click: ClickEvent; truth: ClickTruth }
  | { type: 'purchase'; time: number; purchase: PurchaseEvent; clickEventId: string };

interface SessionState {
  id: string;
  user: User;
  referrer: string;
  clicksLeft: number;
  depth: number;
}

type Scheduled =
  | { time: number; seq: number; kind: 'session' }
  | { time: number; seq: number; kind: 'click'; session: SessionState }
  | { time: number; seq: number; kind: 'purchase'; event: SimEvent & { type: 'purchase' } };

/** Earlier time first; equal times in scheduling order (stable). */
const before = (a: Scheduled, b: Scheduled) => a.time < b.time || (a.time === b.time && a.seq < b.seq);

export class ShopSimulation {
  readonly shop: Shop;
  private readonly config: SimulationConfig;
  private readonly sessionRandom: Random;
  private readonly clickRandom: Random;
  private readonly purchaseRandom: Random;
  private readonly queue = new MinHeap<Scheduled>(before);
  private seq = 0;
  private sessions = 0;
  private clicks = 0;
  private purchases = 0;
  /** Clicks in the stream whose purchase is still to come. */
  private readonly clickTimes = new Map<string, number>();
  /**
   * In every session and event id: the same run repeated gives the same ids, and a run that
   * starts at another time gives new ones. Session state (Redis) is keyed by these ids, so a
   * second demo or test run must not find the first one's sessions.
   */
  private readonly idTag: string;

  constructor(config: Partial<SimulationConfig> & Pick<SimulationConfig, 'seed' | 'startTime'>) {
    this.config = { ...DEFAULT_SIMULATION, ...config };
    this.idTag = `${this.config.seed}-${this.config.startTime.toString(36)}`;
    const root = new Random(this.config.seed);
    this.shop = new Shop(this.config.shop, root.fork(1));
    this.sessionRandom = root.fork(2);
    this.clickRandom = root.fork(3);
    this.purchaseRandom = root.fork(4);
    this.queue.push({ time: this.config.startTime - this.config.warmUpMs, seq: this.seq++, kind: 'session' });
  }

  /** Sessions per simulated ms that yield `trafficRate` events per second on average. */
  private get sessionRatePerMs(): number {
    return this.config.trafficRate / (this.config.meanClicksPerSession * 1.1) / 1000;
  }

  /** Log-odds shift in force for `category` at `time` (the configured drift). */
  categoryShift(category: string, time: number): number {
    const drift = this.config.drift;
    return drift && category === drift.category && time >= this.config.startTime + drift.atMs
      ? drift.shift
      : 0;
  }

  /** The next event in event-time order; the stream never ends. */
  next(): SimEvent {
    for (;;) {
      const event = this.step();
      if (!event || event.time < this.config.startTime) continue; // warm-up
      // A purchase whose click fell in the warm-up has no click in the stream: leave it out too.
      if (event.type === 'purchase' && this.clickTimes.get(event.clickEventId) === undefined) continue;
      if (event.type === 'purchase') this.clickTimes.delete(event.clickEventId);
      return event;
    }
  }

  private step(): SimEvent | null {
    const item = this.queue.pop();
    invariant(item, 'simulation queue is empty'); // a session is always scheduled
    if (item.kind === 'session') {
      this.startSession(item.time);
      return null;
    }
    if (item.kind === 'purchase') return item.event;
    const event = this.click(item.session, item.time);
    if (event.type === 'click' && event.truth.purchaseEventId && event.time >= this.config.startTime) {
      this.clickTimes.set(event.click.eventId, event.time);
    }
    return event;
  }

  *events(): Generator<SimEvent> {
    for (;;) yield this.next();
  }

  private startSession(time: number): void {
    const r = this.sessionRandom;
    const user = this.shop.pickUser(r);
    const session: SessionState = {
      id: `s-${this.idTag}-${this.sessions++}`,
      user,
      referrer: r.pick(REFERRERS),
      clicksLeft: r.geometric(this.config.meanClicksPerSession),
      depth: 0,
    };
    this.queue.push({ time, seq: this.seq++, kind: 'click', session });
    const gap = Math.max(1, Math.round(r.exponential(1 / this.sessionRatePerMs)));
    this.queue.push({ time: time + gap, seq: this.seq++, kind: 'session' });
  }

  /** From the drift on, its share of clicks goes to its category (drawn only then: runs before are unchanged). */
  private campaignCategory(time: number): string | null {
    const drift = this.config.drift;
    if (!drift?.share || time < this.config.startTime + drift.atMs) return null;
    return this.clickRandom.chance(drift.share) ? drift.category : null;
  }

  private click(session: SessionState, time: number): SimEvent {
    const r = this.clickRandom;
    const campaign = this.campaignCategory(time);
    const item = campaign ? this.shop.pickItemOf(r, campaign) : this.shop.pickItem(r, session.user);
    const pageType = session.depth === 0 ? 'product' : r.pick(PAGE_TYPES);
    const click: ClickEvent = {
      eventId: `c-${this.idTag}-${this.clicks++}`,
      userId: session.user.id,
      sessionId: session.id,
      itemId: item.id,
      category: item.category,
      price: item.price,
      device: session.user.device,
      country: session.user.country,
      referrer: session.referrer,
      eventTime: time,
      pageType,
    };
    const probability = this.shop.purchaseProbability({
      user: session.user,
      item,
      referrer: session.referrer,
      pageType,
      depth: session.depth,
      categoryShift: this.categoryShift(item.category, time),
      treatment:
        this.config.treatment?.(session.user.id, time, `${session.user.country}/${session.user.device}`) ?? 0,
    });
    const truth: ClickTruth = { probability, purchaseEventId: null, purchaseTime: null };
    if (this.purchaseRandom.chance(probability)) {
      const purchaseTime = time + this.purchaseDelay();
      const purchase: PurchaseEvent = {
        eventId: `p-${this.idTag}-${this.purchases++}`,
        userId: session.user.id,
        sessionId: session.id,
        itemId: item.id,
        category: item.category,
        price: item.price,
        quantity: this.purchaseRandom.chance(0.85) ? 1 : 2 + this.purchaseRandom.int(3),
        eventTime: purchaseTime,
      };
      truth.purchaseEventId = purchase.eventId;
      truth.purchaseTime = purchaseTime;
      this.queue.push({
        time: purchaseTime,
        seq: this.seq++,
        kind: 'purchase',
        event: { type: 'purchase', time: purchaseTime, purchase, clickEventId: click.eventId },
      });
    }
    session.depth++;
    if (--session.clicksLeft > 0) {
      const gap = Math.max(200, Math.round(r.exponential(this.config.meanClickGapMs)));
      this.queue.push({ time: time + gap, seq: this.seq++, kind: 'click', session });
    }
    return { type: 'click', time, click, truth };
  }

  /** Mostly within minutes, some within the hour, a few hours later. */
  private purchaseDelay(): number {
    const r = this.purchaseRandom;
    const u = r.next();
    const seconds =
      u < 0.7 ? r.logNormal(60, 0.8) : u < 0.95 ? r.logNormal(900, 0.7) : r.logNormal(4 * 3600, 0.6);
    return Math.max(1000, Math.round(seconds * 1000 * this.config.purchaseDelayScale));
  }
}
