// FTRL-Proximal logistic regression (McMahan et al., "Ad Click Prediction: a View from the
// Trenches", 2013): per-coordinate learning rates with L1 and L2, updating only the coordinates
// an example touches. This is the online learner; its weights are served by the same tfjs
// logistic-regression graph as the batch-trained model.
import { ArtifactError } from '../common/errors.js';
import type { FeatureVector } from '../common/contracts.js';

export interface FtrlParams {
  alpha: number;
  beta: number;
  l1: number;
  l2: number;
}

export const DEFAULT_FTRL: FtrlParams = { alpha: 0.05, beta: 1, l1: 0.5, l2: 1 };

export class FtrlProximal {
  /** Per-coordinate accumulated (adjusted) gradients and squared gradients. */
  readonly z: Float64Array;
  readonly n: Float64Array;

  constructor(
    readonly dimension: number,
    readonly params: FtrlParams = DEFAULT_FTRL,
    state?: { z: Float64Array; n: Float64Array },
  ) {
    this.z = state?.z ?? new Float64Array(dimension);
    this.n = state?.n ?? new Float64Array(dimension);
    if (this.z.length !== dimension || this.n.length !== dimension)
      throw new ArtifactError('FW_ARTIFACT_INVALID', 'FTRL state does not match the dimension');
  }

  /** The weight of coordinate `i` in closed form from (z, n). */
  weight(i: number): number {
    const z = this.z[i] as number;
    const { alpha, beta, l1, l2 } = this.params;
    if (Math.abs(z) <= l1) return 0;
    return -(z - Math.sign(z) * l1) / ((beta + Math.sqrt(this.n[i] as number)) / alpha + l2);
  }

  predict(x: FeatureVector): number {
    let logit = 0;
    for (let k = 0; k < x.indices.length; k++)
      logit += this.weight(x.indices[k] as number) * (x.values[k] as number);
    return 1 / (1 + Math.exp(-Math.max(-35, Math.min(35, logit))));
  }

  /** One online step; returns the prediction made before learning (progressive validation). */
  learn(x: FeatureVector, label: number, weight = 1): number {
    const p = this.predict(x);
    const { alpha } = this.params;
    for (let k = 0; k < x.indices.length; k++) {
      const i = x.indices[k] as number;
      const g = (p - label) * (x.values[k] as number) * weight;
      const n = this.n[i] as number;
      const sigma = (Math.sqrt(n + g * g) - Math.sqrt(n)) / alpha;
      this.z[i] = (this.z[i] as number) + g - sigma * this.weight(i);
      this.n[i] = n + g * g;
    }
    return p;
  }

  /** Dense weight vector for serving. */
  weights(): Float32Array {
    const w = new Float32Array(this.dimension);
    for (let i = 0; i < this.dimension; i++) if (this.z[i] !== 0) w[i] = this.weight(i);
    return w;
  }
}
