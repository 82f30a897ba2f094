// Session context of a click as the feature spec needs it. This in-memory tracker defines the
// semantics; the scorer's Redis state must produce the same context for the same clicks.
import type { ClickEvent } from '../common/contracts.js';
import type { SessionContext } from './features.js';

interface SessionState {
  clicks: number;
  start: number;
  categories: Set<string>;
}

export class SessionTracker {
  private readonly sessions = new Map<string, SessionState>();

  /** Context of `click` (what came before it), then records the click. */
  observe(click: ClickEvent): SessionContext {
    let state = this.sessions.get(click.sessionId);
    if (!state) {
      state = { clicks: 0, start: click.eventTime, categories: new Set() };
      this.sessions.set(click.sessionId, state);
    }
    const context = {
      clicksBefore: state.clicks,
      sessionStart: Math.min(state.start, click.eventTime),
      categoriesSeen: state.categories.size,
    };
    state.clicks++;
    state.categories.add(click.category);
    return context;
  }
}
