// The consumer's Prometheus metrics (one set per registry: the services share them by name).
import type { Registry } from 'prom-client';
import { counter, gauge } from './metrics.js';

export function consumerMetrics(metrics: Registry) {
  return {
    consumed: counter(metrics, {
      name: 'flywheel_consumer_records_total',
      help: 'Records consumed and handed to the service, by topic',
      labelNames: ['topic'],
    }),
    deadLettered: counter(metrics, {
      name: 'flywheel_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and error code',
      labelNames: ['topic', 'code'],
    }),
    lag: gauge(metrics, {
      name: 'flywheel_consumer_lag',
      help: 'Messages behind the end of the partition after the last batch',
      labelNames: ['topic', 'partition'],
    }),
    retries: counter(metrics, {
      name: 'flywheel_consumer_batch_retries_total',
      help: 'Batches tried again after a service failure (never dead-lettered), by topic and code',
      labelNames: ['topic', 'code'],
    }),
    failing: gauge(metrics, {
      name: 'flywheel_consumer_failing_partitions',
      help: 'Partitions whose batch is failing now with a service failure (not ready meanwhile), by group',
      labelNames: ['group'],
    }),
  };
}

export type ConsumerMetrics = ReturnType<typeof consumerMetrics>;
