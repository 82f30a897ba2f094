// Session context of a click as the feature spec needs it, defined by event time so that
// replays and out-of-order delivery give the same answer: the clicks of the same session with
// an earlier event time. The scorer's in-memory sessions (services/scorer/session-cache.ts)
// and the predict API's Redis script (peekSession-1 in services/scorer/scripts.ts) implement
// the same definition; tests hold them together.
import type { ClickEvent } from '../common/contracts.js';
import type { SessionContext } from './features.js';

export interface SeenClick {
  eventId: string;
  eventTime: number;
  category: string;
}

/** Context of a click at `eventTime` given the session's clicks (it may be among them). */
export function sessionContext(seen: readonly SeenClick[], eventTime: number): SessionContext {
  let clicksBefore = 0;
  let sessionStart = eventTime;
  const categories = new Set<string>();
  for (const click of seen) {
    if (click.eventTime < eventTime) {
      clicksBefore++;
      categories.add(click.category);
    }
    sessionStart = Math.min(sessionStart, click.eventTime);
  }
  return { clicksBefore, sessionStart, categoriesSeen: categories.size };
}

export class SessionTracker {
  private readonly sessions = new Map<string, Map<string, SeenClick>>();

  /** Records the click (once per eventId) and returns its context. */
  observe(click: ClickEvent): SessionContext {
    let seen = this.sessions.get(click.sessionId);
    if (!seen) {
      seen = new Map();
      this.sessions.set(click.sessionId, seen);
    }
    seen.set(click.eventId, { eventId: click.eventId, eventTime: click.eventTime, category: click.category });
    return sessionContext([...seen.values()], click.eventTime);
  }
}
