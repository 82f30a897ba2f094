// The rollout controller's Prometheus metrics, per experiment and arm (FW_ROLLOUT_HTTP_PORT).
import type { Registry } from 'prom-client';
import { counter, gauge } from '../common/metrics.js';
import { ACTIVE_STATES, calibrationError, type ExperimentRecord } from '../registry/experiments.js';
import { shareOf } from '../registry/experiment-admin.js';

export function rolloutMetrics(registry: Registry) {
  const metrics = gauges(registry);
  return {
    ...metrics,
    /** The gauges as the experiments' records say. */
    showAll(experiments: readonly ExperimentRecord[]): void {
      metrics.state.reset();
      for (const experiment of experiments) show(metrics, experiment);
    },
  };
}

function gauges(registry: Registry) {
  return {
    share: gauge(registry, {
      name: 'flywheel_experiment_share',
      help: "The candidate's traffic share in the experiment",
      labelNames: ['experiment', 'candidate'],
    }),
    state: gauge(registry, {
      name: 'flywheel_experiment_state',
      help: "1 for the experiment's current state",
      labelNames: ['experiment', 'state'],
    }),
    outcomes: gauge(registry, {
      name: 'flywheel_experiment_outcomes',
      help: 'Outcomes counted per experiment and arm',
      labelNames: ['experiment', 'arm'],
    }),
    mean: gauge(registry, {
      name: 'flywheel_experiment_metric',
      help: 'Per experiment and arm: the mean of each metric (purchaseRate, logLoss)',
      labelNames: ['experiment', 'arm', 'metric'],
    }),
    interval: gauge(registry, {
      name: 'flywheel_experiment_difference',
      help: 'candidate − control per metric: the estimate and its always-valid interval bounds',
      labelNames: ['experiment', 'metric', 'bound'],
    }),
    calibration: gauge(registry, {
      name: 'flywheel_experiment_calibration_error',
      help: 'Per experiment and arm: expected calibration error of the served scores (10 bins)',
      labelNames: ['experiment', 'arm'],
    }),
    decisions: counter(registry, {
      name: 'flywheel_experiment_decisions_total',
      help: 'Decisions taken by the controller, by action',
      labelNames: ['action'],
    }),
  };
}

function show(metrics: ReturnType<typeof gauges>, experiment: ExperimentRecord): void {
  const id = experiment.id;
  metrics.share.set({ experiment: id, candidate: experiment.candidate }, shareOf(experiment));
  metrics.state.set({ experiment: id, state: experiment.state }, 1);
  if (!ACTIVE_STATES.includes(experiment.state)) return;
  for (const arm of ['control', 'candidate'] as const) {
    const stats = experiment.stats[arm];
    metrics.outcomes.set({ experiment: id, arm }, Object.values(stats)[0]?.n ?? 0);
    for (const [metric, s] of Object.entries(stats))
      metrics.mean.set({ experiment: id, arm, metric }, s.mean);
    const error = calibrationError(experiment.calibration?.[arm] ?? []);
    if (error !== null) metrics.calibration.set({ experiment: id, arm }, error);
  }
  if (experiment.baseline) {
    metrics.outcomes.set({ experiment: id, arm: 'baseline' }, Object.values(experiment.baseline)[0]?.n ?? 0);
    for (const [metric, s] of Object.entries(experiment.baseline))
      metrics.mean.set({ experiment: id, arm: 'baseline', metric }, s.mean);
  }
  for (const [metric, i] of Object.entries(experiment.timeline.at(-1)?.intervals ?? {})) {
    metrics.interval.set({ experiment: id, metric, bound: 'estimate' }, i.estimate);
    if (i.lower !== null) metrics.interval.set({ experiment: id, metric, bound: 'lower' }, i.lower);
    if (i.upper !== null) metrics.interval.set({ experiment: id, metric, bound: 'upper' }, i.upper);
  }
}
