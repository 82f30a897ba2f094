// The Grafana dashboard and the Prometheus scrape config in docker/ are checked by reading them:
// every panel's query names metrics the services export, with labels those metrics have, and
// Prometheus scrapes every service that serves /metrics at the port its configuration listens on.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { consumerMetrics } from '../../services/common/consumer-metrics.js';
import { createMetricsRegistry } from '../../services/common/metrics.js';
import { joinerMetrics } from '../../services/joiner/metrics.js';
import { repartitionMetrics } from '../../services/joiner/repartition.js';
import { labelingMetrics } from '../../services/labeling/metrics.js';
import { monitorMetrics } from '../../services/monitor/metrics.js';
import { rolloutMetrics } from '../../services/rollout/metrics.js';
import { httpLatency } from '../../services/scorer/http.js';
import { scorerMetrics } from '../../services/scorer/metrics.js';
import { trainerMetrics } from '../../services/trainer/metrics.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string; legendFormat?: string }[];
}
interface ComposeService {
  profiles?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  build?: unknown;
}

/** Every metric the services can export, with its label names. */
function exportedMetrics(): Map<string, { type: string; labels: string[] }> {
  const registry = new Registry();
  scorerMetrics(registry);
  httpLatency(registry);
  joinerMetrics(registry);
  repartitionMetrics(registry);
  trainerMetrics(registry);
  rolloutMetrics(registry);
  monitorMetrics(registry);
  consumerMetrics(registry);
  labelingMetrics(registry, {
    stats: () => Promise.resolve({ ready: 0, leased: 0 }),
    budget: () => Promise.resolve({ perHour: 500, usedThisHour: 0, refusedTotal: 0 }),
    agreement: () => Promise.resolve({ tasks: 0, fleissKappa: null, pairs: [] }),
  });
  const metrics = new Map<string, { type: string; labels: string[] }>();
  for (const metric of [
    ...registry.getMetricsAsArray(),
    ...createMetricsRegistry('any').getMetricsAsArray(),
  ]) {
    const { name, labelNames, constructor } = metric as unknown as {
      name: string;
      labelNames: string[];
      constructor: { name: string };
    };
    metrics.set(name, { type: constructor.name, labels: labelNames });
  }
  return metrics;
}

// Labels every series has: the service's default label and Prometheus's own.
const COMMON_LABELS = ['service', 'job', 'instance', 'flywheel_service'];

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const dashboard = JSON.parse(read('docker/grafana/dashboards/flywheel.json')) as {
  uid: string;
  panels: Panel[];
  templating: { list: { definition: string }[] };
};

describe('Grafana dashboard', () => {
  const metrics = exportedMetrics();
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  function metricsIn(expr: string): { name: string; labels: string[] }[] {
    return [...expr.matchAll(/\bflywheel_[a-z0-9_]+\b/g)].map(([name]) => {
      const exact = metrics.get(name);
      if (exact) return { name, labels: exact.labels };
      const base = name.replace(/_(bucket|sum|count)$/, '');
      const histogram = metrics.get(base);
      assert.ok(histogram, `${name} is exported by no service`);
      assert.equal(histogram.type, 'Histogram', `${name}: only a histogram has ${name.slice(base.length)}`);
      return { name, labels: [...histogram.labels, ...(name.endsWith('_bucket') ? ['le'] : [])] };
    });
  }

  it('has panels in every row, each with a query', () => {
    assert.ok(panels.length >= 20);
    for (const panel of panels) assert.ok(panel.targets?.length, `${panel.title} has a query`);
  });

  it("every panel's query names metrics the services export, grouped and filtered by labels they have", () => {
    for (const panel of panels)
      for (const { expr, legendFormat } of panel.targets ?? []) {
        const named = metricsIn(expr);
        assert.ok(named.length > 0, `${panel.title}: ${expr} names a Flywheel metric`);
        const known = new Set([...COMMON_LABELS, ...named.flatMap((m) => m.labels)]);
        const grouped = [...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap(([, list]) =>
          list!.split(',').map((l) => l.trim()),
        );
        const filtered = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap(([, selector]) =>
          [...selector!.matchAll(/(\w+)\s*(=~|!=|=)/g)].map(([, label]) => label!),
        );
        for (const label of [...grouped, ...filtered])
          assert.ok(known.has(label), `${panel.title}: ${expr} uses label ${label}, which it lacks`);
        // A legend can only show what the query kept: its by-list, or else the metric's labels.
        const kept = grouped.length > 0 ? new Set(grouped) : known;
        for (const [, label] of (legendFormat ?? '').matchAll(/\{\{(\w+)\}\}/g))
          assert.ok(kept.has(label!), `${panel.title}: legend {{${label}}} is not in ${expr}`);
      }
  });

  it('reads the provisioned Prometheus data source, and its version variable a monitor metric', () => {
    const datasources = parse(read('docker/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { uid: string; url: string }[];
    };
    const uid = datasources.datasources[0]!.uid;
    for (const panel of panels) assert.equal(panel.datasource?.uid, uid, `${panel.title} reads ${uid}`);
    assert.match(datasources.datasources[0]!.url, /^http:\/\/prometheus:9090$/);
    for (const variable of dashboard.templating.list) metricsIn(variable.definition);
  });
});

describe('Prometheus and Grafana in docker-compose.yml', () => {
  it('scrapes every Flywheel service that serves /metrics at the port it listens on', () => {
    const config = parse(read('docker/prometheus/prometheus.yml')) as {
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    const targets = config.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets)).sort();
    // The registry's admin API is the one HTTP service without /metrics.
    const served = Object.entries(compose.services)
      .filter(([name, s]) => s.build && s.ports && name !== 'registry')
      .map(([name, s]) => {
        const port = Object.entries(s.environment ?? {}).find(([k]) => /^FW_\w*PORT$/.test(k))?.[1];
        return `${name}:${port}`;
      })
      .sort();
    assert.deepEqual(targets, served);
  });

  it('runs both under the observability profile, with the files they mount', () => {
    for (const name of ['prometheus', 'grafana']) {
      const service = compose.services[name];
      assert.ok(service, `${name} is in the compose file`);
      assert.deepEqual(service.profiles, ['observability']);
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source!.startsWith('./')) assert.ok(existsSync(join(ROOT, source!)), `${source} exists`);
      }
    }
    const grafana = compose.services.grafana!;
    const provider = parse(read('docker/grafana/provisioning/dashboards/flywheel.yml')) as {
      providers: { options: { path: string } }[];
    };
    assert.ok(
      grafana.volumes?.includes(`./docker/grafana/dashboards:${provider.providers[0]!.options.path}:ro`),
      'the dashboards folder is mounted where the provider reads',
    );
  });
});
