// Creates every Flywheel topic with its configuration; safe to run any number of times.
import type { Admin } from 'kafkajs';
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
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((spec) => ({
        topic: spec.name,
        numPartitions: wanted(spec),
        replicationFactor: options.replicationFactor,
        configEntries: Object.entries(spec.configs).map(([name, value]) => ({ name, value })),
      })),
    });
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
