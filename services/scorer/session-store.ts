// Session state in Redis: one sorted set per session, updated and read by one Lua script call
// per batch (atomic, one round trip).
import type { Redis } from 'ioredis';
import type { ClickEvent } from '../common/contracts.js';
import type { SessionContext } from '../model/features.js';
import { scorerKeys } from './keys.js';
import { OBSERVE_CLICKS_N, PEEK_SESSION_1 } from './scripts.js';

type SessionReply = [number, number, number];

interface SessionCommands {
  observeClicks(keyCount: number, ...keysThenArgs: (string | number)[]): Promise<number[]>;
  peekSession(key: string, eventTime: number): Promise<SessionReply>;
}

export interface SessionStoreOptions {
  /** Sessions idle this long are forgotten. */
  idleSeconds: number;
  maxClicksPerSession: number;
}

export class RedisSessionStore {
  private readonly redis: Redis & SessionCommands;

  constructor(
    redis: Redis,
    private readonly options: SessionStoreOptions = { idleSeconds: 4 * 3600, maxClicksPerSession: 500 },
  ) {
    // The number of keys varies per call: it is passed first.
    redis.defineCommand('observeClicks', { lua: OBSERVE_CLICKS_N });
    redis.defineCommand('peekSession', { numberOfKeys: 1, lua: PEEK_SESSION_1 });
    this.redis = redis as Redis & SessionCommands;
  }

  /** Record every click of a batch and return each one's context, in order (one round trip). */
  async observe(clicks: readonly ClickEvent[]): Promise<SessionContext[]> {
    if (clicks.length === 0) return [];
    const keys = clicks.map((c) => scorerKeys.session(c.sessionId));
    const args: (string | number)[] = [this.options.idleSeconds, this.options.maxClicksPerSession];
    for (const c of clicks) args.push(c.eventId, c.eventTime, `${c.category}\t${c.itemId}\t${c.price}`);
    const flat = await this.redis.observeClicks(keys.length, ...keys, ...args);
    return clicks.map((click, i) =>
      toContext([flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]] as SessionReply, click),
    );
  }

  async peek(click: Pick<ClickEvent, 'sessionId' | 'eventTime'>): Promise<SessionContext> {
    return toContext(
      await this.redis.peekSession(scorerKeys.session(click.sessionId), click.eventTime),
      click,
    );
  }
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
