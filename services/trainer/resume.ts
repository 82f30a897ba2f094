// Where a starting trainer continues from: its checkpoint (unless the topics were recreated under
// it), or with none the champion's FTRL state (a warm start) read on after what it learned, or zero.
import type { Kafka } from 'kafkajs';
import { FlywheelError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { FeatureSpec } from '../model/features.js';
import type { FileModelRegistry } from '../registry/store.js';
import type { Checkpoint, CheckpointStore } from './checkpoint.js';
import type { WarmStart } from './core.js';
import { warmStartFrom } from './replay.js';

export async function resumePoint(options: {
  store: CheckpointStore;
  registry: FileModelRegistry;
  kafka: Kafka;
  spec: FeatureSpec;
  inputs: readonly string[];
  warmStart: boolean;
  logger: Logger;
}): Promise<{ checkpoint: Checkpoint | null; warm: WarmStart | null }> {
  const { store, spec, logger } = options;
  let checkpoint = await store.load();
  if (checkpoint && (await pastTheEnd(options.kafka, options.inputs, checkpoint.offsets))) {
    // Offsets beyond the end of a partition: the topics were recreated; the checkpoint is of another stream.
    logger.warn(
      { checkpoint: store.path, offsets: checkpoint.offsets },
      'checkpoint is ahead of the topics (were they recreated?); starting from scratch',
    );
    checkpoint = null;
  }
  if (checkpoint && checkpoint.featureSpecHash !== spec.hash)
    throw new FlywheelError(
      'FW_CHECKPOINT_MISMATCH',
      `checkpoint ${store.path} was made with feature spec ${checkpoint.featureSpecHash}, not ${spec.hash}`,
    );
  const warm =
    checkpoint || !options.warmStart
      ? null
      : await championState(options.registry, spec, options.inputs, logger);
  return { checkpoint, warm };
}

/** The champion's FTRL state and where its lineage ends on `inputs`; null for another kind. */
async function championState(
  registry: FileModelRegistry,
  spec: FeatureSpec,
  inputs: readonly string[],
  logger: Logger,
): Promise<WarmStart | null> {
  const champion = (await registry.routing()).champion;
  if (!champion) return null;
  const { metadata, files } = await registry.loadArtifacts(champion);
  if (metadata.kind !== 'ftrl' || metadata.featureSpecHash !== spec.hash) {
    logger.info(
      { champion, kind: metadata.kind },
      'the champion is not an FTRL model of this feature spec: starting from zero',
    );
    return null;
  }
  const warm = await warmStartFrom(files, spec);
  const offsets: Record<string, string> = {};
  if (metadata.training.source === 'kafka')
    for (const range of metadata.training.ranges) {
      if (!inputs.includes(range.topic)) continue;
      const key = `${range.topic}:${range.partition}`;
      const known = offsets[key];
      if (known === undefined || BigInt(range.to) > BigInt(known)) offsets[key] = range.to;
    }
  return warm && { version: champion, ...warm, offsets };
}

async function pastTheEnd(
  kafka: Kafka,
  topics: readonly string[],
  offsets: Record<string, string>,
): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of topics) {
      for (const { partition, high } of await admin.fetchTopicOffsets(topic)) {
        const at = offsets[`${topic}:${partition}`];
        if (at !== undefined && BigInt(at) > BigInt(high)) return true;
      }
    }
    return false;
  } finally {
    await admin.disconnect();
  }
}
