// The drift math, pure, over binned counts (bin name → count): population stability index,
// Jensen-Shannon distance, the chi-squared test of homogeneity, and the corrections for testing
// many groups at once. The chi-squared tail is computed here (regularized incomplete gamma, as in
// Numerical Recipes §6.2): the packages that offer it bring hundreds of dependencies with them.

export type Counts = Readonly<Record<string, number>>;

/** Share of each bin over the union of both histograms' bins, each share floored at `floor`. */
function shares(a: Counts, b: Counts, floor: number): { p: number[]; q: number[] } {
  const bins = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  const total = (c: Counts) => bins.reduce((s, bin) => s + (c[bin] ?? 0), 0);
  const [ta, tb] = [total(a), total(b)];
  const norm = (c: Counts, t: number) => {
    const raw = bins.map((bin) => Math.max(floor, t > 0 ? (c[bin] ?? 0) / t : 0));
    const sum = raw.reduce((s, x) => s + x, 0);
    return raw.map((x) => x / sum);
  };
  return { p: norm(a, ta), q: norm(b, tb) };
}

/**
 * Population stability index of `live` against `reference`: Σ (q − p) ln(q / p). Empty bins are
 * floored at `floor` (1e-4, as Evidently's default), so a bin new in one side counts, finitely.
 * Read: below 0.1 stable, 0.1–0.25 moderate, above 0.25 a major shift.
 */
export function psi(reference: Counts, live: Counts, floor = 1e-4): number {
  const { p, q } = shares(reference, live, floor);
  return p.reduce((s, pi, i) => s + ((q[i] as number) - pi) * Math.log((q[i] as number) / pi), 0);
}

/** Jensen-Shannon distance (the square root of the divergence, in bits): 0 same, 1 disjoint. */
export function jensenShannon(reference: Counts, live: Counts): number {
  const { p, q } = shares(reference, live, 0);
  let divergence = 0;
  p.forEach((pi, i) => {
    const qi = q[i] as number;
    const m = (pi + qi) / 2;
    if (pi > 0) divergence += (pi / 2) * Math.log2(pi / m);
    if (qi > 0) divergence += (qi / 2) * Math.log2(qi / m);
  });
  return Math.sqrt(Math.max(0, divergence));
}

export interface ChiSquared {
  statistic: number;
  degreesOfFreedom: number;
  pValue: number;
}

/** Chi-squared test that two histograms come from one distribution (a 2 × k table). */
export function chiSquaredHomogeneity(a: Counts, b: Counts): ChiSquared {
  const bins = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
    (bin) => (a[bin] ?? 0) + (b[bin] ?? 0) > 0,
  );
  const ta = bins.reduce((s, bin) => s + (a[bin] ?? 0), 0);
  const tb = bins.reduce((s, bin) => s + (b[bin] ?? 0), 0);
  if (bins.length < 2 || ta === 0 || tb === 0) return { statistic: 0, degreesOfFreedom: 0, pValue: 1 };
  let statistic = 0;
  for (const bin of bins) {
    const column = (a[bin] ?? 0) + (b[bin] ?? 0);
    for (const [observed, rowTotal] of [
      [a[bin] ?? 0, ta],
      [b[bin] ?? 0, tb],
    ] as const) {
      const expected = (rowTotal * column) / (ta + tb);
      statistic += (observed - expected) ** 2 / expected;
    }
  }
  const degreesOfFreedom = bins.length - 1;
  return { statistic, degreesOfFreedom, pValue: chiSquaredSurvival(statistic, degreesOfFreedom) };
}

/** P(X ≥ x) for X chi-squared with `df` degrees of freedom. */
export function chiSquaredSurvival(x: number, df: number): number {
  if (!(x > 0)) return 1;
  return upperGammaRegularized(df / 2, x / 2);
}

/** ln Γ(x), Lanczos approximation (g = 7, 9 terms): ~15 significant digits for x > 0. */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = c[0] as number;
  for (let i = 1; i < 9; i++) sum += (c[i] as number) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Q(a, x) = Γ(a, x) / Γ(a): the series below a + 1, the continued fraction above. */
function upperGammaRegularized(a: number, x: number): number {
  const prefix = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 500 && Math.abs(term) > Math.abs(sum) * 1e-15; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return Math.min(1, Math.max(0, 1 - sum * prefix));
  }
  // Lentz's method for the continued fraction.
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.max(0, prefix * h));
}

/**
 * Benjamini-Hochberg at false-discovery rate `q`: which of the p-values are discoveries (the
 * largest k with p(k) ≤ k q / m, and every smaller one).
 */
export function benjaminiHochberg(pValues: readonly number[], q: number): boolean[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p);
  let cutoff = -1;
  order.forEach(({ p }, rank) => {
    if (p <= ((rank + 1) * q) / m) cutoff = rank;
  });
  const out = new Array<boolean>(m).fill(false);
  for (let rank = 0; rank <= cutoff; rank++) out[(order[rank] as { i: number }).i] = true;
  return out;
}

/**
 * The level of each test when `tests` are run at each of `looksPerDay` looks and at most
 * `falseAlarmsPerDay` false alarms a day are allowed (Bonferroni over tests and looks: the
 * expected number of false alarms is at most the budget, however the looks are correlated).
 */
export function perTestLevel(falseAlarmsPerDay: number, tests: number, looksPerDay: number): number {
  return Math.min(1, falseAlarmsPerDay / Math.max(1, tests * looksPerDay));
}
