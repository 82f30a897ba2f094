// The scorer's review hook feeding the labeling queue: the composition lives here, so neither
// service imports the other.
import type { Redis } from 'ioredis';
import { loadLabelingConfig, queueOptionsFrom, reviewDedupeKey } from '../labeling/config.js';
import type { ReviewPayload } from '../labeling/http.js';
import { LabelingQueue } from '../labeling/queue.js';
import { segmentOf } from '../model/features.js';
import type { ReviewSink, ReviewTask } from '../scorer/review.js';
import { earlierClicks } from '../scorer/session-store.js';

export function queueReviewSink(redis: Redis): ReviewSink {
  const config = loadLabelingConfig();
  const queue = new LabelingQueue<ReviewPayload>(redis, config.FW_LABELING_QUEUE, queueOptionsFrom(config));
  return {
    async submit(tasks: ReviewTask[]) {
      for (const task of tasks) {
        // What the labeler sees of the session: the clicks before this one.
        const session = await earlierClicks(redis, task.click.sessionId, task.click.eventTime);
        await queue.add({
          id: task.predictionId,
          priority: task.priority,
          dedupeKey: reviewDedupeKey(config.FW_LABELING_DEDUPE, task.click),
          stratum: segmentOf(task.click.country, task.click.device),
          payload: {
            predictionId: task.predictionId,
            eventId: task.click.eventId,
            userId: task.click.userId,
            itemId: task.click.itemId,
            category: task.click.category,
            price: task.click.price,
            sessionId: task.click.sessionId,
            eventTime: task.click.eventTime,
            score: task.score,
            modelVersion: task.modelVersion,
            reason: task.reason,
            session: session.map((c) => ({
              itemId: c.itemId,
              category: c.category,
              price: c.price,
              eventTime: c.eventTime,
            })),
          },
        });
      }
    },
  };
}
