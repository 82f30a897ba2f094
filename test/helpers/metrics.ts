// Reading the shared metrics registry in tests.
import type { Registry } from 'prom-client';

/** Sum and count of a histogram, now (zeros when it has no observation yet). */
export async function histogramTotals(
  registry: Registry,
  name: string,
): Promise<{ sum: number; count: number }> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  const of = (suffix: string) =>
    values.find((v) => (v as { metricName?: string }).metricName === `${name}_${suffix}`)?.value ?? 0;
  return { sum: of('sum'), count: of('count') };
}
