// Always-valid comparison of two arms (pure). Each arm's outcomes are summarised by count, mean
// and variance (Welford); the difference of the means gets a confidence sequence from the normal
// mixture sequential probability ratio test (mSPRT; Robbins 1970, Johari et al. 2017, as GrowthBook
// and Eppo use it): with the mixing distribution N(0, tau²) over the true difference,
//
//   Λ(δ) = sqrt(V / (V + tau²)) · exp(tau² (Δ̂ − δ)² / (2 V (V + tau²))),   V = s²_a/n_a + s²_b/n_b,
//
// and the set of δ with Λ(δ) < 1/alpha covers the true difference at every sample size at once
// with probability at least 1 − alpha. So an experiment may be looked at after every outcome and
// stopped whenever the interval leaves zero, without inflating its error rates. The normal
// approximation needs a few outcomes of each kind per arm: `minOutcomes` guards it.

export interface ArmStats {
  n: number;
  mean: number;
  /** Sum of squared deviations from the mean (Welford). */
  m2: number;
}

export const EMPTY_ARM: ArmStats = { n: 0, mean: 0, m2: 0 };

/** The arm's summary after one more outcome `x` (a new object: summaries are values). */
export function observe(arm: ArmStats, x: number): ArmStats {
  const n = arm.n + 1;
  const delta = x - arm.mean;
  const mean = arm.mean + delta / n;
  return { n, mean, m2: arm.m2 + delta * (x - mean) };
}

/** The arm's summary without outcome `x`, which it holds (a correction replaces an outcome). */
export function unobserve(arm: ArmStats, x: number): ArmStats {
  if (arm.n <= 1) return EMPTY_ARM;
  const n = arm.n - 1;
  const mean = (arm.mean * arm.n - x) / n;
  return { n, mean, m2: Math.max(0, arm.m2 - (x - mean) * (x - arm.mean)) };
}

/** Two summaries of disjoint outcomes as one (to fold batches, or one arm's steps). */
export function merge(a: ArmStats, b: ArmStats): ArmStats {
  if (a.n === 0) return b;
  if (b.n === 0) return a;
  const n = a.n + b.n;
  const delta = b.mean - a.mean;
  return { n, mean: a.mean + (delta * b.n) / n, m2: a.m2 + b.m2 + (delta * delta * a.n * b.n) / n };
}

export function variance(arm: ArmStats): number {
  return arm.n > 1 ? arm.m2 / (arm.n - 1) : 0;
}

export interface SequenceSettings {
  /** Error rate of the whole sequence: the interval misses the truth at any time w.p. ≤ alpha. */
  alpha: number;
  /** Standard deviation of the mixing distribution: the size of difference it is tuned to find. */
  tau: number;
}

export interface Interval {
  /** candidate − control. */
  estimate: number;
  lower: number;
  upper: number;
}

/** The always-valid interval of mean(candidate) − mean(control); unbounded without variance. */
export function differenceInterval(
  control: ArmStats,
  candidate: ArmStats,
  settings: SequenceSettings,
): Interval {
  const v =
    (control.n > 0 ? variance(control) / control.n : Infinity) +
    (candidate.n > 0 ? variance(candidate) / candidate.n : Infinity);
  return mixtureInterval(candidate.mean - control.mean, v, settings);
}

/**
 * The always-valid interval of the difference within strata (the traffic shares an experiment
 * served at), combined with Cochran–Mantel–Haenszel weights n_a·n_b/(n_a + n_b). Pooling across
 * shares would compare an arm's late outcomes with the other's early ones: when the share rises,
 * the candidate's outcomes lean to the newest, and anything that moves with time (the hour, or
 * positive labels arriving before the window closes on the negatives) would count as its effect.
 * Within a stratum both arms cover the same time. One stratum gives the pooled interval.
 */
export function stratifiedInterval(
  strata: readonly { control: ArmStats; candidate: ArmStats }[],
  settings: SequenceSettings,
): Interval {
  let weights = 0;
  let weighted = 0;
  let v = 0;
  const usable = strata.filter((s) => s.control.n > 1 && s.candidate.n > 1);
  for (const { control, candidate } of usable) {
    const w = (control.n * candidate.n) / (control.n + candidate.n);
    weights += w;
    weighted += w * (candidate.mean - control.mean);
    v += w * w * (variance(control) / control.n + variance(candidate) / candidate.n);
  }
  if (weights === 0) return { estimate: 0, lower: -Infinity, upper: Infinity };
  return mixtureInterval(weighted / weights, v / (weights * weights), settings);
}

/** The mSPRT confidence sequence around `estimate` with variance `v` (see the file comment). */
function mixtureInterval(estimate: number, v: number, settings: SequenceSettings): Interval {
  if (!(v > 0) || !Number.isFinite(v)) return { estimate, lower: -Infinity, upper: Infinity };
  const t2 = settings.tau * settings.tau;
  const halfWidth = Math.sqrt(
    ((v * (v + t2)) / t2) * (2 * Math.log(1 / settings.alpha) + Math.log((v + t2) / v)),
  );
  return { estimate, lower: estimate - halfWidth, upper: estimate + halfWidth };
}
