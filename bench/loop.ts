// A shop's history replayed in event time through the real scorer, joiner and trainer on the
// local stack (topics, registry and checkpoint of its own), compressed into a given wall time, so
// that labels come back before most later clicks are scored, as in a live shop. Returns what
// the scorer served for each click and the loop's labels. Used by the learning benchmarks.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickEvent, LabeledExample, Prediction, PurchaseEvent } from '../services/common/contracts.js';
import { createProducer, waitForKafka } from '../services/common/kafka.js';
import { partitionOf } from '../services/common/partitioner.js';
import { Progress } from '../services/common/progress.js';
import { ensureTopics } from '../services/common/provision.js';
import { createRuntime, type Runtime } from '../services/common/runtime.js';
import type { TopicName } from '../services/common/topics.js';
import { loadJoinerConfig } from '../services/joiner/config.js';
import { Joiner } from '../services/joiner/service.js';
import { FileModelRegistry, type VersionMetadata } from '../services/registry/store.js';
import { loadScorerConfig, type ScorerConfig } from '../services/scorer/config.js';
import { MemoryReviewSink, type ReviewSink } from '../services/scorer/review.js';
import { Scorer } from '../services/scorer/service.js';
import { loadTrainerConfig, type TrainerConfig } from '../services/trainer/config.js';
import { Trainer } from '../services/trainer/service.js';
import { TopicCollector } from '../test/helpers/collect.js';

export const WINDOW_MS = 30 * 60_000;
const PARTITIONS = 3;

export interface LoopRun {
  runtime: Runtime;
  /** The served prediction of each click (its routed arm; a shadow is never served). */
  served: Map<string, Prediction>;
  /** The loop's latest label of each click. */
  labels: Map<string, number>;
  /** Labels published again with a new revision (late input). */
  corrections: number;
  versions: VersionMetadata[];
  registry: FileModelRegistry;
  /** The trainer's labelers measured against outcomes, and its merge counts, at the end. */
  labelers: ReturnType<Trainer['labelers']>;
  wallSeconds: number;
  speed: number;
  /** Removes the run's topics, registry and checkpoint. */
  cleanup(): Promise<void>;
}

export async function replayThroughLoop(options: {
  name: string;
  clicks: readonly ClickEvent[];
  purchases: readonly PurchaseEvent[];
  wallMs: number;
  trainer: Partial<TrainerConfig>;
  scorer?: Partial<ScorerConfig>;
  /** Where the scorer's review tasks go (default: kept in memory, nobody labels them). */
  reviewSink?: ReviewSink;
  /**
   * Started with the services and stopped before them (scripted labelers, say): given the run's
   * topics and the replay's event-time clock.
   */
  alongside?: (context: {
    topics: Record<string, string>;
    runtime: Runtime;
    eventClock: () => number;
  }) => Promise<() => Promise<void>>;
}): Promise<LoopRun> {
  const { clicks, purchases } = options;
  const suffix = randomUUID().slice(0, 8);
  const registryDir = mkdtempSync(join(tmpdir(), `flywheel-${options.name}-registry-`));
  const trainerDir = mkdtempSync(join(tmpdir(), `flywheel-${options.name}-trainer-`));
  process.env.FW_REGISTRY_DIR = registryDir;
  const runtime = createRuntime(`bench-${options.name}`, {
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
  });
  const log = runtime.logger;
  const topic = (role: string) => `bench.${options.name}.${role}.${suffix}`;
  const names = {
    clicks: topic('clicks'),
    purchases: topic('purchases'),
    repartitioned: topic('repartitioned'),
    predictions: topic('predictions'),
    feedback: topic('feedback'),
    humanLabels: topic('human'),
    deadLetters: topic('dlq'),
    modelUpdates: topic('updates'),
  };
  const admin = await waitForKafka(runtime.kafka, log, 30_000);
  await ensureTopics(admin, log, {
    partitions: PARTITIONS,
    replicationFactor: 1,
    specs: Object.values(names).map((name) => ({
      name: name as TopicName,
      partitions: PARTITIONS,
      configs: {},
      description: 'bench topic',
    })),
  });

  const group = `bench.${options.name}.${suffix}`;
  const scorer = new Scorer({
    runtime,
    http: false,
    reviewSink: options.reviewSink ?? new MemoryReviewSink(),
    config: {
      ...loadScorerConfig({}),
      ...options.scorer,
      FW_SCORER_GROUP: `${group}.scorer`,
      FW_HTTP_PORT: 0,
    },
    topics: {
      clicks: names.clicks,
      predictions: names.predictions,
      deadLetters: names.deadLetters,
      modelUpdates: names.modelUpdates,
    },
  });
  const joiner = new Joiner({
    runtime,
    http: false,
    config: {
      ...loadJoinerConfig({}),
      FW_JOINER_GROUP: `${group}.joiner`,
      FW_JOINER_TRANSACTIONAL_ID: `${group}.joiner`,
      FW_SCORER_GROUP: `${group}.scorer`,
      FW_JOIN_WINDOW_MS: WINDOW_MS,
      FW_JOIN_IDLE_MS: 1_000,
      FW_JOIN_PROGRESS_POLL_MS: 100,
    },
    topics: {
      clicks: names.clicks,
      predictions: names.predictions,
      purchases: names.purchases,
      repartitioned: names.repartitioned,
      feedback: names.feedback,
      deadLetters: names.deadLetters,
    },
  });
  const trainer = new Trainer({
    runtime,
    http: false,
    config: {
      ...loadTrainerConfig({}),
      ...options.trainer,
      FW_TRAINER_GROUP: `${group}.trainer`,
      FW_TRAINER_DIR: trainerDir,
      FW_TRAINER_WARM_START: false,
    },
    topics: {
      feedback: names.feedback,
      humanLabels: names.humanLabels,
      deadLetters: names.deadLetters,
      modelUpdates: names.modelUpdates,
    },
  });
  const predictions = new TopicCollector<Prediction>(runtime.kafka, names.predictions, (b) =>
    runtime.codecs.prediction.decode(b),
  );
  const labeled = new TopicCollector<LabeledExample>(runtime.kafka, names.feedback, (b) =>
    runtime.codecs.labeledExample.decode(b),
  );
  await Promise.all([predictions.start(), labeled.start()]);
  await scorer.start();
  await joiner.start();
  await trainer.start();
  // Set once the replay starts: the event time the replay has reached.
  let eventClock = () => Number.NaN;
  const stopAlongside = options.alongside
    ? await options.alongside({ topics: names, runtime, eventClock: () => eventClock() })
    : () => Promise.resolve();

  // A last click and purchase on every partition, past every window: a replay of history is
  // behind the wall clock, so only more input closes its last windows, and an input is complete
  // only up to its least advanced partition (README: the join).
  const lastTime = Math.max(...clicks.map((c) => c.eventTime), ...purchases.map((p) => p.eventTime));
  const closingUsers: string[] = [];
  for (let i = 0; closingUsers.length < PARTITIONS; i++) {
    const user = `bench-closing-${i}`;
    if (partitionOf(user, PARTITIONS) === closingUsers.length) closingUsers.push(user);
  }
  type Timed = { time: number; topic: string; key: string; encode: () => Promise<Buffer> };
  const closingEvents: Timed[] = closingUsers.flatMap((user, i) => {
    const click: ClickEvent = {
      ...(clicks[0] as ClickEvent),
      eventId: `bench-closing-${suffix}-${i}`,
      userId: user,
      sessionId: user,
      eventTime: lastTime + 2 * WINDOW_MS,
    };
    const purchase: PurchaseEvent = {
      eventId: `bench-closing-purchase-${suffix}-${i}`,
      userId: user,
      sessionId: user,
      itemId: click.itemId,
      category: click.category,
      price: 0,
      quantity: 1,
      eventTime: click.eventTime + 1,
    };
    return [
      {
        time: click.eventTime,
        topic: names.clicks,
        key: user,
        encode: () => runtime.codecs.click.encode(click),
      },
      {
        time: purchase.eventTime,
        topic: names.purchases,
        key: user,
        encode: () => runtime.codecs.purchase.encode(purchase),
      },
    ];
  });
  const events: Timed[] = [
    ...clicks.map((c) => ({
      time: c.eventTime,
      topic: names.clicks,
      key: c.userId,
      encode: () => runtime.codecs.click.encode(c),
    })),
    ...purchases.map((p) => ({
      time: p.eventTime,
      topic: names.purchases,
      key: p.userId,
      encode: () => runtime.codecs.purchase.encode(p),
    })),
    ...closingEvents,
  ].sort((a, b) => a.time - b.time);

  const first = (events[0] as Timed).time;
  const span = (events[events.length - 1] as Timed).time - first;
  const speed = span / options.wallMs;
  const producer = createProducer(runtime.kafka);
  await producer.connect();
  const progress = new Progress({
    label: 'replay',
    total: events.length,
    // The services stay quiet (warn); the replay's progress is for the person waiting.
    logger: log.child({ component: 'replay' }, { level: 'info' }),
    extra: () => ({ labels: labeled.records.length, learned: trainer.learned }),
  }).start();
  const started = Date.now();
  eventClock = () => first + (Date.now() - started) * speed;
  let next = 0;
  while (next < events.length) {
    const dueUntil = first + (Date.now() - started) * speed;
    const batch: Timed[] = [];
    while (next < events.length && (events[next] as Timed).time <= dueUntil)
      batch.push(events[next++] as Timed);
    if (batch.length > 0) {
      // Stamped with the time of writing: a history older than the topics' retention, stamped
      // with its event times, is deleted by the broker while it is replayed.
      const byTopic = new Map<string, { key: string; value: Buffer }[]>();
      for (const e of batch) {
        const list = byTopic.get(e.topic) ?? [];
        list.push({ key: e.key, value: await e.encode() });
        byTopic.set(e.topic, list);
      }
      await producer.sendBatch({
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      progress.add(batch.length);
    }
    const wait = Math.max(5, ((events[next]?.time ?? dueUntil) - dueUntil) / speed);
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 200)));
  }
  progress.stop();
  const clickIds = new Set(clicks.map((c) => c.eventId));
  await labeled.until(
    (records) =>
      new Set(records.map((r) => r.value.eventId).filter((id) => clickIds.has(id))).size >= clickIds.size,
    `labels of all ${clickIds.size} clicks`,
    300_000,
  );
  // Corrections of labels already published (late input) may still be on their way: wait
  // for the feedback topic to be quiet a while (a benchmark may wait on the wall clock).
  for (let seen = -1; seen !== labeled.records.length;) {
    seen = labeled.records.length;
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  const wallSeconds = Math.round((Date.now() - started) / 1000);

  const served = new Map<string, Prediction>();
  for (const { value } of predictions.records) if (value.arm !== 'shadow') served.set(value.eventId, value);
  const latest = new Map<string, { label: number; revision: number }>();
  for (const { value } of labeled.records) {
    const seen = latest.get(value.eventId);
    if (!seen || value.revision > seen.revision)
      latest.set(value.eventId, { label: value.label, revision: value.revision });
  }
  const registry = new FileModelRegistry(registryDir);
  const versions = await registry.list();
  await stopAlongside();
  const labelers = trainer.labelers();
  await trainer.stop();
  await joiner.stop();
  await scorer.stop();
  await Promise.all([predictions.stop(), labeled.stop(), producer.disconnect()]);
  return {
    runtime,
    corrections: labeled.records.filter((r) => r.value.revision > 0).length,
    served,
    labels: new Map([...latest].map(([id, l]) => [id, l.label])),
    versions,
    registry,
    labelers,
    wallSeconds,
    speed: Math.round(speed),
    async cleanup() {
      await admin.deleteTopics({ topics: Object.values(names) }).catch(() => undefined);
      await admin.disconnect();
      rmSync(registryDir, { recursive: true, force: true });
      rmSync(trainerDir, { recursive: true, force: true });
    },
  };
}

/** Which of the trainer's learners a version's weights are, with each one's progressive loss. */
export function learnerOf(v: VersionMetadata): {
  learner?: string;
  progressive?: Record<string, number | null>;
} {
  const selection = v.training.source === 'kafka' ? v.training.online?.selection : undefined;
  return selection ? { learner: selection.selected, progressive: selection.progressiveLogLoss } : {};
}
