// Trains an online trainer's version again from Kafka: the records of its lineage's ranges, fed
// through a fresh pipeline in the recorded read order with the recorded holdout and label policy.
// The pipeline is deterministic in its input, so the weights come out bit for bit the same.
import { FlywheelError } from '../common/errors.js';
import { readRanges, type HistorySource } from '../common/read-ranges.js';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { fromArtifacts } from '../model/artifacts.js';
import type { FeatureSpec } from '../model/features.js';
import { FtrlModel } from '../model/models.js';
import type { FtrlParams } from '../model/ftrl.js';
import type { TrainingData } from '../registry/store.js';
import type { ConflictPolicy } from './label-policy.js';
import { TrainingPipeline, type PipelineState } from './pipeline.js';
import { runsOf } from './read-order.js';

type KafkaTraining = Extract<TrainingData, { source: 'kafka' }>;

export async function replayOnline(
  training: KafkaTraining,
  params: FtrlParams,
  spec: FeatureSpec,
  history: HistorySource,
  /** The state it starts from (a base snapshot or a warm start); from zero when absent. */
  initial?: PipelineState,
): Promise<TrainingPipeline> {
  const online = training.online;
  if (!online || online.runs === null)
    throw new FlywheelError(
      'FW_RETRAIN_UNSUPPORTED',
      'the trainer that made this version had resumed from a checkpoint without a read order; it cannot be replayed',
    );
  const runs = runsOf(training.ranges, online.runs);
  const records = await readRanges(training.ranges, {
    ...history,
    kinds: training.kinds ?? {},
    label: 'replay lineage',
  });
  const pipeline = new TrainingPipeline(pipelineConfigOf(online, params, spec), initial);
  const cursor = training.ranges.map(() => 0);
  for (const run of runs) {
    const list = records[run.range] ?? [];
    let k = cursor[run.range] as number;
    for (; k < list.length && (list[k]?.offset as bigint) < run.to; k++) {
      const record = list[k];
      if (!record || record.offset < run.from || record.value === null) continue;
      pipeline.take(
        record.kind === 'humanLabel'
          ? { kind: 'humanLabel', value: record.value as HumanLabel }
          : { kind: 'labeledExample', value: record.value as LabeledExample },
      );
    }
    cursor[run.range] = k;
  }
  if (pipeline.learner.learned !== training.examples)
    throw new FlywheelError(
      'FW_RETRAIN_UNSUPPORTED',
      `the replay learned ${pipeline.learner.learned} examples, the lineage says ${training.examples} (records deleted by retention, or the topics recreated?)`,
    );
  return pipeline;
}

/** A pipeline's starting state from another model's FTRL state (a warm start). */
export function warmState(initial: { z: Float64Array; n: Float64Array }): PipelineState {
  return {
    learner: {
      z: Float64Array.from(initial.z),
      n: Float64Array.from(initial.n),
      learned: 0,
      holdout: [],
      progressive: [],
    },
    waitingHumanLabels: [],
    remembered: [],
    baseline: null,
    reference: [],
    labelSources: {},
    newestEventTime: 0,
    newestLearnedTime: 0,
  };
}

/** A warm start from an FTRL version's files: its parameters and a pipeline at its weights; null for another kind. */
export async function warmStartFrom(
  files: Record<string, Buffer>,
  spec: FeatureSpec,
): Promise<{ params: FtrlParams; state: PipelineState } | null> {
  const model = await fromArtifacts(files, spec);
  try {
    if (!(model instanceof FtrlModel)) return null;
    return { params: model.params, state: warmState({ z: model.learner.z, n: model.learner.n }) };
  } finally {
    model.dispose();
  }
}

/** The pipeline settings the version was trained with. */
function pipelineConfigOf(
  online: NonNullable<KafkaTraining['online']>,
  params: FtrlParams,
  spec: FeatureSpec,
): ConstructorParameters<typeof TrainingPipeline>[0] {
  return {
    dimension: spec.dimension,
    // The version's own parameters are its selected learner's; the pipeline's are the primary's.
    params: online.primary ?? params,
    holdoutSize: online.holdoutSize,
    // `human` is what the replacing policy was called when older versions were recorded.
    policy: {
      ...online.policy,
      conflict: (online.policy.conflict === 'human' ? 'replace' : online.policy.conflict) as ConflictPolicy,
      censoredSegments: online.policy.censoredSegments ?? [],
    },
    referenceSize: 0,
    featureSpecHash: spec.hash,
    ...(online.learners && online.learners.length > 0
      ? {
          side: {
            learners: online.learners,
            space: { hashBits: spec.hashBits, denseCount: spec.denseNames.length, biasSlot: spec.biasSlot },
            selectionWindow: online.selectionWindow ?? 2000,
          },
        }
      : {}),
  };
}
