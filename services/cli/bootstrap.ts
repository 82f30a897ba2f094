// `flywheel bootstrap --from FILE`: a shop's history (JSON lines of clicks and purchases) into the
// live topics in event time, as fast as the broker takes it, through the running scorer, joiner
// and trainer: the same features, join and training as live traffic. It waits until what the
// history can label is labeled and learned, asks the trainer for a candidate, and reports what is
// left: a champion (learned, or the baseline), the trainer's checkpoint, and the clicks of the
// history's last windows, which stay open until live traffic moves event time past them.
import type { Admin, Producer } from 'kafkajs';
import type { LabeledExample } from '../common/contracts.js';
import { FlywheelError } from '../common/errors.js';
import { createProducer } from '../common/kafka.js';
import { Progress } from '../common/progress.js';
import { createRuntime, type Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { loadJoinerConfig } from '../joiner/config.js';
import { loadRegistryConfig } from '../registry/config.js';
import { FileModelRegistry } from '../registry/store.js';
import { loadScorerConfig } from '../scorer/config.js';
import { loadTrainerConfig } from '../trainer/config.js';
import { UsageError, numberFlag, parseFlags } from './args.js';
import { readHistory, type History, type HistoryLine } from './history-file.js';
import {
  followFeedback,
  partitionsBehind,
  stagesBehind,
  type BootstrapGroups,
  type BootstrapTopics,
  type FeedbackFollower,
} from './stage-lag.js';
import { requestCandidate } from './train.js';

export { readHistory, type History, type HistoryLine } from './history-file.js';
export type { BootstrapGroups, BootstrapTopics } from './stage-lag.js';

export interface BootstrapReport {
  clicks: number;
  purchases: number;
  invalid: HistoryLine[];
  /** Clicks of the history with a label in the feedback topic. */
  labeled: number;
  positives: number;
  /** Clicks whose windows are still open (labeled when later input moves event time past them). */
  open: number;
  produceSeconds: number;
  seconds: number;
}

/**
 * Produces the history into the topics in event time order, keyed by user (record timestamps are
 * the time of writing); then waits until the scorer, the joiner and the trainer have read
 * everything and the labels have settled (the joiner's idle rule needs `settleMs` of quiet).
 */
export async function replayHistory(options: ReplayOptions): Promise<BootstrapReport> {
  const { runtime, history, topics } = options;
  const started = Date.now();
  const labels = new LatestLabels(history);
  const admin = runtime.kafka.admin();
  const producer = createProducer(runtime.kafka);
  let feedback: FeedbackFollower | undefined;
  try {
    await admin.connect();
    await producer.connect();
    const feedbackStart = await admin.fetchTopicOffsets(topics.feedback);
    feedback = await followFeedback(
      runtime,
      topics.feedback,
      feedbackStart,
      (e) => labels.take(e),
      Math.min(options.timeoutMs, 60_000),
    );
    await produceHistory(runtime, producer, history, topics);
    const produceSeconds = (Date.now() - started) / 1000;
    await awaitSettled(options, admin, feedback, labels);
    return {
      clicks: history.clicks.length,
      purchases: history.purchases.length,
      invalid: history.invalid,
      labeled: labels.size,
      positives: labels.positives(),
      open: history.clicks.length - labels.size,
      produceSeconds,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await feedback?.consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

interface ReplayOptions {
  runtime: Runtime;
  history: History;
  topics: BootstrapTopics;
  groups: BootstrapGroups;
  /** How long the labels must stay unchanged, with every stage caught up, to be final. */
  settleMs: number;
  timeoutMs: number;
}

/** Each click's latest label: a correction (higher revision) replaces it, in whatever order read. */
class LatestLabels {
  private readonly clickIds: Set<string>;
  private readonly labels = new Map<string, { label: number; revision: number }>();
  /** Labels taken or replaced so far: unchanged over the settle time means settled. */
  changes = 0;

  constructor(history: History) {
    this.clickIds = new Set(history.clicks.map((c) => c.eventId));
  }

  get size(): number {
    return this.labels.size;
  }

  get clicks(): number {
    return this.clickIds.size;
  }

  take(e: LabeledExample): void {
    if (!this.clickIds.has(e.eventId)) return;
    const seen = this.labels.get(e.eventId);
    if (seen && e.revision <= seen.revision) return;
    this.labels.set(e.eventId, { label: e.label, revision: e.revision });
    this.changes++;
  }

  positives(): number {
    let positives = 0;
    for (const { label } of this.labels.values()) positives += label;
    return positives;
  }
}

/** The history in event time order, keyed by user, a thousand events per send. */
async function produceHistory(
  runtime: Runtime,
  producer: Producer,
  history: History,
  topics: BootstrapTopics,
): Promise<void> {
  const events = [
    ...history.clicks.map((click) => ({ time: click.eventTime, id: click.eventId, click, purchase: null })),
    ...history.purchases.map((purchase) => ({
      time: purchase.eventTime,
      id: purchase.eventId,
      click: null,
      purchase,
    })),
  ].sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const progress = new Progress({
    label: 'bootstrap: producing',
    total: events.length,
    logger: runtime.logger.child({ component: 'bootstrap' }),
  }).start();
  const BATCH = 1000;
  for (let i = 0; i < events.length; i += BATCH) {
    const slice = events.slice(i, i + BATCH);
    // No record timestamp: the broker stamps the time of writing. Stamped with the event time,
    // a history older than the topics' retention is deleted by the broker before it is read
    // (seen: the scorer's offset went out of range mid-replay); the event time is in the event.
    const clicks: { key: string; value: Buffer }[] = [];
    const purchases: { key: string; value: Buffer }[] = [];
    for (const e of slice) {
      if (e.click) clicks.push({ key: e.click.userId, value: await runtime.codecs.click.encode(e.click) });
      else if (e.purchase)
        purchases.push({ key: e.purchase.userId, value: await runtime.codecs.purchase.encode(e.purchase) });
    }
    await producer.sendBatch({
      topicMessages: [
        ...(clicks.length > 0 ? [{ topic: topics.clicks, messages: clicks }] : []),
        ...(purchases.length > 0 ? [{ topic: topics.purchases, messages: purchases }] : []),
      ],
    });
    progress.add(slice.length);
  }
  progress.stop();
}

/**
 * Returns once the scorer, the joiner, the trainer and this command's reader have read everything
 * and the labels have not changed for `settleMs` (the joiner's idle rule needs that quiet).
 */
async function awaitSettled(
  options: ReplayOptions,
  admin: Admin,
  follower: FeedbackFollower,
  labels: LatestLabels,
): Promise<void> {
  const { topics, groups } = options;
  const waiting = new Progress({
    label: 'bootstrap: scored, joined and learned',
    total: labels.clicks,
    logger: options.runtime.logger.child({ component: 'bootstrap' }),
    extra: () => ({ labeled: labels.size }),
  }).start();
  const deadline = Date.now() + options.timeoutMs;
  let lastChanges = -1;
  let quietSince = Date.now();
  for (;;) {
    const failure = follower.failure();
    if (failure)
      throw new FlywheelError(
        'FW_KAFKA_UNAVAILABLE',
        `bootstrap: reading ${topics.feedback} failed: ${failure.message}`,
      );
    waiting.add(labels.size - waiting.count);
    const behind = await stagesBehind(admin, topics, groups);
    if ((await partitionsBehind(admin, topics.feedback, follower.positions, 1n)) > 0)
      behind.push('this command, reading the labels');
    if (labels.changes !== lastChanges || behind.length > 0) {
      lastChanges = labels.changes;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= options.settleMs) break;
    if (Date.now() > deadline)
      throw new FlywheelError(
        'FW_TIMED_OUT',
        `bootstrap: ${labels.size} of ${labels.clicks} clicks labeled after ${Math.round(options.timeoutMs / 1000)} s; still behind: ${behind.join(', ') || 'nothing (the labels kept changing)'}. Are the scorer, joiner and trainer running?`,
      );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  waiting.stop();
}

export const BOOTSTRAP_USAGE =
  'flywheel bootstrap --from FILE [--from FILE ...] [--timeout S] [--settle S] [--no-candidate] [--trainer-url URL]';

/** The command: reads, replays, asks for a candidate, reports. Exit 0 when the trainer answered and a champion serves. */
export async function runBootstrap(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    from: { type: 'string', multiple: true },
    timeout: { type: 'string' },
    settle: { type: 'string' },
    'no-candidate': { type: 'boolean' },
    'trainer-url': { type: 'string' },
  });
  const files = values.from ?? [];
  if (files.length === 0) throw new UsageError(`usage: ${BOOTSTRAP_USAGE}`);
  const joiner = loadJoinerConfig();
  const trainer = loadTrainerConfig();
  const timeoutMs = numberFlag(values.timeout, 'timeout', 1800, 1) * 1000;
  // The joiner calls an input idle after FW_JOIN_IDLE_MS caught up; its labels come after that.
  const settleMs = numberFlag(values.settle, 'settle', (joiner.FW_JOIN_IDLE_MS + 5000) / 1000, 0) * 1000;
  if (!values['no-candidate'] && !loadRegistryConfig().FW_ADMIN_TOKEN)
    throw new UsageError(
      'FW_ADMIN_TOKEN must be set to ask the trainer for a candidate (or pass --no-candidate)',
    );
  const runtime = createRuntime('bootstrap');
  const history = await readReported(files, runtime);
  if (!history) return 1;
  const report = await replayHistory({
    runtime,
    history,
    topics: {
      clicks: TOPICS.clicks,
      purchases: TOPICS.purchases,
      repartitioned: TOPICS.repartitionedPurchases,
      predictions: TOPICS.predictions,
      feedback: TOPICS.feedback,
    },
    groups: {
      scorer: loadScorerConfig().FW_SCORER_GROUP,
      joiner: joiner.FW_JOINER_GROUP,
      repartition: `${joiner.FW_JOINER_GROUP}.repartition`,
      trainer: trainer.FW_TRAINER_GROUP,
    },
    settleMs,
    timeoutMs,
  });
  console.log(
    `replayed ${report.clicks} clicks and ${report.purchases} purchases (${report.invalid.length} lines skipped) in ${report.produceSeconds.toFixed(1)} s; ${report.labeled} clicks labeled (${report.positives} positive) after ${report.seconds.toFixed(1)} s; ${report.open} in the last windows, labeled when live traffic moves event time past them`,
  );
  return finish(values, files);
}

/** Asks for a candidate unless told not to, then names the champion: 0 when one serves. */
async function finish(
  values: { 'no-candidate'?: boolean; 'trainer-url'?: string },
  files: string[],
): Promise<number> {
  const trainer = loadTrainerConfig();
  if (!values['no-candidate']) {
    const answer = await requestCandidate(
      `bootstrap from ${files.join(', ')}`,
      values['trainer-url'] ?? `http://127.0.0.1:${trainer.FW_TRAINER_HTTP_PORT}`,
    );
    console.log(`candidate: ${answer.message}`);
    if (!answer.ok) return 1;
  }
  const registry = new FileModelRegistry(loadRegistryConfig().FW_REGISTRY_DIR);
  const champion = (await registry.routing()).champion;
  if (!champion) {
    console.error('no champion yet: the scorer serves its fixed prior');
    return 1;
  }
  const metadata = await registry.get(champion);
  console.log(`champion: ${champion} (${metadata.kind}); trainer checkpoint in ${trainer.FW_TRAINER_DIR}`);
  return 0;
}

/** The history read, its skipped lines printed; null when it holds no valid click. */
async function readReported(files: string[], runtime: Runtime): Promise<History | null> {
  const { logger } = runtime;
  const history = await readHistory(files, runtime, {
    now: Date.now(),
    maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
  });
  for (const bad of history.invalid.slice(0, 10))
    console.error(`${bad.file}:${bad.line}: skipped, ${bad.reason}`);
  if (history.invalid.length > 10) console.error(`... and ${history.invalid.length - 10} more lines skipped`);
  if (history.clicks.length === 0) {
    console.error(`no valid clicks in ${files.join(', ')}: nothing to bootstrap from`);
    return null;
  }
  logger.info(
    {
      files,
      clicks: history.clicks.length,
      purchases: history.purchases.length,
      invalid: history.invalid.length,
    },
    'bootstrap: history read',
  );
  return history;
}
