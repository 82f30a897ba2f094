// `flywheel bootstrap --from FILE`: a shop's history (JSON lines of clicks and purchases) into the
// live topics in event time, as fast as the broker takes it, through the running scorer, joiner
// and trainer: the same features, join and training as live traffic. It waits until what the
// history can label is labeled and learned, asks the trainer for a candidate, and reports what is
// left: a champion (learned, or the baseline), the trainer's checkpoint, and the clicks of the
// history's last windows, which stay open until live traffic moves event time past them.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Admin, Consumer } from 'kafkajs';
import { randomUUID } from 'node:crypto';
import type { ClickEvent, LabeledExample, PurchaseEvent } from '../common/contracts.js';
import { findProblems } from '../common/contracts.js';
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
import { requestCandidate } from './train.js';

export interface HistoryLine {
  file: string;
  line: number;
  reason: string;
}

export interface History {
  clicks: ClickEvent[];
  purchases: PurchaseEvent[];
  invalid: HistoryLine[];
}

/** Reads JSON lines of ClickEvent and PurchaseEvent (a purchase has `quantity`); bad lines are listed. */
export async function readHistory(
  files: readonly string[],
  runtime: Pick<Runtime, 'codecs'>,
  limits: { now: number; maxClockSkewMs: number },
): Promise<History> {
  const history: History = { clicks: [], purchases: [], invalid: [] };
  for (const file of files) {
    let line = 0;
    for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      line++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        history.invalid.push({ file, line, reason: 'not JSON' });
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        history.invalid.push({ file, line, reason: 'not a JSON object' });
        continue;
      }
      const kind = 'quantity' in value ? 'purchase' : 'click';
      const codec = kind === 'purchase' ? runtime.codecs.purchase : runtime.codecs.click;
      const event = value as ClickEvent & PurchaseEvent;
      // The Avro type says what is missing or mistyped; the checks, what is absurd.
      const typeErrors: string[] = [];
      if (
        !codec.readerType.isValid(event, { errorHook: (path) => typeErrors.push(path.join('.') || kind) })
      ) {
        history.invalid.push({
          file,
          line,
          reason: `not a ${kind}: bad or missing ${typeErrors.join(', ')}`,
        });
        continue;
      }
      const problems = findProblems(kind, event, limits);
      if (problems.length > 0) {
        history.invalid.push({ file, line, reason: `${kind}: ${problems.join('; ')}` });
        continue;
      }
      if (kind === 'purchase') history.purchases.push(event);
      else history.clicks.push(event);
    }
  }
  return history;
}

export interface BootstrapTopics {
  clicks: string;
  purchases: string;
  repartitioned: string;
  predictions: string;
  feedback: string;
}

export interface BootstrapGroups {
  scorer: string;
  joiner: string;
  repartition: string;
  trainer: string;
}

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
export async function replayHistory(options: {
  runtime: Runtime;
  history: History;
  topics: BootstrapTopics;
  groups: BootstrapGroups;
  /** How long the labels must stay unchanged, with every stage caught up, to be final. */
  settleMs: number;
  timeoutMs: number;
}): Promise<BootstrapReport> {
  const { runtime, history, topics, groups } = options;
  const log = runtime.logger.child({ component: 'bootstrap' });
  const started = Date.now();
  const events = [
    ...history.clicks.map((value) => ({ time: value.eventTime, id: value.eventId, click: value })),
    ...history.purchases.map((value) => ({ time: value.eventTime, id: value.eventId, purchase: value })),
  ].sort((a, b) => a.time - b.time || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const clickIds = new Set(history.clicks.map((c) => c.eventId));
  // A click's latest label: a correction (higher revision) replaces it, in whatever order read.
  const labels = new Map<string, { label: number; revision: number }>();
  let changes = 0;
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
      (e) => {
        if (!clickIds.has(e.eventId)) return;
        const seen = labels.get(e.eventId);
        if (seen && e.revision <= seen.revision) return;
        labels.set(e.eventId, { label: e.label, revision: e.revision });
        changes++;
      },
      Math.min(options.timeoutMs, 60_000),
    );
    const follower = feedback;
    const progress = new Progress({
      label: 'bootstrap: producing',
      total: events.length,
      logger: log,
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
        if ('click' in e && e.click)
          clicks.push({ key: e.click.userId, value: await runtime.codecs.click.encode(e.click) });
        else if ('purchase' in e && e.purchase)
          purchases.push({
            key: e.purchase.userId,
            value: await runtime.codecs.purchase.encode(e.purchase),
          });
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
    const produceSeconds = (Date.now() - started) / 1000;

    const waiting = new Progress({
      label: 'bootstrap: scored, joined and learned',
      total: history.clicks.length,
      logger: log,
      extra: () => ({ labeled: labels.size }),
    }).start();
    const deadline = Date.now() + options.timeoutMs;
    let lastChanges = -1;
    let quietSince = Date.now();
    let behind: string[] = [];
    for (;;) {
      const failure = follower.failure();
      if (failure) throw new Error(`bootstrap: reading ${topics.feedback} failed: ${failure.message}`);
      waiting.add(labels.size - waiting.count);
      behind = await stagesBehind(admin, topics, groups);
      if ((await partitionsBehind(admin, topics.feedback, follower.positions, 1n)) > 0)
        behind.push('this command, reading the labels');
      if (changes !== lastChanges || behind.length > 0) {
        lastChanges = changes;
        quietSince = Date.now();
      } else if (Date.now() - quietSince >= options.settleMs) break;
      if (Date.now() > deadline)
        throw new Error(
          `bootstrap: ${labels.size} of ${clickIds.size} clicks labeled after ${Math.round(options.timeoutMs / 1000)} s; still behind: ${behind.join(', ') || 'nothing (the labels kept changing)'}. Are the scorer, joiner and trainer running?`,
        );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    waiting.stop();
    let positives = 0;
    for (const { label } of labels.values()) positives += label;
    return {
      clicks: history.clicks.length,
      purchases: history.purchases.length,
      invalid: history.invalid,
      labeled: labels.size,
      positives,
      open: clickIds.size - labels.size,
      produceSeconds,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await feedback?.consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * The partitions of `topic` not read to their end from `at` (next offset to read, by partition).
 * An empty partition needs nothing; `slack` 1: the last offset of a partition written in
 * transactions may be a commit marker, which no consumer reads (the settle time covers the doubt).
 */
async function partitionsBehind(
  admin: Admin,
  topic: string,
  at: Map<number, bigint>,
  slack: bigint,
): Promise<number> {
  const ends = await admin.fetchTopicOffsets(topic);
  return ends.filter(
    (end) => BigInt(end.high) > BigInt(end.low) && (at.get(end.partition) ?? -1n) < BigInt(end.high) - slack,
  ).length;
}

/** Which stage has not yet committed the end of its input (empty: all caught up). */
async function stagesBehind(
  admin: Admin,
  topics: BootstrapTopics,
  groups: BootstrapGroups,
): Promise<string[]> {
  // [stage, its group, its input, whether the input is written in transactions]
  const stages: [string, string, string, boolean][] = [
    ['scorer', groups.scorer, topics.clicks, false],
    ['repartitioner', groups.repartition, topics.purchases, false],
    ['joiner (predictions)', groups.joiner, topics.predictions, false],
    ['joiner (purchases)', groups.joiner, topics.repartitioned, true],
    ['trainer', groups.trainer, topics.feedback, true],
  ];
  const behind: string[] = [];
  for (const [name, groupId, topic, transactional] of stages) {
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    const lagging = await partitionsBehind(admin, topic, at, transactional ? 1n : 0n);
    if (lagging > 0) behind.push(`${name} on ${topic} (${lagging} partitions)`);
  }
  return behind;
}

interface FeedbackFollower {
  consumer: Consumer;
  /** Next offset to read, by partition. */
  positions: Map<number, bigint>;
  /** Why the follower stopped, if it did. */
  failure: () => Error | null;
}

/**
 * Reads the feedback topic from `start` on, as it comes, read committed. It seeks to where it is
 * on every group join (a rebalance would otherwise resume at the end); a record it cannot decode
 * is skipped (the trainer dead-letters it).
 */
async function followFeedback(
  runtime: Runtime,
  topic: string,
  start: { partition: number; offset: string }[],
  onExample: (e: LabeledExample) => void,
  joinTimeoutMs: number,
): Promise<FeedbackFollower> {
  const positions = new Map(start.map(({ partition, offset }) => [partition, BigInt(offset)]));
  let failure: Error | null = null;
  const consumer = runtime.kafka.consumer({
    groupId: `flywheel.bootstrap.${randomUUID()}`,
    readUncommitted: false,
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    let joinedOnce: () => void = () => undefined;
    const joined = new Promise<void>((resolve) => (joinedOnce = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [partition, offset] of positions)
        consumer.seek({ topic, partition, offset: String(offset) });
      joinedOnce();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      failure = payload.error;
    });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        positions.set(partition, BigInt(message.offset) + 1n);
        if (!message.value) return;
        try {
          onExample(await runtime.codecs.labeledExample.decode(message.value));
        } catch {
          // Not a labeled example this command can read: the trainer dead-letters it.
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      joined,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`could not join a consumer group on ${topic} in ${joinTimeoutMs / 1000} s`)),
          joinTimeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (error) {
    await consumer.disconnect().catch(() => undefined);
    throw error;
  }
  return { consumer, positions, failure: () => failure };
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
    return 1;
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
