// One Prometheus registry per process, labelled with the service, with Node's default metrics.
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'flywheel_' });
  return registry;
}
