// The scorer's review hook feeding the labeling queue: the composition lives here, so neither
// service imports the other.
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { counter } from '../common/metrics.js';
import { loadLabelingConfig, queueOptionsFrom, reviewDedupeKeys } from '../labeling/config.js';
import type { ReviewPayload } from '../labeling/http.js';
import { LabelingQueue } from '../labeling/queue.js';
import { segmentOf } from '../model/features.js';
import type { ReviewSink, ReviewTask } from '../scorer/review.js';
import { earlierClicks } from '../scorer/session-store.js';

export function queueReviewSink(redis: Redis, logger: Logger, metrics: Registry): ReviewSink {
  const config = loadLabelingConfig();
  const queue = new LabelingQueue<ReviewPayload>(redis, config.FW_LABELING_QUEUE, queueOptionsFrom(config));
  const offered = counter(metrics, {
    name: 'flywheel_review_tasks_offered_total',
    help: 'Review tasks offered to the labeling queue, by outcome (added, duplicate, over_budget)',
    labelNames: ['outcome'],
  });
  let refusedHour = -1;
  return {
    async submit(tasks: ReviewTask[]) {
      for (const task of tasks) {
        // What the labeler sees of the session: the clicks before this one.
        const session = await earlierClicks(redis, task.click.sessionId, task.click.eventTime);
        const outcome = await queue.offer({
          id: task.predictionId,
          priority: task.priority,
          dedupeKeys: reviewDedupeKeys(config.FW_LABELING_DEDUPE, task.click),
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
            device: task.click.device,
            country: task.click.country,
            referrer: task.click.referrer,
            pageType: task.click.pageType,
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
        offered.inc({ outcome });
        const hour = Math.floor(Date.now() / 3_600_000);
        // Said once per clock hour: a run that meets the budget learns why its tasks stop.
        if (outcome === 'over_budget' && hour !== refusedHour) {
          refusedHour = hour;
          logger.warn(
            {
              perHour: config.FW_LABELING_TASKS_PER_HOUR,
              resetsAt: new Date((hour + 1) * 3_600_000).toISOString(),
            },
            `the review budget of ${config.FW_LABELING_TASKS_PER_HOUR} tasks an hour is spent: no task is queued until the next hour (FW_LABELING_TASKS_PER_HOUR)`,
          );
        }
      }
    },
  };
}
