// The scorer's in-process copy of the sessions it is scoring. A partition's clicks go to one
// scorer at a time, so that scorer can work out each click's context from memory and write the
// click to Redis behind it; Redis stays the shared truth that a scorer taking over a partition
// (or one whose copy was dropped) loads from. Pure logic: the Redis side is in session-store.ts.
import type { SessionContext } from '../model/features.js';

/** One click as the session keeps it. */
export interface CachedClick {
  eventId: string;
  eventTime: number;
  category: string;
}

interface Session {
  /** Ordered by event time (ties in arrival order). */
  times: number[];
  eventIds: string[];
  categories: string[];
  /** Every category in the session: a click arriving after all others has seen exactly these. */
  categorySet: Set<string>;
  /** Wall-clock time of the last read or write, for idle expiry (as Redis expires the key). */
  touchedAt: number;
  /** When the session last moved to the recent end of the use order. */
  orderedAt: number;
}

/** The use order is kept to this resolution: moving a session on every click cost two map writes. */
const ORDER_RESOLUTION_MS = 1000;

export interface SessionCacheOptions {
  /** Sessions held at most; the least recently used go first. */
  maxSessions: number;
  /** Clicks kept per session, the newest by event time (as the Redis key is trimmed). */
  maxClicksPerSession: number;
  /** A session untouched this long is gone from Redis too, so it is not trusted here either. */
  idleMs: number;
}

export interface Observed {
  context: SessionContext;
  /** false when the click was already in the session (a replay): nothing to write. */
  added: boolean;
}

export class SessionCache {
  /** Map order is use order: the first entries are the least recently used. */
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly options: SessionCacheOptions) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Whether the session is held (and not idle past expiry). */
  has(sessionId: string, now: number): boolean {
    return this.held(sessionId, now) !== undefined;
  }

  private held(sessionId: string, now: number): Session | undefined {
    const session = this.sessions.get(sessionId);
    if (session && now - session.touchedAt > this.options.idleMs) {
      this.sessions.delete(sessionId);
      return undefined;
    }
    return session;
  }

  /**
   * Adds clicks read from Redis to the session (creating it). A union, never a replacement:
   * clicks this process added since the read was issued stay.
   */
  merge(sessionId: string, clicks: readonly CachedClick[], now: number): void {
    let session = this.sessions.get(sessionId);
    if (!session) {
      session = {
        times: [],
        eventIds: [],
        categories: [],
        categorySet: new Set(),
        touchedAt: now,
        orderedAt: -Infinity,
      };
    }
    for (const click of clicks) insert(session, click, this.options.maxClicksPerSession);
    this.touch(sessionId, session, now);
  }

  /**
   * Records a click in its session and returns its context: the session's clicks with an
   * earlier event time, as services/model/session.ts defines it. Undefined when the session is
   * not held (see merge).
   */
  observe(sessionId: string, click: CachedClick, now: number): Observed | undefined {
    const session = this.held(sessionId, now);
    if (!session) return undefined;
    const { times } = session;
    const last = times.length - 1;
    let context: SessionContext;
    let added: boolean;
    if (last < 0 || (times[last] as number) < click.eventTime) {
      // In order, the common case: every click held is earlier.
      context = {
        clicksBefore: times.length,
        sessionStart: last < 0 ? click.eventTime : (times[0] as number),
        categoriesSeen: session.categorySet.size,
      };
      pushClick(session, click);
      added = true;
    } else {
      added = !session.eventIds.includes(click.eventId);
      if (added) insertAt(session, click, upperBound(times, click.eventTime));
      context = contextAt(session, click.eventTime);
    }
    // Trimmed after the context is taken, as the Redis write trims after adding: the click sees
    // up to cap + 1 others.
    trim(session, this.options.maxClicksPerSession);
    this.touch(sessionId, session, now);
    return { context, added };
  }

  /** Forgets a session (its Redis write failed: the next use must load it again). */
  forget(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  /** Forgets everything (partitions changed hands: another scorer may have written since). */
  clear(): void {
    this.sessions.clear();
  }

  /**
   * Drops the least recently used sessions beyond the limit. Left to the caller, so a session
   * stays between its load and its clicks and is dropped only once their write is under way.
   */
  shrink(): void {
    for (const sessionId of this.sessions.keys()) {
      if (this.sessions.size <= this.options.maxSessions) return;
      this.sessions.delete(sessionId);
    }
  }

  private touch(sessionId: string, session: Session, now: number): void {
    session.touchedAt = now;
    if (now - session.orderedAt < ORDER_RESOLUTION_MS) return;
    session.orderedAt = now;
    this.sessions.delete(sessionId);
    this.sessions.set(sessionId, session);
  }
}

function pushClick(session: Session, click: CachedClick): void {
  session.times.push(click.eventTime);
  session.eventIds.push(click.eventId);
  session.categories.push(click.category);
  session.categorySet.add(click.category);
}

function insert(session: Session, click: CachedClick, cap: number): void {
  if (session.eventIds.includes(click.eventId)) return;
  insertAt(session, click, upperBound(session.times, click.eventTime));
  trim(session, cap);
}

function insertAt(session: Session, click: CachedClick, index: number): void {
  session.times.splice(index, 0, click.eventTime);
  session.eventIds.splice(index, 0, click.eventId);
  session.categories.splice(index, 0, click.category);
  session.categorySet.add(click.category);
}

/** Drops the oldest clicks beyond the cap. */
function trim(session: Session, cap: number): void {
  const excess = session.times.length - cap;
  if (excess <= 0) return;
  session.times.splice(0, excess);
  session.eventIds.splice(0, excess);
  session.categories.splice(0, excess);
  session.categorySet = new Set(session.categories);
}

/** Context of a click at time t from the clicks held, by scanning (out-of-order clicks only). */
function contextAt(session: Session, t: number): SessionContext {
  const before = lowerBound(session.times, t);
  const categories = new Set<string>();
  for (let i = 0; i < before; i++) categories.add(session.categories[i] as string);
  return {
    clicksBefore: before,
    sessionStart: before > 0 ? (session.times[0] as number) : t,
    categoriesSeen: categories.size,
  };
}

/** First index whose time is ≥ t. */
function lowerBound(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index whose time is > t. */
function upperBound(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] as number) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
