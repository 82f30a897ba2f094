// The monitor's Prometheus metrics (FW_MONITOR_HTTP_PORT): every figure of the last look, per
// model version and arm, drift per version and group, and counts of alerts and retrain requests.
import type { Registry } from 'prom-client';
import { counter, gauge } from '../common/metrics.js';
import type { Look } from './core.js';
import type { WindowQuality } from './quality.js';

const QUALITY: [string, string, (q: WindowQuality) => number | null][] = [
  ['predictions', 'Predictions in the newest window', (q) => q.predictions],
  ['labels', 'Labels in the quality window (a label lag behind the newest click)', (q) => q.labels],
  ['label_coverage', 'Labels over predictions of the quality window', (q) => q.coverage],
  ['purchase_rate', 'Share of labeled clicks that ended in a purchase', (q) => q.purchaseRate],
  ['predicted_rate', 'Mean score of the same labeled clicks', (q) => q.predictedRate],
  ['log_loss', 'Log loss of the labeled predictions', (q) => q.logLoss],
  ['auc', 'ROC AUC of the labeled predictions', (q) => q.auc],
  ['ece', 'Expected calibration error (10 equal-width bins)', (q) => q.ece],
  [
    'label_delay_p50_ms',
    'Median click-to-purchase delay of the positive labels (bin upper bound)',
    (q) => q.delay.p50,
  ],
  [
    'estimated_log_loss',
    'Log loss the calibrated scores expect of the newest window, before labels',
    (q) => q.estimate.logLoss,
  ],
  [
    'estimated_auc',
    'ROC AUC the calibrated scores expect of the newest window, before labels',
    (q) => q.estimate.auc,
  ],
  [
    'estimated_purchase_rate',
    'Purchase rate the calibrated scores expect of the newest window',
    (q) => q.estimate.purchaseRate,
  ],
];

export function monitorMetrics(registry: Registry) {
  const quality = QUALITY.map(([name, help, read]) => ({
    gauge: gauge(registry, { name: `flywheel_monitor_${name}`, help, labelNames: ['version', 'arm'] }),
    read,
  }));
  const drift = driftGauges(registry);
  const alerts = counter(registry, {
    name: 'flywheel_monitor_alerts_total',
    help: 'Alerts raised, by kind (drift, performance, estimate)',
    labelNames: ['kind'],
  });
  const retrains = counter(registry, {
    name: 'flywheel_monitor_retrain_requests_total',
    help: 'Candidates asked of the trainer, by outcome (sent, failed, no trainer URL)',
    labelNames: ['outcome'],
  });
  const inputAge = gauge(registry, {
    name: 'flywheel_monitor_input_age_seconds',
    help: 'Wall clock minus the newest record read of each input (serve time, label time, failure time)',
    labelNames: ['input'],
  });
  const tooOld = gauge(registry, {
    name: 'flywheel_monitor_records_too_old',
    help: 'Records older than the retention when they came (not counted)',
  });
  return {
    alerts,
    retrains,
    inputAge,
    show(look: Look, recordsTooOld: number): void {
      for (const { gauge: g } of quality) g.reset();
      for (const d of Object.values(drift)) d.reset();
      for (const o of look.observations) {
        for (const { gauge: g, read } of quality) {
          const value = read(o.quality);
          if (value !== null && Number.isFinite(value)) g.set({ version: o.version, arm: o.arm }, value);
        }
        for (const group of o.drift?.groups ?? []) {
          const labels = { version: o.version, group: group.group };
          drift.distance.set(labels, group.distance);
          drift.psi.set(labels, group.psi);
          drift.drifted.set(labels, group.drifted ? 1 : 0);
          drift.newValues.set(labels, group.newValueRate);
        }
      }
      tooOld.set(recordsTooOld);
    },
  };
}

function driftGauges(registry: Registry) {
  return {
    distance: gauge(registry, {
      name: 'flywheel_monitor_drift_distance',
      help: 'Jensen-Shannon distance of the newest window from the version reference, per feature group',
      labelNames: ['version', 'group'],
    }),
    psi: gauge(registry, {
      name: 'flywheel_monitor_drift_psi',
      help: 'Population stability index of the newest window against the version reference',
      labelNames: ['version', 'group'],
    }),
    drifted: gauge(registry, {
      name: 'flywheel_monitor_drifted',
      help: '1 when the group drifted (significant at the budgeted level and far enough)',
      labelNames: ['version', 'group'],
    }),
    newValues: gauge(registry, {
      name: 'flywheel_monitor_new_value_rate',
      help: 'Share of the newest window with a value the reference does not name',
      labelNames: ['version', 'group'],
    }),
  };
}
