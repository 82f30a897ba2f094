// The trainer's Prometheus metrics (served on FW_TRAINER_HTTP_PORT).
import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from '../common/metrics.js';
import type { LabelerReport } from './labeler-reliability.js';

/** Each labeler measured against seen outcomes (labeler-reliability.ts), read when scraped. */
export function labelerReliabilityMetrics(registry: Registry, reports: () => readonly LabelerReport[]): void {
  const figures: [string, string, (r: LabelerReport) => number][] = [
    [
      'outcome_agreement',
      "Share of a labeler's labels that match the outcome seen for the same prediction (over the reliability window)",
      (r) => (r.judged > 0 ? r.agreed / r.judged : Number.NaN),
    ],
    ['judged', "A labeler's labels of predictions whose outcome was seen (over the window)", (r) => r.judged],
    [
      'sensitivity',
      'P(the labeler says purchase | a purchase), Beta(1, 1) posterior mean',
      (r) => r.sensitivity,
    ],
    [
      'specificity',
      'P(the labeler says none | no purchase), Beta(1, 1) posterior mean',
      (r) => r.specificity,
    ],
    [
      'weight',
      "The trust a labeler's labels are weighed with in training: Youden's J, 0 while untrusted",
      (r) => r.trust,
    ],
  ];
  for (const [suffix, help, value] of figures)
    gauge(registry, {
      name: `flywheel_trainer_labeler_${suffix}`,
      help,
      labelNames: ['labeler'],
      collect() {
        this.reset();
        for (const r of reports()) if (Number.isFinite(value(r))) this.set({ labeler: r.labeler }, value(r));
      },
    });
}

export function trainerMetrics(registry: Registry) {
  return {
    examples: counter(registry, {
      name: 'flywheel_trainer_examples_total',
      help: 'Examples taken into training, by label source',
      labelNames: ['source'],
    }),
    learned: gauge(registry, { name: 'flywheel_trainer_learned', help: 'Examples learned from in total' }),
    progressive: gauge(registry, {
      name: 'flywheel_trainer_progressive_logloss',
      help: 'Log loss of predictions made just before learning (recent window)',
    }),
    learners: gauge(registry, {
      name: 'flywheel_trainer_learner_progressive_logloss',
      help: 'Progressive log loss of each learner trained side by side, over the selection window (the lowest is the next candidate)',
      labelNames: ['learner'],
    }),
    checkpoints: counter(registry, {
      name: 'flywheel_trainer_checkpoints_total',
      help: 'Checkpoints written',
    }),
    candidates: counter(registry, {
      name: 'flywheel_trainer_candidates_total',
      help: 'Candidate versions registered, by trigger and by what the gate made of them',
      labelNames: ['trigger', 'outcome'],
    }),
    skipped: counter(registry, {
      name: 'flywheel_trainer_replayed_records_total',
      help: 'Records read again after a restart and skipped (already in the checkpoint)',
    }),
    driftAlarms: counter(registry, {
      name: 'flywheel_trainer_drift_alarms_total',
      help: 'Significant rises of progressive log loss (each proposes a candidate)',
    }),
    freshnessEventTime: histogram(registry, {
      name: 'flywheel_trainer_outcome_to_promotion_event_seconds',
      help: 'In event time: from the newest outcome a promoted version learned from to the newest label the trainer had read (a replay of history reads true here, not in wall time)',
      buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400],
    }),
    freshness: histogram(registry, {
      name: 'flywheel_trainer_outcome_to_promotion_seconds',
      help: 'From the newest outcome a promoted version learned from to its promotion (scorers add their swap time)',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    }),
  };
}
