// Session state: one sorted set per session in Redis, the shared truth, and the clicks of the
// sessions this scorer is scoring held in memory (SessionCache), so a click's context costs no
// round trip. Sessions not held are loaded in one call per slice; new clicks are written behind
// in one call per slice, which the caller awaits before the clicks' offsets commit.
import type { Redis } from 'ioredis';
import type { ClickEvent } from '../common/contracts.js';
import { FlywheelError } from '../common/errors.js';
import type { SessionContext } from '../model/features.js';
import { scorerKeys } from './keys.js';
import { SessionCache, type CachedClick } from './session-cache.js';
import { LOAD_SESSIONS_N, PEEK_SESSION_1, RECORD_CLICKS_N } from './scripts.js';

type SessionReply = [number, number, number];

interface SessionCommands {
  loadSessions(keyCount: number, ...keys: string[]): Promise<string[][]>;
  recordClicks(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number>;
  peekSession(key: string, eventTime: number): Promise<SessionReply>;
}

export interface SessionStoreOptions {
  /** Sessions idle this long are forgotten. */
  idleSeconds: number;
  maxClicksPerSession: number;
  /** Sessions held in memory at most (least recently used dropped first). */
  maxSessions: number;
}

export interface ObservedSlice {
  contexts: SessionContext[];
  /** Resolves once Redis has the slice's new clicks. */
  recorded: Promise<void>;
}

export class RedisSessionStore {
  private readonly redis: Redis & SessionCommands;
  private readonly cache: SessionCache;
  /** Reads of Redis under way, by session: one at a time, so none can bring back older state. */
  private readonly loading = new Map<string, Promise<void>>();
  /** Bumped by clear(): a read issued before it is not trusted after it. */
  private epoch = 0;

  constructor(
    redis: Redis,
    private readonly options: SessionStoreOptions = {
      idleSeconds: 4 * 3600,
      maxClicksPerSession: 500,
      maxSessions: 100_000,
    },
  ) {
    // The number of keys varies per call: it is passed first.
    redis.defineCommand('loadSessions', { lua: LOAD_SESSIONS_N });
    redis.defineCommand('recordClicks', { lua: RECORD_CLICKS_N });
    redis.defineCommand('peekSession', { numberOfKeys: 1, lua: PEEK_SESSION_1 });
    this.redis = redis as Redis & SessionCommands;
    this.cache = new SessionCache({
      maxSessions: options.maxSessions,
      maxClicksPerSession: options.maxClicksPerSession,
      idleMs: options.idleSeconds * 1000,
    });
  }

  /** Sessions held in memory. */
  get cachedSessions(): number {
    return this.cache.size;
  }

  /**
   * Loads the sessions of these clicks that are not held (one round trip, none if all are).
   * Issue it after the writes of earlier clicks (observe issues them): Redis answers one
   * connection's commands in order, so the read sees them.
   */
  async load(clicks: readonly ClickEvent[]): Promise<void> {
    const now = Date.now();
    const waits = new Set<Promise<void>>();
    const missing = new Set<string>();
    for (const { sessionId } of clicks) {
      if (this.cache.has(sessionId, now)) continue;
      const under = this.loading.get(sessionId);
      if (under) waits.add(under);
      else missing.add(sessionId);
    }
    if (missing.size > 0) {
      const ids = [...missing];
      const epoch = this.epoch;
      const read = this.redis
        .loadSessions(ids.length, ...ids.map((id) => scorerKeys.session(id)))
        .catch((error: unknown) => {
          throw unavailable('load', error);
        })
        .then((replies) => {
          if (epoch !== this.epoch) return;
          const loadedAt = Date.now();
          ids.forEach((id, i) => this.cache.merge(id, parseSession(replies[i] ?? []), loadedAt));
        })
        .finally(() => {
          for (const id of ids) if (this.loading.get(id) === read) this.loading.delete(id);
        });
      for (const id of ids) this.loading.set(id, read);
      waits.add(read);
    }
    await Promise.all(waits);
  }

  /**
   * Records the clicks, in order, and returns each one's context (the clicks of its session with
   * an earlier event time; a replayed click gets the same answer) and the write behind them.
   */
  async observe(clicks: readonly ClickEvent[]): Promise<ObservedSlice> {
    await this.load(clicks);
    const now = Date.now();
    const contexts: SessionContext[] = [];
    // sessionId → event time and member of each new click, for one write per session.
    const writes = new Map<string, (string | number)[]>();
    for (let i = 0; i < clicks.length; i++) {
      const click = clicks[i] as ClickEvent;
      let observed = this.cache.observe(click.sessionId, click, now);
      if (!observed) {
        // Not held after load() only if clear() came in between.
        await this.load([click]);
        observed = this.cache.observe(click.sessionId, click, Date.now());
        if (!observed)
          throw unavailable('load', `session ${click.sessionId} was dropped again while loading`);
      }
      const { context, added } = observed;
      contexts.push(context);
      if (!added) continue;
      let entries = writes.get(click.sessionId);
      if (!entries) writes.set(click.sessionId, (entries = []));
      entries.push(click.eventTime, `${click.eventId}\t${click.category}\t${click.itemId}\t${click.price}`);
    }
    const recorded = this.record(writes);
    // Sessions dropped from here on are read back after this write.
    this.cache.shrink();
    return { contexts, recorded };
  }

  /** Forgets every session held (partitions changed hands: others may have written since). */
  clear(): void {
    this.epoch++;
    this.cache.clear();
  }

  async peek(click: Pick<ClickEvent, 'sessionId' | 'eventTime'>): Promise<SessionContext> {
    return toContext(
      await this.redis.peekSession(scorerKeys.session(click.sessionId), click.eventTime),
      click,
    );
  }

  private async record(writes: Map<string, (string | number)[]>): Promise<void> {
    if (writes.size === 0) return;
    const keys: string[] = [];
    const args: (string | number)[] = [this.options.idleSeconds, this.options.maxClicksPerSession];
    for (const [sessionId, entries] of writes) {
      keys.push(scorerKeys.session(sessionId));
      args.push(entries.length / 2);
      for (const entry of entries) args.push(entry);
    }
    try {
      await this.redis.recordClicks(keys.length, ...keys, ...args);
    } catch (error) {
      // Memory has clicks Redis lacks: a retried batch would find them "already recorded".
      for (const sessionId of writes.keys()) this.cache.forget(sessionId);
      throw unavailable('write', error);
    }
  }
}

/**
 * Session state that cannot be read or written is not the clicks' fault: the batch is retried
 * (the consumer dead-letters only what is wrong with the records themselves).
 */
function unavailable(what: 'load' | 'write', cause: unknown): FlywheelError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new FlywheelError('FW_SESSION_STATE_UNAVAILABLE', `session state ${what} failed: ${reason}`, {
    cause,
    retriable: true,
  });
}

/** Clicks of a session from its sorted set (members written before the category was kept end early). */
function parseSession(flat: readonly string[]): CachedClick[] {
  const clicks: CachedClick[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const member = flat[i] as string;
    const idEnd = member.indexOf('\t');
    const categoryEnd = member.indexOf('\t', idEnd + 1);
    clicks.push({
      eventId: member.slice(0, idEnd),
      category: member.slice(idEnd + 1, categoryEnd < 0 ? undefined : categoryEnd),
      eventTime: Number(flat[i + 1]),
    });
  }
  return clicks;
}

export interface SessionClick {
  eventId: string;
  category: string;
  /** null for clicks recorded before items and prices were kept. */
  itemId: string | null;
  price: number | null;
  eventTime: number;
}

/** The session's clicks before `eventTime`, oldest first, at most `limit` (the newest ones). */
export async function earlierClicks(
  redis: Redis,
  sessionId: string,
  eventTime: number,
  limit = 10,
): Promise<SessionClick[]> {
  const flat = await redis.zrevrangebyscore(
    scorerKeys.session(sessionId),
    `(${eventTime}`,
    '-inf',
    'WITHSCORES',
    'LIMIT',
    0,
    limit,
  );
  const clicks: SessionClick[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const [eventId = '', category = '', itemId, price] = (flat[i] as string).split('\t');
    clicks.push({
      eventId,
      category,
      itemId: itemId ?? null,
      price: price === undefined ? null : Number(price),
      eventTime: Number(flat[i + 1]),
    });
  }
  return clicks.reverse();
}

function toContext(reply: SessionReply, click: Pick<ClickEvent, 'eventTime'>): SessionContext {
  return {
    clicksBefore: Number(reply[0]),
    sessionStart: Number(reply[1] ?? click.eventTime),
    categoriesSeen: Number(reply[2]),
  };
}
