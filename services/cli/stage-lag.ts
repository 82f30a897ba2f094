// How far each stage of the pipeline has read, and a reader of the feedback topic that says how far
// it has: what `flywheel bootstrap` waits on.
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer } from 'kafkajs';
import type { LabeledExample } from '../common/contracts.js';
import type { Runtime } from '../common/runtime.js';

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

/**
 * The partitions of `topic` not read to their end from `at` (next offset to read, by partition).
 * An empty partition needs nothing; `slack` 1: the last offset of a partition written in
 * transactions may be a commit marker, which no consumer reads (the settle time covers the doubt).
 */
export async function partitionsBehind(
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
export async function stagesBehind(
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

export interface FeedbackFollower {
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
export async function followFeedback(
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
