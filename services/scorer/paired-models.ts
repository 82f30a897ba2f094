// The scorer's two model sets, the predict API's (this thread) and the stream's (the scoring
// worker), must serve the same versions. An update is in force only when both load it; when one
// loads it and the other fails, the one that took it goes back to the last update both took, so
// the predict API does not go on answering with a version the stream does not use.
import type { ModelUpdate } from '../common/contracts.js';
import type { Logger } from '../common/logger.js';

export interface ModelTarget {
  /** Apply an update; false if it failed. `restoring`: a return to an update served before. */
  apply(update: ModelUpdate, options?: { restoring?: boolean }): Promise<boolean>;
}

export class PairedModels {
  /** The last update both sets took. */
  private lastBoth: ModelUpdate | null = null;

  constructor(
    private readonly served: ModelTarget,
    private readonly streamed: ModelTarget,
    private readonly logger: Logger,
  ) {}

  /** Apply to both; says which loaded it (a set that alone did is back on the previous update). */
  async apply(update: ModelUpdate): Promise<{ served: boolean; streamed: boolean }> {
    const [served, streamed] = await Promise.all([this.served.apply(update), this.streamed.apply(update)]);
    if (served && streamed) this.lastBoth = update;
    if (served === streamed) return { served, streamed };

    const ahead = served ? 'served' : 'streamed';
    const previous = this.lastBoth;
    const context = { update: update.updateId, loadedIn: ahead };
    if (!previous) {
      this.logger.error(
        context,
        'update loaded in one model set only, and none came before it to go back to',
      );
    } else if (await this[ahead].apply(previous, { restoring: true })) {
      this.logger.warn(
        { ...context, restored: previous.updateId },
        'update loaded in one model set only; it went back',
      );
    } else {
      this.logger.error(
        { ...context, restored: previous.updateId },
        'update loaded in one model set only, and it could not go back: the sets differ until the next update',
      );
    }
    return { served, streamed };
  }
}
