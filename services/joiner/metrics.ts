// The joiner's Prometheus metrics, and the join-quality log: how many purchases credit no click,
// how much input came late, how many labels were corrected, said once a minute when it matters.
import type { Registry } from 'prom-client';
import type { Logger } from '../common/logger.js';
import { counter, gauge, histogram } from '../common/metrics.js';
import type { JoinCounters } from './join.js';

export function joinerMetrics(registry: Registry) {
  return { ...inputMetrics(registry), ...stateMetrics(registry) };
}

/** What the join took in and put out. */
function inputMetrics(registry: Registry) {
  return {
    consumed: counter(registry, {
      name: 'flywheel_joiner_records_total',
      help: 'Input records joined, by input',
      labelNames: ['input'],
    }),
    labels: counter(registry, {
      name: 'flywheel_joiner_labels_total',
      help: 'Labels published, by label source (outcome = purchase, timeout = none) and arm: outcome / all is the live purchase rate per arm',
      labelNames: ['source', 'arm'],
    }),
    corrections: counter(registry, {
      name: 'flywheel_joiner_corrections_total',
      help: 'Published labels replaced by a correction (late input changed them), by the new label',
      labelNames: ['label'],
    }),
    purchasesIn: counter(registry, {
      name: 'flywheel_joiner_purchases_total',
      help: 'Purchases joined',
    }),
    unattributed: counter(registry, {
      name: 'flywheel_joiner_unattributed_purchases_total',
      help: 'Purchases that credited no click (no prediction of that user and item inside the window)',
    }),
    lateInputs: counter(registry, {
      name: 'flywheel_joiner_late_inputs_total',
      help: 'Input behind the watermark on arrival (still joined exactly where the state was held), by input',
      labelNames: ['input'],
    }),
    duplicateInputs: counter(registry, {
      name: 'flywheel_joiner_duplicate_inputs_total',
      help: 'Duplicate input ignored, by input',
      labelNames: ['input'],
    }),
    uncorrectable: counter(registry, {
      name: 'flywheel_joiner_uncorrectable_inputs_total',
      help: 'Input later than FW_JOIN_RETENTION_MS behind the watermark: joined with what was still held',
    }),
    deadLetters: counter(registry, {
      name: 'flywheel_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and error code',
      labelNames: ['topic', 'code'],
    }),
  };
}

/** Where the join stands: what it holds, how far behind, how long a batch takes. */
function stateMetrics(registry: Registry) {
  return {
    pending: gauge(registry, {
      name: 'flywheel_joiner_pending',
      help: 'Clicks waiting for their outcome',
    }),
    held: gauge(registry, {
      name: 'flywheel_joiner_held_clicks',
      help: 'Clicks held in the join state (waiting, or decided and kept for corrections)',
    }),
    paused: gauge(registry, {
      name: 'flywheel_joiner_paused_partitions',
      help: 'Partitions whose predictions are paused by the pending cap',
    }),
    watermarkLag: gauge(registry, {
      name: 'flywheel_joiner_watermark_lag_seconds',
      help: 'Wall clock minus the watermark, per partition',
      labelNames: ['partition'],
    }),
    progressLag: gauge(registry, {
      name: 'flywheel_joiner_input_progress_lag_seconds',
      help: 'Wall clock minus how far an input is complete (the scorer for predictions, the repartitioner for purchases), last partition committed',
      labelNames: ['input'],
    }),
    delay: histogram(registry, {
      name: 'flywheel_joiner_purchase_delay_seconds',
      help: 'Click-to-purchase delay of positive labels',
      buckets: [1, 10, 30, 60, 300, 600, 1800, 3600],
    }),
    batchSeconds: histogram(registry, {
      name: 'flywheel_joiner_batch_seconds',
      help: 'Time to join and commit one batch',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    recoveries: counter(registry, {
      name: 'flywheel_joiner_recoveries_total',
      help: 'Partitions taken over out of step with Kafka, by how they were reconciled',
      labelNames: ['kind'],
    }),
  };
}

export interface QualityCounts {
  purchases: number;
  unattributed: number;
  latePredictions: number;
  latePurchases: number;
  corrections: number;
  uncorrectable: number;
}

/** Sums a minute of join-quality counts and warns when they say the labels may be poor. */
export class JoinQuality {
  private sum: QualityCounts = empty();
  private since = Date.now();

  constructor(
    private readonly log: Logger,
    /** Share of unattributed purchases above which a minute is worth a warning. */
    private readonly unattributedRate: number,
    private readonly periodMs = 60_000,
  ) {}

  note(counts: QualityCounts): void {
    for (const key of Object.keys(counts) as (keyof QualityCounts)[]) this.sum[key] += counts[key];
    const now = Date.now();
    if (now - this.since < this.periodMs) return;
    const s = this.sum;
    const rate = s.purchases > 0 ? s.unattributed / s.purchases : 0;
    if (s.purchases >= 20 && rate > this.unattributedRate)
      this.log.warn(
        {
          purchases: s.purchases,
          unattributed: s.unattributed,
          rate: Number(rate.toFixed(3)),
          seconds: (now - this.since) / 1000,
        },
        'many purchases credit no click: are purchases and clicks keyed by the same userId and item ids, and is the attribution window long enough?',
      );
    if (s.latePredictions + s.latePurchases + s.corrections + s.uncorrectable > 0)
      this.log.info(
        { ...s, seconds: (now - this.since) / 1000 },
        'input arrived behind the watermark (disorder within a source partition beyond the allowed lateness)',
      );
    this.sum = empty();
    this.since = now;
  }
}

function empty(): QualityCounts {
  return {
    purchases: 0,
    unattributed: 0,
    latePredictions: 0,
    latePurchases: 0,
    corrections: 0,
    uncorrectable: 0,
  };
}

/** A committed batch's counters (`added`: how much each grew in the batch) as metrics and quality. */
export function countBatch(
  metrics: ReturnType<typeof joinerMetrics>,
  quality: JoinQuality,
  added: (name: keyof JoinCounters) => number,
): void {
  metrics.purchasesIn.inc(added('purchases'));
  metrics.unattributed.inc(added('unattributedPurchases') + added('lateUnmatchedPurchases'));
  metrics.lateInputs.inc({ input: 'prediction' }, added('latePredictions'));
  metrics.lateInputs.inc({ input: 'purchase' }, added('latePurchases'));
  metrics.duplicateInputs.inc({ input: 'prediction' }, added('duplicatePredictions'));
  metrics.duplicateInputs.inc({ input: 'purchase' }, added('duplicatePurchases'));
  metrics.uncorrectable.inc(added('uncorrectable'));
  quality.note({
    purchases: added('purchases'),
    unattributed: added('unattributedPurchases') + added('lateUnmatchedPurchases'),
    latePredictions: added('latePredictions'),
    latePurchases: added('latePurchases'),
    corrections: added('corrections'),
    uncorrectable: added('uncorrectable'),
  });
}
