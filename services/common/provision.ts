// Creates every Flywheel topic with its configuration; safe to run any number of times.
import type { Admin } from 'kafkajs';
import { FlywheelError } from './errors.js';
import type { Logger } from './logger.js';
import { TOPIC_SPECS, type TopicSpec } from './topics.js';

export interface ProvisionOptions {
  partitions: number;
  replicationFactor: number;
  specs?: readonly TopicSpec[];
}

export interface ProvisionResult {
  created: string[];
  existing: string[];
  /** Existing topics whose partition count differs from the wanted one (never changed here). */
  mismatched: { topic: string; partitions: number; wanted: number }[];
}

export async function ensureTopics(
  admin: Admin,
  logger: Logger,
  options: ProvisionOptions,
): Promise<ProvisionResult> {
  const specs = options.specs ?? TOPIC_SPECS;
  const wanted = (spec: TopicSpec) => spec.partitions ?? options.partitions;
  const present = new Set(await admin.listTopics());
  const missing = specs.filter((spec) => !present.has(spec.name));
  if (missing.length > 0) {
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.name,
          numPartitions: wanted(spec),
          replicationFactor: options.replicationFactor,
          configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
        })),
      });
    } catch (error) {
      // KafkaJS waits for leaders retrying LEADER_NOT_AVAILABLE only; a busy broker may answer
      // the new topics' metadata with UNKNOWN_TOPIC_OR_PARTITION first. They exist: wait on.
      if ((error as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw error;
      await waitForLeaders(
        admin,
        missing.map((spec) => spec.name),
      );
    }
  }
  const existing = specs.filter((spec) => present.has(spec.name));
  const mismatched: ProvisionResult['mismatched'] = [];
  if (existing.length > 0) {
    const metadata = await admin.fetchTopicMetadata({ topics: existing.map((spec) => spec.name) });
    for (const topic of metadata.topics) {
      const spec = existing.find((s) => s.name === topic.name);
      if (spec && topic.partitions.length !== wanted(spec)) {
        mismatched.push({ topic: topic.name, partitions: topic.partitions.length, wanted: wanted(spec) });
      }
    }
  }
  for (const m of mismatched) {
    logger.warn(m, 'topic exists with a different partition count; co-partitioned joins need equal counts');
  }
  const result = { created: missing.map((s) => s.name), existing: existing.map((s) => s.name), mismatched };
  logger.info({ created: result.created, existing: result.existing.length }, 'topics ensured');
  return result;
}

/** Until every partition of `topics` has a leader (30 s at most). */
async function waitForLeaders(admin: Admin, topics: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (let delay = 50; ; delay = Math.min(1000, delay * 2)) {
    const ready = await admin
      .fetchTopicMetadata({ topics })
      .then((m) => m.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
      .catch(() => false);
    if (ready) return;
    if (Date.now() > deadline)
      throw new FlywheelError(
        'FW_KAFKA_UNAVAILABLE',
        `topics ${topics.join(', ')} have no leaders after 30 s`,
      );
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}
