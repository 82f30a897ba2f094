// One Prometheus registry per process, labelled with the service, with Node's default metrics.
// Metrics are created through `counter()`, `gauge()` and `histogram()`, which return the one already registered under that
// name, so two components (or two instances of one) in a process share it instead of failing.
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'flywheel_' });
  return registry;
}

function existing<M>(registry: Registry, name: string): M | undefined {
  return registry.getSingleMetric(name) as M | undefined;
}

export function counter<T extends string>(registry: Registry, config: CounterConfiguration<T>): Counter<T> {
  return existing<Counter<T>>(registry, config.name) ?? new Counter({ ...config, registers: [registry] });
}

export function gauge<T extends string>(registry: Registry, config: GaugeConfiguration<T>): Gauge<T> {
  return existing<Gauge<T>>(registry, config.name) ?? new Gauge({ ...config, registers: [registry] });
}

export function histogram<T extends string>(
  registry: Registry,
  config: HistogramConfiguration<T>,
): Histogram<T> {
  return existing<Histogram<T>>(registry, config.name) ?? new Histogram({ ...config, registers: [registry] });
}
