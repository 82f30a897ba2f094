// Labeled history from Kafka for batch training (backfills, distillation, their retraining):
// the feedback examples and human labels of offset ranges, merged by the label policy in event
// time order (label time, then topic, partition and offset), so the same ranges always give the
// same examples in the same order. Also turns `--from`/`--to` (a time, earliest, latest, or
// explicit offsets) into those ranges.
import type { Kafka } from 'kafkajs';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { FlywheelError } from '../common/errors.js';
import { readRanges, type HistorySource } from '../common/read-ranges.js';
import type { FeatureSpec } from '../model/features.js';
import type { KafkaHistory } from '../training/recipes.js';
import type { OffsetRange, TrainingData } from '../registry/store.js';
import { DEFAULT_LABEL_POLICY, LabelMerger, type LabelPolicy } from './label-policy.js';
import { SNAPSHOT_FILE } from './candidates.js';
import { decodeCheckpoint, pipelineStateOf } from './checkpoint.js';
import type { PipelineState } from './pipeline.js';
import { replayOnline, warmStartFrom } from './replay.js';
import { trainingExample } from './online.js';

type KafkaTraining = Extract<TrainingData, { source: 'kafka' }>;

export async function historyExamples(
  training: KafkaTraining,
  history: HistorySource,
  policy: LabelPolicy = DEFAULT_LABEL_POLICY,
): Promise<LabeledExample[]> {
  const records = await readRanges(training.ranges, {
    ...history,
    kinds: training.kinds ?? {},
    label: 'read history',
  });
  const merged = records
    .flatMap((list, range) =>
      list
        .filter((r) => r.value !== null)
        .map((r) => ({
          range,
          offset: r.offset,
          kind: r.kind,
          value: r.value as LabeledExample | HumanLabel,
        })),
    )
    .sort(
      (a, b) =>
        a.value.labelTime - b.value.labelTime ||
        a.range - b.range ||
        (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0),
    );
  const merger = new LabelMerger(policy);
  const examples: LabeledExample[] = [];
  for (const r of merged) {
    examples.push(
      ...(r.kind === 'humanLabel'
        ? merger.addHumanLabel(r.value as HumanLabel)
        : merger.addExample(r.value as LabeledExample)),
    );
  }
  return examples;
}

/** Kafka history for the registry's training and retraining (recipes.ts). */
export function kafkaHistory(source: HistorySource, spec: FeatureSpec): KafkaHistory {
  return {
    examples: (training) => historyExamples(training, source),
    replay: async (training, params, start) => {
      const pipeline = await replayOnline(
        training,
        params,
        spec,
        source,
        await startingState(training, start, spec),
      );
      const recorded = training.online?.selection?.selected;
      const selection = pipeline.learner.selection();
      if (recorded && selection.selected !== recorded)
        throw new FlywheelError(
          'FW_RETRAIN_UNSUPPORTED',
          `the replay selects learner ${selection.selected}, the version was ${recorded}`,
        );
      const serving = pipeline.learner.serving(selection.selected);
      return {
        z: serving.z,
        n: serving.n,
        holdout: pipeline.learner.holdout.map(trainingExample),
        baseline: pipeline.baseline,
      };
    },
  };
}

/** Where an online version's replay starts: its base's snapshot, its warm start's FTRL state, or zero. */
async function startingState(
  training: KafkaTraining,
  start: Record<string, Buffer> | null,
  spec: FeatureSpec,
): Promise<PipelineState | undefined> {
  if (!start) return undefined;
  if (training.online?.base) {
    const snapshot = start[SNAPSHOT_FILE];
    if (!snapshot)
      throw new FlywheelError(
        'FW_RETRAIN_UNSUPPORTED',
        `base ${training.online.base} has no ${SNAPSHOT_FILE}`,
      );
    return pipelineStateOf(decodeCheckpoint(snapshot, `${training.online.base}/${SNAPSHOT_FILE}`));
  }
  const warm = await warmStartFrom(start, spec);
  if (!warm)
    throw new FlywheelError(
      'FW_RETRAIN_UNSUPPORTED',
      `warm start ${training.online?.warmStart} is not an FTRL model`,
    );
  return warm.state;
}

/**
 * Offset ranges of `topics` between two points: `earliest`, `latest`, a time (ISO 8601 or ms
 * since the epoch: the first record at or after it), or offsets `TOPIC:PARTITION@OFFSET,...`
 * (partitions not named take earliest for `from`, latest for `to`).
 */
export async function resolveRanges(
  kafka: Kafka,
  topics: readonly string[],
  from: string,
  to: string,
): Promise<OffsetRange[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ranges: OffsetRange[] = [];
    for (const topic of topics) {
      const bounds = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition);
      const at = async (point: string, side: 'from' | 'to'): Promise<Map<number, string>> => {
        const edge = new Map(bounds.map((b) => [b.partition, side === 'from' ? b.low : b.high]));
        if (point === 'earliest' || point === 'latest') {
          const which = point === 'earliest' ? 'low' : 'high';
          return new Map(bounds.map((b) => [b.partition, b[which]]));
        }
        if (point.includes('@')) {
          for (const item of point.split(',')) {
            const match = /^(.+):(\d+)@(\d+)$/.exec(item.trim());
            if (!match) throw new FlywheelError('FW_BAD_REQUEST', `'${item}' is not TOPIC:PARTITION@OFFSET`);
            if (match[1] === topic) edge.set(Number(match[2]), match[3] as string);
          }
          return edge;
        }
        const time = /^\d+$/.test(point) ? Number(point) : Date.parse(point);
        if (!Number.isFinite(time))
          throw new FlywheelError(
            'FW_BAD_REQUEST',
            `'${point}' is not a time (ISO 8601 or ms), earliest, latest or TOPIC:PARTITION@OFFSET`,
          );
        const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, time);
        const high = new Map(bounds.map((b) => [b.partition, b.high]));
        // -1: no record at or after the time; the range ends (or starts) at the end.
        return new Map(
          byTime.map((o) => [o.partition, o.offset === '-1' ? (high.get(o.partition) as string) : o.offset]),
        );
      };
      const starts = await at(from, 'from');
      const ends = await at(to, 'to');
      for (const { partition } of bounds) {
        const start = starts.get(partition) as string;
        const end = ends.get(partition) as string;
        if (BigInt(end) < BigInt(start))
          throw new FlywheelError(
            'FW_BAD_REQUEST',
            `${topic}:${partition}: --to (${end}) is before --from (${start})`,
          );
        ranges.push({ topic, partition, from: start, to: end });
      }
    }
    return ranges;
  } finally {
    await admin.disconnect();
  }
}
