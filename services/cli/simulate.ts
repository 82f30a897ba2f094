// `flywheel simulate`: simulated shop traffic into Kafka.
import { createProducer } from '../common/kafka.js';
import { createRuntime } from '../common/runtime.js';
import { CATEGORIES } from '../simulator/shop.js';
import { runSimulator } from '../simulator/runner.js';
import { UsageError, numberFlag, parseFlags } from './args.js';
import { followRouting, liftFor, parseLifts } from './treatment.js';

const SIMULATE_FLAGS = {
  rate: { type: 'string' },
  duration: { type: 'string' },
  count: { type: 'string' },
  seed: { type: 'string' },
  traffic: { type: 'string' },
  malformed: { type: 'string' },
  start: { type: 'string' },
  'purchase-delay-scale': { type: 'string' },
  'drift-at': { type: 'string' },
  'drift-category': { type: 'string' },
  'drift-shift': { type: 'string' },
  'drift-share': { type: 'string' },
  lift: { type: 'string' },
} as const;

export async function runSimulate(args: string[]): Promise<number> {
  const { values } = parseFlags(args, SIMULATE_FLAGS);
  const { rate, seed, durationS, count, traffic, malformed, purchaseDelayScale, startTime } =
    settingsOf(values);
  const drift = driftOf(values);
  const lifts = values.lift === undefined ? null : parseLifts(values.lift);

  const runtime = createRuntime('simulator');
  const { logger } = runtime;
  const producer = createProducer(runtime.kafka);
  await producer.connect();
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  logger.info(
    {
      seed,
      rate,
      traffic,
      durationS,
      count,
      malformed,
      drift,
      purchaseDelayScale,
      ...(lifts ? { lifts: Object.fromEntries(lifts) } : {}),
    },
    'simulating shop traffic',
  );
  const routing = lifts ? await followRouting(runtime.kafka, runtime.codecs, logger) : null;
  const treatment =
    lifts && routing
      ? (userId: string, _time: number, segment: string) => liftFor(userId, routing.current(), lifts, segment)
      : null;
  try {
    const stats = await runSimulator({
      producer,
      codecs: runtime.codecs,
      logger,
      simulation: { seed, startTime, trafficRate: traffic, drift, purchaseDelayScale, treatment },
      rate,
      maxEvents: count,
      durationMs: durationS === null ? null : durationS * 1000,
      malformedRate: malformed,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      signal: abort.signal,
    });
    logger.info(
      { seed, ...stats, ratePerSec: Math.round((stats.sent / Math.max(1, stats.elapsedMs)) * 1000) },
      'simulation done',
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    routing?.stop();
    await producer.disconnect();
  }
  return 0;
}

/**
 * The drift flags: from --drift-at on, purchases in the category get --drift-shift more log-odds,
 * and --drift-share of the clicks go to it (the traffic mix drifts too).
 */
function driftOf(values: {
  'drift-at'?: string;
  'drift-category'?: string;
  'drift-shift'?: string;
  'drift-share'?: string;
}) {
  if (values['drift-at'] === undefined) return null;
  const category = values['drift-category'] ?? 'electronics';
  if (!(CATEGORIES as readonly string[]).includes(category))
    throw new UsageError(`--drift-category must be one of ${CATEGORIES.join(', ')}`);
  return {
    atMs: numberFlag(values['drift-at'], 'drift-at', 0, 0) * 1000,
    category,
    shift: numberFlag(values['drift-shift'], 'drift-shift', 1.5, -10, 10),
    share: numberFlag(values['drift-share'], 'drift-share', 0, 0, 1),
  };
}

function settingsOf(values: Record<string, string | undefined>) {
  const rate = numberFlag(values.rate, 'rate', 200, 0);
  const seed = numberFlag(values.seed, 'seed', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 32 - 1);
  const durationS = values.duration === undefined ? null : numberFlag(values.duration, 'duration', 0, 0);
  const count = values.count === undefined ? null : numberFlag(values.count, 'count', 0, 1);
  const traffic = numberFlag(values.traffic, 'traffic', rate > 0 ? rate : 100, 0.001);
  const malformed = numberFlag(values.malformed, 'malformed', 0, 0, 0.5);
  const purchaseDelayScale = numberFlag(
    values['purchase-delay-scale'],
    'purchase-delay-scale',
    1,
    0.001,
    100,
  );
  const startTime = values.start === undefined ? Date.now() : Date.parse(values.start);
  if (Number.isNaN(startTime)) throw new UsageError(`--start must be an ISO date, got '${values.start}'`);
  return { rate, seed, durationS, count, traffic, malformed, purchaseDelayScale, startTime };
}
