// Learned models over the sparse hashed vector, in TensorFlow.js, plus the online FTRL learner
// served through the same logistic-regression graph.
//
// The lookup of a weight (or embedding row) per feature index is a gather. Its built-in
// gradient (UnsortedSegmentSum) is missing on the wasm backend and very slow on cpu for large
// tables, so the lookup here has a custom gradient: the upstream gradient is scatter-added
// (scatterND sums duplicate indices) into the table's shape. That trains on every backend.
import { ArtifactError, InternalError } from '../common/errors.js';
import type { FeatureVector } from '../common/contracts.js';
import { Random } from '../common/random.js';
import { tf } from './backend.js';
import { FtrlProximal, type FtrlParams, DEFAULT_FTRL } from './ftrl.js';

export type LearnedKind = 'logreg' | 'wide_deep' | 'ftrl';

export interface ScoringInput {
  features: FeatureVector;
  itemId: string;
  segment: string;
}

export interface TrainingExample extends ScoringInput {
  label: number;
  weight: number;
}

/** Padded batch tensors: K slots per row, padding has index 0 and value 0 (contributes nothing). */
export function toBatchTensors(
  vectors: readonly FeatureVector[],
  maxNonZero: number,
): { indices: tf.Tensor2D; values: tf.Tensor2D } {
  const rows = vectors.length;
  const k = Math.max(1, ...vectors.map((v) => v.indices.length), 0);
  if (k > maxNonZero * 4)
    throw new InternalError(`a vector has ${k} non-zero entries; the spec allows ${maxNonZero}`);
  const indices = new Int32Array(rows * k);
  const values = new Float32Array(rows * k);
  vectors.forEach((v, r) => {
    indices.set(v.indices, r * k);
    values.set(v.values, r * k);
  });
  return {
    indices: tf.tensor2d(indices, [rows, k], 'int32'),
    values: tf.tensor2d(values, [rows, k], 'float32'),
  };
}

/** Gather rows of `table` at `indices` with a scatter-add gradient (see the file comment). */
function sparseLookup(table: tf.Variable, indices: tf.Tensor2D): tf.Tensor {
  // customGrad's typing takes (...inputs, save) as one rest parameter.
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    return {
      value: tf.gather(t, indices),
      gradFunc: (dy: tf.Tensor) => {
        const rowShape = table.shape.slice(1);
        const flatIndices = indices.reshape([-1, 1]);
        const flatGrad = dy.reshape([-1, ...rowShape]);
        return [tf.scatterND(flatIndices, flatGrad, table.shape)];
      },
    };
  });
  return lookup(table);
}

export interface TfModelHyperParameters {
  learningRate: number;
  batchSize: number;
  epochs: number;
  l2: number;
  embeddingDim?: number;
  hiddenUnits?: number;
}

export const DEFAULT_HYPER: Record<'logreg' | 'wide_deep', TfModelHyperParameters> = {
  logreg: { learningRate: 0.02, batchSize: 256, epochs: 1, l2: 0 },
  wide_deep: { learningRate: 0.01, batchSize: 256, epochs: 1, l2: 0, embeddingDim: 8, hiddenUnits: 32 },
};

/** A tfjs model over padded sparse batches; subclasses define variables and the logit. */
export abstract class TfSparseModel {
  abstract readonly kind: LearnedKind;
  protected readonly variables = new Map<string, tf.Variable>();
  private optimizer: tf.Optimizer | undefined;

  constructor(
    readonly dimension: number,
    readonly maxNonZero: number,
    readonly hyper: TfModelHyperParameters,
  ) {}

  protected addVariable(name: string, initial: tf.Tensor): tf.Variable {
    const variable = tf.variable(initial, true, `${name}_${Math.random().toString(36).slice(2)}`);
    initial.dispose();
    this.variables.set(name, variable);
    return variable;
  }

  protected abstract logits(indices: tf.Tensor2D, values: tf.Tensor2D): tf.Tensor1D;

  /** Called whenever the weights change (a training step, weights set from an artifact). */
  protected weightsChanged(): void {}

  predictVectors(vectors: readonly FeatureVector[]): Float32Array {
    if (vectors.length === 0) return new Float32Array(0);
    return tf.tidy(() => {
      const { indices, values } = toBatchTensors(vectors, this.maxNonZero);
      return tf.sigmoid(this.logits(indices, values)).dataSync() as Float32Array;
    });
  }

  predict(inputs: readonly ScoringInput[]): Float32Array {
    return this.predictVectors(inputs.map((i) => i.features));
  }

  /** One optimizer step on a mini-batch; returns the mean weighted log loss before the step. */
  trainStep(batch: readonly TrainingExample[]): number {
    this.optimizer ??= tf.train.adam(this.hyper.learningRate);
    const loss = tf.tidy(() => {
      const { indices, values } = toBatchTensors(
        batch.map((e) => e.features),
        this.maxNonZero,
      );
      const labels = tf.tensor1d(batch.map((e) => e.label));
      const weights = tf.tensor1d(batch.map((e) => e.weight));
      const cost = this.optimizer!.minimize(
        () => {
          const data = tf.losses.sigmoidCrossEntropy<tf.Tensor1D, tf.Scalar>(
            labels,
            this.logits(indices, values),
            weights,
          );
          return this.hyper.l2 > 0 ? data.add<tf.Scalar>(this.l2Penalty()) : data;
        },
        true,
        [...this.variables.values()],
      );
      return cost!.dataSync()[0] as number;
    });
    this.weightsChanged();
    return loss;
  }

  private l2Penalty(): tf.Scalar {
    let penalty = tf.scalar(0);
    for (const v of this.variables.values()) penalty = penalty.add(tf.sum(tf.square(v)).mul(this.hyper.l2));
    return penalty;
  }

  /** Weights by name, copied out (for artifacts). */
  weightMap(): Record<string, tf.Tensor> {
    return Object.fromEntries([...this.variables].map(([name, v]) => [name, v.clone()]));
  }

  setWeights(weights: Record<string, tf.Tensor>): void {
    for (const [name, variable] of this.variables) {
      const value = weights[name];
      if (!value)
        throw new ArtifactError(
          'FW_ARTIFACT_INVALID',
          `artifact has no weight '${name}' for a ${this.kind} model`,
        );
      if (value.shape.join('x') !== variable.shape.join('x')) {
        throw new ArtifactError(
          'FW_ARTIFACT_INVALID',
          `weight '${name}' has shape [${value.shape.join(', ')}], the model needs [${variable.shape.join(', ')}]`,
        );
      }
      variable.assign(value);
    }
    this.weightsChanged();
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.optimizer?.dispose();
  }
}

export class LogisticRegression extends TfSparseModel {
  readonly kind: LearnedKind = 'logreg';
  private readonly w: tf.Variable;
  private readonly b: tf.Variable;

  constructor(dimension: number, maxNonZero: number, hyper: TfModelHyperParameters = DEFAULT_HYPER.logreg) {
    super(dimension, maxNonZero, hyper);
    this.w = this.addVariable('wide/w', tf.zeros([dimension]));
    this.b = this.addVariable('wide/b', tf.scalar(-2.5)); // a typical click→purchase base rate
  }

  /**
   * The weights, read out of the graph once for serving: a dot product per row in plain JS costs
   * a fraction of a tfjs call on serving batches (no padding, tensors or backend round trip).
   */
  private served: { w: Float32Array; b: number } | undefined;

  protected logits(indices: tf.Tensor2D, values: tf.Tensor2D): tf.Tensor1D {
    return sparseLookup(this.w, indices).mul(values).sum(1).add<tf.Tensor1D>(this.b);
  }

  protected override weightsChanged(): void {
    this.served = undefined;
  }

  /** The same function as the graph (sigmoid of w·x + b), scored in plain JS. */
  override predictVectors(vectors: readonly FeatureVector[]): Float32Array {
    this.served ??= { w: this.w.dataSync() as Float32Array, b: this.b.dataSync()[0] as number };
    const { w, b } = this.served;
    const scores = new Float32Array(vectors.length);
    for (let r = 0; r < vectors.length; r++) {
      const { indices, values } = vectors[r] as FeatureVector;
      let logit = b;
      for (let k = 0; k < indices.length; k++)
        logit += (w[indices[k] as number] ?? 0) * (values[k] as number);
      scores[r] = 1 / (1 + Math.exp(-logit));
    }
    return scores;
  }

  setDense(weights: Float32Array, bias: number): void {
    this.w.assign(tf.tensor1d(weights));
    this.b.assign(tf.scalar(bias));
    this.weightsChanged();
  }
}

export class WideAndDeep extends TfSparseModel {
  readonly kind: LearnedKind = 'wide_deep';
  private readonly w: tf.Variable;
  private readonly b: tf.Variable;
  private readonly embeddings: tf.Variable;
  private readonly w1: tf.Variable;
  private readonly b1: tf.Variable;
  private readonly w2: tf.Variable;

  constructor(
    dimension: number,
    maxNonZero: number,
    hyper: TfModelHyperParameters = DEFAULT_HYPER.wide_deep,
    seed = 1,
  ) {
    super(dimension, maxNonZero, hyper);
    const dim = hyper.embeddingDim ?? 8;
    const hidden = hyper.hiddenUnits ?? 32;
    this.w = this.addVariable('wide/w', tf.zeros([dimension]));
    this.b = this.addVariable('wide/b', tf.scalar(-2.5));
    this.embeddings = this.addVariable(
      'deep/embeddings',
      tf.randomNormal([dimension, dim], 0, 0.01, 'float32', seed),
    );
    this.w1 = this.addVariable(
      'deep/w1',
      tf.randomNormal([dim, hidden], 0, Math.sqrt(2 / dim), 'float32', seed + 1),
    );
    this.b1 = this.addVariable('deep/b1', tf.zeros([hidden]));
    this.w2 = this.addVariable(
      'deep/w2',
      tf.randomNormal([hidden, 1], 0, Math.sqrt(1 / hidden), 'float32', seed + 2),
    );
  }

  protected logits(indices: tf.Tensor2D, values: tf.Tensor2D): tf.Tensor1D {
    const wide = sparseLookup(this.w, indices).mul(values).sum(1).add(this.b);
    const pooled = sparseLookup(this.embeddings, indices).mul(values.expandDims(2)).sum<tf.Tensor2D>(1);
    const hidden = tf.relu(pooled.matMul(this.w1 as tf.Tensor2D).add<tf.Tensor2D>(this.b1));
    const deep = hidden.matMul(this.w2 as tf.Tensor2D).reshape([-1]);
    return wide.add<tf.Tensor1D>(deep);
  }
}

/** FTRL-Proximal learning online, serving through a tfjs logistic-regression graph. */
export class FtrlModel {
  readonly kind: LearnedKind = 'ftrl';
  readonly learner: FtrlProximal;
  private readonly serving: LogisticRegression;
  private servingStale = true;

  constructor(
    readonly dimension: number,
    readonly maxNonZero: number,
    readonly params: FtrlParams = DEFAULT_FTRL,
    state?: { z: Float64Array; n: Float64Array },
  ) {
    this.learner = new FtrlProximal(dimension, params, state);
    this.serving = new LogisticRegression(dimension, maxNonZero);
  }

  get hyper(): FtrlParams {
    return this.params;
  }

  /** Online step per example (in order); returns the progressive-validation predictions. */
  trainStep(batch: readonly TrainingExample[]): number {
    let loss = 0;
    for (const e of batch) {
      const p = this.learner.learn(e.features, e.label, e.weight);
      loss -= e.weight * (e.label ? Math.log(Math.max(p, 1e-7)) : Math.log(Math.max(1 - p, 1e-7)));
    }
    this.servingStale = true;
    return loss / Math.max(1, batch.length);
  }

  /** Push the learner's weights into the serving graph (done lazily before predicting). */
  syncServing(): void {
    if (!this.servingStale) return;
    this.serving.setDense(this.learner.weights(), 0);
    this.servingStale = false;
  }

  predict(inputs: readonly ScoringInput[]): Float32Array {
    this.syncServing();
    return this.serving.predict(inputs);
  }

  weightMap(): Record<string, tf.Tensor> {
    this.syncServing();
    return this.serving.weightMap();
  }

  dispose(): void {
    this.serving.dispose();
  }
}

export type LearnedModel = LogisticRegression | WideAndDeep | FtrlModel;

export interface FitOptions {
  epochs: number;
  batchSize: number;
  seed: number;
  onBatch?: (done: number, total: number, loss: number) => void;
}

/** Mini-batch training over `examples`, shuffled per epoch by `seed` (reproducible). */
export function fit(model: LearnedModel, examples: readonly TrainingExample[], options: FitOptions): number {
  const random = new Random(options.seed);
  const order = examples.map((_, i) => i);
  let lastLoss = Number.NaN;
  const total = examples.length * options.epochs;
  let done = 0;
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    // FTRL is an online learner: it sees examples in arrival order.
    if (model.kind !== 'ftrl') {
      for (let i = order.length - 1; i > 0; i--) {
        const j = random.int(i + 1);
        [order[i], order[j]] = [order[j] as number, order[i] as number];
      }
    }
    for (let start = 0; start < order.length; start += options.batchSize) {
      const batch = order.slice(start, start + options.batchSize).map((i) => examples[i] as TrainingExample);
      lastLoss = model.trainStep(batch);
      done += batch.length;
      options.onBatch?.(done, total, lastLoss);
    }
  }
  return lastLoss;
}
