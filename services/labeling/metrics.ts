// The labeling API's Prometheus metrics: the queue's depth (read from Redis when scraped), the
// answers labelers give, and how long after its click a label came.
import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from '../common/metrics.js';

export interface QueueDepth {
  stats(): Promise<{ ready: number; leased: number }>;
  budget(): Promise<{ perHour: number | null; usedThisHour: number; refusedTotal: number }>;
  agreement(): Promise<{
    tasks: number;
    fleissKappa: number | null;
    pairs: { a: string; b: string; kappa: number | null }[];
  }>;
}

export function labelingMetrics(registry: Registry, queue: QueueDepth) {
  gauge(registry, {
    name: 'flywheel_labeling_tasks',
    help: 'Review tasks in the queue, by state (ready to lease, leased to a labeler)',
    labelNames: ['state'],
    async collect() {
      const { ready, leased } = await queue.stats();
      this.set({ state: 'ready' }, ready);
      this.set({ state: 'leased' }, leased);
    },
  });
  gauge(registry, {
    name: 'flywheel_labeling_budget_tasks',
    help: 'The hourly budget of new review tasks: allowed per hour (absent: no limit), used this hour, refused in all',
    labelNames: ['state'],
    async collect() {
      const budget = await queue.budget();
      if (budget.perHour !== null) this.set({ state: 'per_hour' }, budget.perHour);
      this.set({ state: 'used_this_hour' }, budget.usedThisHour);
      this.set({ state: 'refused_total' }, budget.refusedTotal);
    },
  });
  gauge(registry, {
    name: 'flywheel_labeling_kappa',
    help: 'Agreement beyond chance of the newest completed tasks with several labels: Fleiss\' kappa (pair="all"), Cohen\'s per labeler pair',
    labelNames: ['pair'],
    async collect() {
      const report = await queue.agreement();
      this.reset();
      if (report.fleissKappa !== null) this.set({ pair: 'all' }, report.fleissKappa);
      for (const p of report.pairs) if (p.kappa !== null) this.set({ pair: `${p.a}+${p.b}` }, p.kappa);
    },
  });
  return {
    answers: counter(registry, {
      name: 'flywheel_labeling_answers_total',
      help: 'Answers given by labelers (label, skip, unclear)',
      labelNames: ['answer'],
    }),
    labelLatency: histogram(registry, {
      name: 'flywheel_labeling_label_latency_seconds',
      help: 'Time from the click to its human label',
      buckets: [10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600],
    }),
  };
}
export type LabelingMetrics = ReturnType<typeof labelingMetrics>;
