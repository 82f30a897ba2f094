// Training recipes that the registry can replay: a version's metadata records its data source,
// parent, kind, hyper-parameters and seed, and `retrain` runs the same recipe again. On the
// same backend the weights come out identical.
import type { Logger } from '../common/logger.js';
import { Progress } from '../common/progress.js';
import { toArtifacts, fromArtifacts, type ModelArtifacts } from '../model/artifacts.js';
import { HeuristicBaseline } from '../model/baseline.js';
import { evaluate } from '../model/evaluation.js';
import { versionReference, type VersionReference } from '../model/profile.js';
import type { FeatureSpec } from '../model/features.js';
import { DEFAULT_FTRL } from '../model/ftrl.js';
import {
  DEFAULT_HYPER,
  FtrlModel,
  LogisticRegression,
  WideAndDeep,
  fit,
  type LearnedModel,
  type TrainingExample,
} from '../model/models.js';
import type { FtrlParams } from '../model/ftrl.js';
import type { FileModelRegistry, HoldoutMetrics, TrainingData, VersionMetadata } from '../registry/store.js';
import { FlywheelError } from '../common/errors.js';

export type LearnedKindName = 'logreg' | 'wide_deep' | 'ftrl';

type KafkaTraining = Extract<TrainingData, { source: 'kafka' }>;

/** Training data from Kafka topics, read by the trainer's code (the registry only records it). */
export interface KafkaHistory {
  /** A backfill's examples, in time order. */
  examples(training: KafkaTraining): Promise<TrainingExample[]>;
  /** An online trainer's version trained again: its optimizer state, holdout and baseline. */
  replay(
    training: KafkaTraining,
    params: FtrlParams,
    /** The artifact files of the version it started from (its base or warm start), if any. */
    start: Record<string, Buffer> | null,
  ): Promise<{ z: Float64Array; n: Float64Array; holdout: TrainingExample[]; baseline: HeuristicBaseline }>;
}

export interface Recipe {
  kind: LearnedKindName;
  parent: string | null;
  seed: number;
  hyperParameters: Record<string, unknown>;
  training: TrainingData;
}

/** Share of the most recent examples held out for evaluation (never trained on). */
export const HOLDOUT_SHARE = 0.2;

export function newModel(
  kind: LearnedKindName,
  spec: FeatureSpec,
  hyper: Record<string, unknown>,
  seed: number,
): LearnedModel {
  if (kind === 'ftrl') return new FtrlModel(spec.dimension, spec.maxNonZero, { ...DEFAULT_FTRL, ...hyper });
  if (kind === 'logreg')
    return new LogisticRegression(spec.dimension, spec.maxNonZero, { ...DEFAULT_HYPER.logreg, ...hyper });
  return new WideAndDeep(spec.dimension, spec.maxNonZero, { ...DEFAULT_HYPER.wide_deep, ...hyper }, seed);
}

export function defaultHyper(kind: LearnedKindName): Record<string, unknown> {
  return kind === 'ftrl' ? { ...DEFAULT_FTRL } : { ...DEFAULT_HYPER[kind] };
}

/**
 * Where training data comes from, given by the process the registry runs in (the CLI, a test):
 * the registry stores and verifies versions, it does not know Kafka's history or the simulator.
 */
export interface TrainingSources {
  /** Kafka, for training on and replaying history from topics. */
  kafka?: KafkaHistory;
  /** The labeled examples of a simulated lineage (the simulator's `simulatedTrainingExamples`). */
  simulated?: (
    training: Extract<TrainingData, { source: 'simulated' }>,
    spec: FeatureSpec,
  ) => TrainingExample[];
}

/** The examples a recipe's data source describes, in time order, from the sources given. */
export async function loadExamples(
  training: TrainingData,
  spec: FeatureSpec,
  sources: TrainingSources = {},
): Promise<TrainingExample[]> {
  const history = sources.kafka;
  if (training.source === 'simulated') {
    if (!sources.simulated)
      throw new FlywheelError('FW_RETRAIN_UNSUPPORTED', 'simulated training data needs the simulator here');
    return sources.simulated(training, spec);
  }
  if (training.source === 'kafka') {
    if (!history)
      throw new FlywheelError(
        'FW_RETRAIN_UNSUPPORTED',
        'training data from Kafka needs a connection to Kafka here',
      );
    return history.examples(training);
  }
  throw new FlywheelError(
    'FW_RETRAIN_UNSUPPORTED',
    `training data from source '${training.source}' cannot be replayed`,
  );
}

export interface TrainedVersion {
  model: LearnedModel;
  artifacts: ModelArtifacts;
  metrics: HoldoutMetrics;
  /** The holdout's feature profile and calibration: what the monitor compares live traffic with. */
  reference: VersionReference;
  /** Microseconds per example to score the holdout (one batch). */
  scoreMicros: number;
}

export interface RecipeOptions {
  /** The examples, when the caller has them already. */
  examples?: TrainingExample[];
  sources?: TrainingSources;
}

/** Train a recipe: warm start from the parent if any, fit on the older part, score the holdout. */
export async function runRecipe(
  recipe: Recipe,
  spec: FeatureSpec,
  registry: FileModelRegistry,
  logger: Logger,
  options: RecipeOptions = {},
): Promise<TrainedVersion> {
  const examples = options.examples ?? (await loadExamples(recipe.training, spec, options.sources));
  const split = Math.floor(examples.length * (1 - HOLDOUT_SHARE));
  const labeled = examples.slice(0, split);
  const holdout = examples.slice(split);
  if (labeled.length === 0 || holdout.length === 0)
    throw new FlywheelError(
      'FW_BAD_REQUEST',
      `${examples.length} examples are too few to train and evaluate on`,
    );
  // Distillation: the student learns the teacher's scores (soft labels) instead of the outcomes.
  const teacher = recipe.training.source === 'kafka' ? recipe.training.teacher : undefined;
  let train = labeled;
  if (teacher) {
    const model = await fromArtifacts((await registry.loadArtifacts(teacher)).files, spec);
    try {
      const soft = model.predict(labeled);
      train = labeled.map((e, i) => ({ ...e, label: soft[i] as number }));
    } finally {
      model.dispose();
    }
  }
  let model: LearnedModel;
  // A distilled student's parent is its teacher, not a warm start.
  if (recipe.parent && !teacher) {
    const parent = await fromArtifacts((await registry.loadArtifacts(recipe.parent)).files, spec);
    if (parent instanceof HeuristicBaseline || parent.kind === 'tfjs_layers' || parent.kind !== recipe.kind) {
      throw new FlywheelError('FW_BAD_REQUEST', `parent ${recipe.parent} is not a ${recipe.kind} model`);
    }
    model = parent;
  } else {
    model = newModel(recipe.kind, spec, recipe.hyperParameters, recipe.seed);
  }
  fitWithProgress(model, train, recipe, logger);
  const baseline = new HeuristicBaseline();
  for (const e of labeled) baseline.update(e, e.label);
  return judged(model, baseline, holdout, spec, { weighted: false });
}

/**
 * The holdout as the monitor's reference. Examples from Kafka are labeled examples (with their
 * category and user); simulated ones have no category, which is then left out, not read as
 * missing.
 */
function holdoutReference(
  spec: FeatureSpec,
  holdout: readonly TrainingExample[],
  scores: Float32Array,
): VersionReference {
  const extra = (e: TrainingExample) => e as TrainingExample & { category?: unknown; userId?: unknown };
  const hasCategory = holdout.every((e) => typeof extra(e).category === 'string');
  return versionReference(
    spec,
    holdout.map((e, i) => ({
      features: e.features,
      segment: e.segment,
      category: hasCategory ? String(extra(e).category) : '',
      ...(typeof extra(e).userId === 'string' ? { userId: String(extra(e).userId) } : {}),
      score: scores[i] as number,
      label: e.label,
    })),
    hasCategory ? [] : ['category'],
  );
}

/**
 * A trained model with its artifacts, its holdout metrics next to the baseline's, and its
 * scoring time per example. `weighted`: examples count by their weight (human labels more).
 */
async function judged(
  model: LearnedModel,
  baseline: HeuristicBaseline,
  holdout: readonly TrainingExample[],
  spec: FeatureSpec,
  options: { weighted: boolean },
): Promise<TrainedVersion> {
  const weight = (e: TrainingExample) => (options.weighted ? { weight: e.weight } : {});
  const started = process.hrtime.bigint();
  const scores = holdout.length > 0 ? model.predict(holdout) : new Float32Array(0);
  const scoreMicros = Number(process.hrtime.bigint() - started) / 1000 / Math.max(1, holdout.length);
  const result = evaluate(
    holdout.map((e, i) => ({ score: scores[i] as number, label: e.label, ...weight(e) })),
  );
  const baselineResult = evaluate(
    holdout.map((e) => ({ score: baseline.score(e), label: e.label, ...weight(e) })),
  );
  return {
    model,
    artifacts: await toArtifacts(model, spec),
    reference: holdoutReference(spec, holdout, scores),
    metrics: {
      examples: result.examples,
      logLoss: result.logLoss,
      auc: result.auc,
      calibrationError: result.calibrationError,
      lift: result.lift,
      baselineLogLoss: baselineResult.logLoss,
    },
    scoreMicros,
  };
}

/** Train a version again from its recorded recipe. */
export async function retrain(
  version: VersionMetadata,
  spec: FeatureSpec,
  registry: FileModelRegistry,
  logger: Logger,
  sources: TrainingSources = {},
): Promise<TrainedVersion> {
  const history = sources.kafka;
  if (version.kind === 'baseline' || version.kind === 'tfjs_layers') {
    throw new FlywheelError('FW_BAD_REQUEST', `a ${version.kind} model has no training recipe`);
  }
  if (version.training.source === 'kafka' && version.training.online) {
    if (!history)
      throw new FlywheelError(
        'FW_RETRAIN_UNSUPPORTED',
        'training data from Kafka needs a connection to Kafka here',
      );
    const params = version.hyperParameters as unknown as FtrlParams;
    // Replayed from the earlier candidate's snapshot, or the warm start, or from zero.
    const online = version.training.online;
    const from = online.base ?? online.warmStart ?? null;
    const start = from ? (await registry.loadArtifacts(from)).files : null;
    const replayed = await history.replay(version.training, params, start);
    const model = new FtrlModel(spec.dimension, spec.maxNonZero, params, { z: replayed.z, n: replayed.n });
    return judged(model, replayed.baseline, replayed.holdout, spec, { weighted: true });
  }
  return runRecipe(
    {
      kind: version.kind,
      parent: version.parent,
      seed: version.seed,
      hyperParameters: version.hyperParameters,
      training: version.training,
    },
    spec,
    registry,
    logger,
    { sources },
  );
}

/** Fits the model over the recipe's epochs, showing progress. */
function fitWithProgress(
  model: LearnedModel,
  train: TrainingExample[],
  recipe: Recipe,
  logger: Logger,
): void {
  const epochs = Number(recipe.hyperParameters.epochs ?? 1);
  const batchSize = Number(recipe.hyperParameters.batchSize ?? 256);
  const progress = new Progress({
    label: `train ${recipe.kind}`,
    total: train.length * epochs,
    logger,
  }).start();
  let last = 0;
  fit(model, train, {
    epochs,
    batchSize,
    seed: recipe.seed,
    onBatch: (done) => {
      progress.add(done - last);
      last = done;
    },
  });
  progress.stop();
}
