// Session state in Redis: one sorted set per session, updated and read atomically per click
// by a Lua script, pipelined per batch (one round trip for a whole batch).
import type { Redis } from 'ioredis';
import type { ClickEvent } from '../common/contracts.js';
import type { SessionContext } from '../model/features.js';
import { scorerKeys } from './keys.js';
import { OBSERVE_CLICK_1, PEEK_SESSION_1 } from './scripts.js';

type SessionReply = [number, number, number];

interface SessionCommands {
  observeClick(
    key: string,
    eventId: string,
    eventTime: number,
    category: string,
    ttl: number,
    cap: number,
  ): Promise<SessionReply>;
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
    redis.defineCommand('observeClick', { numberOfKeys: 1, lua: OBSERVE_CLICK_1 });
    redis.defineCommand('peekSession', { numberOfKeys: 1, lua: PEEK_SESSION_1 });
    this.redis = redis as Redis & SessionCommands;
  }

  /** Record every click of a batch and return each one's context, in order. */
  async observe(clicks: readonly ClickEvent[]): Promise<SessionContext[]> {
    if (clicks.length === 0) return [];
    const pipeline = this.redis.pipeline() as ReturnType<Redis['pipeline']> & {
      observeClick(...args: Parameters<SessionCommands['observeClick']>): unknown;
    };
    for (const c of clicks) {
      pipeline.observeClick(
        scorerKeys.session(c.sessionId),
        c.eventId,
        c.eventTime,
        c.category,
        this.options.idleSeconds,
        this.options.maxClicksPerSession,
      );
    }
    const results = (await pipeline.exec()) ?? [];
    return results.map(([error, reply], i) => {
      if (error) throw error;
      return toContext(reply as SessionReply, clicks[i] as ClickEvent);
    });
  }

  async peek(click: Pick<ClickEvent, 'sessionId' | 'eventTime'>): Promise<SessionContext> {
    return toContext(
      await this.redis.peekSession(scorerKeys.session(click.sessionId), click.eventTime),
      click,
    );
  }
}

function toContext(reply: SessionReply, click: Pick<ClickEvent, 'eventTime'>): SessionContext {
  return {
    clicksBefore: Number(reply[0]),
    sessionStart: Number(reply[1] ?? click.eventTime),
    categoriesSeen: Number(reply[2]),
  };
}
