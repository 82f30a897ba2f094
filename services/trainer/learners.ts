// Learners trained side by side with the trainer's FTRL on the same examples in the same order:
// other step sizes and regularization, fewer hash slots (the spec's slots folded, as if hashed
// with fewer bits), the dense features dropped, a discount of the past (forgetting, for drift) and
// an online Platt layer (calibration). Each is scored on every example as it arrives, before the
// holdout lets it learn from it (a delayed progressive validation); the candidate is the one with
// the lowest recent loss, exported as plain FTRL state of the full spec whose served scores are
// the side learner's own. Pure and deterministic.
import { z } from 'zod';
import type { FeatureVector } from '../common/contracts.js';
import type { FtrlParams } from '../model/ftrl.js';

/** The trainer's own FTRL, in the selection next to the side learners. */
export const PRIMARY_LEARNER = 'default';

/** How one side learner differs from the trainer's FTRL (absent fields: the same). */
export const learnerSpecSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,31}$/, 'lower-case letters, digits and dashes, at most 32')
      .refine((name) => name !== PRIMARY_LEARNER, `'${PRIMARY_LEARNER}' names the trainer's own FTRL`),
    alpha: z.number().positive().max(10).optional(),
    beta: z.number().min(0).max(100).optional(),
    l1: z.number().min(0).max(1000).optional(),
    l2: z.number().min(0).max(1000).optional(),
    /** Hash slots folded to 2^hashBits (a no-op at or above the spec's bits). */
    hashBits: z.number().int().min(8).max(24).optional(),
    /** Whether the dense features (after the hash slots) are used. */
    dense: z.boolean().optional(),
    /** Per-example discount of past gradients, in (0.9, 1]; 1 forgets nothing. */
    forgetting: z.number().gt(0.9).max(1).optional(),
    /** Step of the online Platt layer on the learner's logit; 0: no calibration layer. */
    calibrationRate: z.number().min(0).max(1).optional(),
  })
  .strict();
export type LearnerSpecInput = z.infer<typeof learnerSpecSchema>;
export const learnerSpecsSchema = z
  .array(learnerSpecSchema)
  .max(16)
  .refine((specs) => new Set(specs.map((s) => s.name)).size === specs.length, 'learner names must be unique');

/** A side learner, every field resolved against the trainer's FTRL parameters. */
export interface LearnerSpec {
  name: string;
  params: FtrlParams;
  hashBits: number | null;
  dense: boolean;
  forgetting: number;
  calibrationRate: number;
}

/**
 * The side learners a trainer runs unless told otherwise: a larger step, a discount with a
 * half-life of about 3,500 examples (ln 2 / 0.0002), a slow calibration layer, and 4,096 slots
 * (more sharing where data is thin).
 */
export const DEFAULT_SIDE_LEARNERS: readonly LearnerSpecInput[] = [
  { name: 'fast', alpha: 0.15 },
  { name: 'forgetting', forgetting: 0.9998 },
  { name: 'calibrated', calibrationRate: 0.003 },
  { name: 'coarse', hashBits: 12 },
];

export function resolveLearners(inputs: readonly LearnerSpecInput[], primary: FtrlParams): LearnerSpec[] {
  return inputs.map((input) => ({
    name: input.name,
    params: {
      alpha: input.alpha ?? primary.alpha,
      beta: input.beta ?? primary.beta,
      l1: input.l1 ?? primary.l1,
      l2: input.l2 ?? primary.l2,
    },
    hashBits: input.hashBits ?? null,
    dense: input.dense ?? true,
    forgetting: input.forgetting ?? 1,
    calibrationRate: input.calibrationRate ?? 0,
  }));
}

/** The shape of the feature space: hash slots, then dense values. */
export interface FeatureSpace {
  hashBits: number;
  denseCount: number;
  /** The hash slot of the always-present bias feature (the calibration's intercept goes there). */
  biasSlot: number;
}

export interface SideLearnerState {
  name: string;
  /** The spec it was trained with (JSON of LearnerSpec): a changed spec starts over. */
  spec: string;
  z: Float64Array;
  n: Float64Array;
  /** Step at which each slot was last discounted (empty without forgetting). */
  last: Float64Array;
  steps: number;
  /** The Platt layer: p = sigmoid(scale * logit + shift). */
  scale: number;
  shift: number;
  /** Losses (weighted) of the newest examples scored on arrival, and their weights, oldest first. */
  losses: number[];
  weights: number[];
}

const EPS = 1e-7;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-Math.max(-35, Math.min(35, x))));
/** Log loss of one prediction, clipped away from 0 and 1 (every learner's progressive loss). */
export function exampleLogLoss(p: number, label: number): number {
  const c = Math.min(1 - EPS, Math.max(EPS, p));
  return -(label ? Math.log(c) : Math.log(1 - c));
}

/** FTRL-Proximal (as model/ftrl.ts) generalized by a LearnerSpec. */
export class SideLearner {
  readonly z: Float64Array;
  readonly n: Float64Array;
  private readonly last: Float64Array;
  private steps: number;
  private scale: number;
  private shift: number;
  private readonly losses: number[];
  private readonly weights: number[];
  private readonly foldedSize: number;
  private readonly hashSize: number;

  constructor(
    readonly spec: LearnerSpec,
    readonly space: FeatureSpace,
    /** Progressive losses kept (the selection's window). */
    readonly window: number,
    state?: SideLearnerState,
  ) {
    this.hashSize = 2 ** space.hashBits;
    this.foldedSize =
      spec.hashBits !== null && spec.hashBits < space.hashBits ? 2 ** spec.hashBits : this.hashSize;
    const size = this.foldedSize + (spec.dense ? space.denseCount : 0);
    const usable = state && state.spec === JSON.stringify(spec) && state.z.length === size;
    this.z = usable ? Float64Array.from(state.z) : new Float64Array(size);
    this.n = usable ? Float64Array.from(state.n) : new Float64Array(size);
    this.last =
      spec.forgetting < 1
        ? usable
          ? Float64Array.from(state.last)
          : new Float64Array(size)
        : new Float64Array(0);
    this.steps = usable ? state.steps : 0;
    this.scale = usable ? state.scale : 1;
    this.shift = usable ? state.shift : 0;
    this.losses = usable ? state.losses.slice(-window) : [];
    this.weights = usable ? state.weights.slice(-window) : [];
  }

  /** Its slot for a slot of the spec; -1 when it does not use it. */
  private slot(i: number): number {
    if (i < this.hashSize) return i & (this.foldedSize - 1);
    return this.spec.dense ? this.foldedSize + (i - this.hashSize) : -1;
  }

  private discount(j: number): number {
    return this.spec.forgetting < 1 ? this.spec.forgetting ** (this.steps - (this.last[j] as number)) : 1;
  }

  private weightOf(zj: number, nj: number): number {
    const { alpha, beta, l1, l2 } = this.spec.params;
    if (Math.abs(zj) <= l1) return 0;
    return -(zj - Math.sign(zj) * l1) / ((beta + Math.sqrt(nj)) / alpha + l2);
  }

  /** The value of the bias slot in `x`: 1, or more where a feature's value collides with it. */
  private biasValue(x: FeatureVector): number {
    for (let k = 0; k < x.indices.length; k++)
      if (x.indices[k] === this.space.biasSlot) return x.values[k] as number;
    return 0;
  }

  private logit(x: FeatureVector): number {
    let logit = 0;
    for (let k = 0; k < x.indices.length; k++) {
      const j = this.slot(x.indices[k] as number);
      if (j < 0) continue;
      const d = this.discount(j);
      logit += this.weightOf((this.z[j] as number) * d, (this.n[j] as number) * d) * (x.values[k] as number);
    }
    return logit;
  }

  predict(x: FeatureVector): number {
    const s = this.logit(x);
    // The shift rides on the bias slot, as the exported weights carry it.
    return this.spec.calibrationRate > 0
      ? sigmoid(this.scale * s + this.shift * this.biasValue(x))
      : sigmoid(s);
  }

  /** One online step; returns the (calibrated) prediction made before it. */
  learn(x: FeatureVector, label: number, weight = 1): number {
    const s = this.logit(x);
    const raw = sigmoid(s);
    const calibrated = this.spec.calibrationRate > 0;
    const bias = calibrated ? this.biasValue(x) : 0;
    const p = calibrated ? sigmoid(this.scale * s + this.shift * bias) : raw;
    const { alpha } = this.spec.params;
    for (let k = 0; k < x.indices.length; k++) {
      const j = this.slot(x.indices[k] as number);
      if (j < 0) continue;
      if (this.spec.forgetting < 1) {
        const d = this.discount(j);
        this.z[j] = (this.z[j] as number) * d;
        this.n[j] = (this.n[j] as number) * d;
        this.last[j] = this.steps;
      }
      // The FTRL weights learn their own (raw) loss; the Platt layer maps their logit.
      const g = (raw - label) * (x.values[k] as number) * weight;
      const n = this.n[j] as number;
      const sigma = (Math.sqrt(n + g * g) - Math.sqrt(n)) / alpha;
      this.z[j] = (this.z[j] as number) + g - sigma * this.weightOf(this.z[j] as number, n);
      this.n[j] = n + g * g;
    }
    if (calibrated) {
      const rate = this.spec.calibrationRate * weight;
      const error = p - label;
      // Bounded so that a run of one label cannot flip or flatten the ranking.
      this.scale = Math.min(10, Math.max(0.1, this.scale - rate * error * s));
      this.shift = Math.min(10, Math.max(-10, this.shift - rate * error * bias));
    }
    this.steps++;
    return p;
  }

  /**
   * Scores an example as it arrives, before the holdout delays its learning: the loss of a
   * prediction made without the examples around it (the selection's evidence, see online.ts).
   */
  scoreOnArrival(x: FeatureVector, label: number, weight = 1): void {
    this.losses.push(exampleLogLoss(this.predict(x), label) * weight);
    this.weights.push(weight);
    if (this.losses.length > this.window) {
      this.losses.shift();
      this.weights.shift();
    }
  }

  /** Examples with a loss on arrival kept (at most the window). */
  get scored(): number {
    return this.losses.length;
  }

  /**
   * Weighted log loss on arrival over `count` examples (NaN when none), leaving out the newest
   * `skipNewest` (those still in the holdout: the gate's, not the selection's).
   */
  progressiveLogLoss(count = this.window, skipNewest = 0): number {
    const end = Math.max(0, this.losses.length - skipNewest);
    return meanLoss(this.losses.slice(0, end), this.weights.slice(0, end), count);
  }

  /**
   * Plain FTRL state over the spec's full space whose weights score as this learner does now:
   * slots unfolded, the discount applied, the Platt layer folded into the weights (scale) and the
   * bias slot (shift). Served and warm-started like any FTRL version.
   */
  export(dimension: number): { z: Float64Array; n: Float64Array } {
    const z = new Float64Array(dimension);
    const n = new Float64Array(dimension);
    const { alpha, beta, l1, l2 } = this.spec.params;
    const calibrated = this.spec.calibrationRate > 0;
    for (let i = 0; i < dimension; i++) {
      const j = this.slot(i);
      if (j < 0) continue;
      const d = this.discount(j);
      const zj = (this.z[j] as number) * d;
      const nj = (this.n[j] as number) * d;
      n[i] = nj;
      z[i] = zj;
      if (!calibrated) continue;
      const w = this.scale * this.weightOf(zj, nj) + (i === this.space.biasSlot ? this.shift : 0);
      // The z whose closed-form weight is w (weight = -(z - sign(z) l1) / D).
      if (w !== 0) z[i] = -w * ((beta + Math.sqrt(nj)) / alpha + l2) - Math.sign(w) * l1;
      else if (Math.abs(zj) > l1) z[i] = 0;
    }
    return { z, n };
  }

  state(): SideLearnerState {
    return {
      name: this.spec.name,
      spec: JSON.stringify(this.spec),
      z: Float64Array.from(this.z),
      n: Float64Array.from(this.n),
      last: Float64Array.from(this.last),
      steps: this.steps,
      scale: this.scale,
      shift: this.shift,
      losses: [...this.losses],
      weights: [...this.weights],
    };
  }
}

export function meanLoss(losses: readonly number[], weights: readonly number[], count: number): number {
  let loss = 0;
  let weight = 0;
  for (let k = Math.max(0, losses.length - count); k < losses.length; k++) {
    loss += losses[k] as number;
    weight += weights[k] as number;
  }
  return weight > 0 ? loss / weight : Number.NaN;
}

/** The index of the lowest finite loss; the first on a tie (or when none is finite). */
export function selectLowest(losses: readonly number[]): number {
  let best = 0;
  for (let k = 1; k < losses.length; k++) {
    const loss = losses[k] as number;
    const bestLoss = losses[best] as number;
    if (Number.isFinite(loss) && (!Number.isFinite(bestLoss) || loss < bestLoss)) best = k;
  }
  return best;
}
