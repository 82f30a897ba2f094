// Training recipes that the registry can replay: a version's metadata records its data source,
// parent, kind, hyper-parameters and seed, and `retrain` runs the same recipe again. On the
// same backend the weights come out identical.
import type { Logger } from '../common/logger.js';
import { Progress } from '../common/progress.js';
import { toArtifacts, fromArtifacts, type ModelArtifacts } from '../model/artifacts.js';
import { HeuristicBaseline } from '../model/baseline.js';
import { evaluate } from '../model/evaluation.js';
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
import { simulateLabeledExamples } from '../simulator/dataset.js';
import type { FileModelRegistry, HoldoutMetrics, TrainingData, VersionMetadata } from './store.js';
import { FlywheelError } from '../common/errors.js';

export type LearnedKindName = 'logreg' | 'wide_deep' | 'ftrl';

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

/** The examples a recipe's data source describes, in time order. */
export function loadExamples(training: TrainingData, spec: FeatureSpec): TrainingExample[] {
  if (training.source === 'simulated') {
    return simulateLabeledExamples({
      seed: training.seed,
      clicks: training.clicks,
      spec,
      startTime: training.startTime,
      trafficRate: training.trafficRate,
      attributionWindowMs: training.attributionWindowMs,
    });
  }
  throw new FlywheelError(
    'FW_RETRAIN_UNSUPPORTED',
    `training data from source '${training.source}' cannot be replayed here yet`,
  );
}

export interface TrainedVersion {
  model: LearnedModel;
  artifacts: ModelArtifacts;
  metrics: HoldoutMetrics;
}

/** Train a recipe: warm start from the parent if any, fit on the older part, score the holdout. */
export async function runRecipe(
  recipe: Recipe,
  spec: FeatureSpec,
  registry: FileModelRegistry,
  logger: Logger,
  examples: TrainingExample[] = loadExamples(recipe.training, spec),
): Promise<TrainedVersion> {
  const split = Math.floor(examples.length * (1 - HOLDOUT_SHARE));
  const train = examples.slice(0, split);
  const holdout = examples.slice(split);
  let model: LearnedModel;
  if (recipe.parent) {
    const parent = await fromArtifacts((await registry.loadArtifacts(recipe.parent)).files, spec);
    if (parent instanceof HeuristicBaseline || parent.kind === 'tfjs_layers' || parent.kind !== recipe.kind) {
      throw new FlywheelError('FW_BAD_REQUEST', `parent ${recipe.parent} is not a ${recipe.kind} model`);
    }
    model = parent;
  } else {
    model = newModel(recipe.kind, spec, recipe.hyperParameters, recipe.seed);
  }
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
  const baseline = new HeuristicBaseline();
  for (const e of train) baseline.update(e, e.label);
  const scores = model.predict(holdout);
  const result = evaluate(holdout.map((e, i) => ({ score: scores[i] as number, label: e.label })));
  const baselineResult = evaluate(holdout.map((e) => ({ score: baseline.score(e), label: e.label })));
  return {
    model,
    artifacts: await toArtifacts(model, spec),
    metrics: {
      examples: result.examples,
      logLoss: result.logLoss,
      auc: result.auc,
      calibrationError: result.calibrationError,
      baselineLogLoss: baselineResult.logLoss,
    },
  };
}

/** Train a version again from its recorded recipe. */
export async function retrain(
  version: VersionMetadata,
  spec: FeatureSpec,
  registry: FileModelRegistry,
  logger: Logger,
): Promise<TrainedVersion> {
  if (version.kind === 'baseline' || version.kind === 'tfjs_layers') {
    throw new FlywheelError('FW_BAD_REQUEST', `a ${version.kind} model has no training recipe`);
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
  );
}
