// The console's pipeline view: each service's readiness and, read from its own /metrics, how far
// behind it is (consumer lag per topic, the joiner's watermark and input progress, the monitor's
// input ages, the scorer's outcome-to-live time), what it consumed and dead-lettered. The text
// format is Prometheus's exposition format; only the lines used here are read. Pure but `ask`.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of a Prometheus text exposition (comments and malformed lines skipped). */
export function parseMetrics(text: string, wanted: (name: string) => boolean = () => true): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match || !wanted(match[1]!)) continue;
    const labels: Record<string, string> = {};
    for (const [, key, raw] of (match[2] ?? '').matchAll(LABEL))
      labels[key!] = raw!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    const value = Number(match[3]);
    if (!Number.isNaN(value)) samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

export interface ServiceState {
  name: string;
  url: string;
  ready: boolean | null;
  reason: string | null;
  /** Messages behind the end, summed over partitions, per topic. */
  lag: Record<string, number>;
  consumed: Record<string, number>;
  deadLettered: number;
  /** Seconds behind the wall clock, by what: the joiner's watermark and inputs, the monitor's inputs. */
  behindSeconds: Record<string, number>;
  /** Mean seconds from the newest outcome a version learned from to that version serving. */
  outcomeToLiveSeconds: number | null;
  error: string | null;
}

const sumBy = (samples: Sample[], name: string, key: string) => {
  const out: Record<string, number> = {};
  for (const s of samples)
    if (s.name === name) out[s.labels[key] ?? ''] = (out[s.labels[key] ?? ''] ?? 0) + s.value;
  return out;
};

/** What a service's /metrics says of its progress. */
export function progressOf(text: string): Omit<ServiceState, 'name' | 'url' | 'ready' | 'reason' | 'error'> {
  const samples = parseMetrics(text, (name) => name.startsWith('flywheel_'));
  const behindSeconds: Record<string, number> = {};
  const watermark = samples.filter((s) => s.name === 'flywheel_joiner_watermark_lag_seconds');
  if (watermark.length > 0) behindSeconds.watermark = Math.max(...watermark.map((s) => s.value));
  for (const [input, value] of Object.entries(
    sumBy(samples, 'flywheel_joiner_input_progress_lag_seconds', 'input'),
  ))
    behindSeconds[`${input} complete`] = value;
  for (const [input, value] of Object.entries(sumBy(samples, 'flywheel_monitor_input_age_seconds', 'input')))
    behindSeconds[`newest ${input}`] = value;
  const one = (name: string) => samples.find((s) => s.name === name)?.value ?? 0;
  const count = one('flywheel_scorer_outcome_to_live_seconds_count');
  return {
    lag: sumBy(samples, 'flywheel_consumer_lag', 'topic'),
    consumed: sumBy(samples, 'flywheel_consumer_records_total', 'topic'),
    deadLettered: Object.values(sumBy(samples, 'flywheel_dead_letters_total', 'topic')).reduce(
      (a, b) => a + b,
      0,
    ),
    behindSeconds,
    outcomeToLiveSeconds: count > 0 ? one('flywheel_scorer_outcome_to_live_seconds_sum') / count : null,
  };
}

/** "name=url,name=url" (FW_CONSOLE_SERVICES) as pairs. */
export function parseServiceList(list: string): { name: string; url: string }[] {
  return list
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => {
      const cut = part.indexOf('=');
      return { name: part.slice(0, cut).trim(), url: part.slice(cut + 1).trim() };
    });
}

/** Asks one service for its readiness and metrics; one that does not answer says why. */
export async function serviceState(
  service: { name: string; url: string },
  timeoutMs: number,
): Promise<ServiceState> {
  const base = service.url.replace(/\/$/, '');
  const empty = { lag: {}, consumed: {}, deadLettered: 0, behindSeconds: {}, outcomeToLiveSeconds: null };
  try {
    const [readyz, metrics] = await Promise.all([
      fetch(`${base}/readyz`, { signal: AbortSignal.timeout(timeoutMs) }),
      fetch(`${base}/metrics`, { signal: AbortSignal.timeout(timeoutMs) }),
    ]);
    const readiness = (await readyz.json().catch(() => ({}))) as { ready?: boolean; reason?: string };
    return {
      ...service,
      ready: readyz.ok && readiness.ready !== false,
      reason: readiness.reason ?? (readyz.ok ? null : `/readyz answered ${readyz.status}`),
      ...(metrics.ok ? progressOf(await metrics.text()) : empty),
      error: metrics.ok ? null : `/metrics answered ${metrics.status}`,
    };
  } catch (error) {
    return { ...service, ready: null, reason: null, ...empty, error: `${base}: ${(error as Error).message}` };
  }
}
