// The scorer's Prometheus metrics, and the model manager's events that move them.
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { counter, gauge, histogram } from '../common/metrics.js';
import type { ModelManager } from './model-manager.js';

export function scorerMetrics(metrics: Registry) {
  return {
    predictionsPublished: counter(metrics, {
      name: 'flywheel_scorer_predictions_total',
      help: 'Predictions published, by arm',
      labelNames: ['arm'],
    }),
    batchSize: histogram(metrics, {
      name: 'flywheel_scorer_batch_size',
      help: 'Clicks per scored batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500],
    }),
    batchSeconds: histogram(metrics, {
      name: 'flywheel_scorer_batch_seconds',
      help: 'Time to score and publish one batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    modelInUse: gauge(metrics, {
      name: 'flywheel_scorer_model_info',
      help: 'Model version per alias in use (value 1)',
      labelNames: ['alias', 'version'],
    }),
    loadFailures: counter(metrics, {
      name: 'flywheel_scorer_model_load_failures_total',
      help: 'Model versions that failed to load',
    }),
    sessionsHeld: gauge(metrics, {
      name: 'flywheel_scorer_sessions_held',
      help: 'Sessions held in memory (the rest are loaded from Redis when their clicks come)',
    }),
    reviews: counter(metrics, {
      name: 'flywheel_scorer_review_tasks_total',
      help: 'Predictions sent to human review, by reason',
      labelNames: ['reason'],
    }),
    // Freshness: from the newest outcome a version learned from to that version serving here.
    freshness: histogram(metrics, {
      name: 'flywheel_scorer_outcome_to_live_seconds',
      help: 'From the newest outcome a newly served version has seen to it serving in this scorer',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 86400],
    }),
    // The same on the stream's clock: to the newest click scored here, true in a replay of
    // history, whose events are months behind the wall clock.
    freshnessEventTime: histogram(metrics, {
      name: 'flywheel_scorer_outcome_to_live_event_seconds',
      help: 'In event time: from the newest outcome a newly served version has seen to the newest click this scorer had scored',
      buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400],
    }),
  };
}

export type ScorerMetrics = ReturnType<typeof scorerMetrics>;

/**
 * Moves the model metrics on the manager's events. `clock` says whether start-up is over (the
 * versions loaded then were promoted before this scorer ran: not a measure of how fast a new
 * version reaches serving) and the newest click event time scored.
 */
export function watchModels(
  manager: ModelManager,
  m: ScorerMetrics,
  logger: Logger,
  clock: { started: () => boolean; newestScoredTime: () => number },
): void {
  manager.on('swapped', (set) => {
    m.modelInUse.reset();
    for (const alias of ['champion', 'challenger', 'shadow'] as const) {
      const version = set.routing[alias];
      if (version) m.modelInUse.set({ alias, version }, 1);
    }
  });
  manager.on('loadFailed', () => m.loadFailures.inc());
  manager.on('live', ({ version, outcomeAgeMs, learnedTime }) => {
    if (outcomeAgeMs === null || !clock.started()) return;
    m.freshness.observe(outcomeAgeMs / 1000);
    const newest = clock.newestScoredTime();
    const eventSeconds =
      learnedTime !== null && Number.isFinite(newest) ? Math.max(0, newest - learnedTime) / 1000 : null;
    if (eventSeconds !== null) m.freshnessEventTime.observe(eventSeconds);
    logger.info(
      { version, outcomeToLiveSeconds: outcomeAgeMs / 1000, outcomeToLiveEventSeconds: eventSeconds },
      'version live',
    );
  });
}
