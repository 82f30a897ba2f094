// Agreement between labelers beyond chance, over tasks labeled by several: Cohen's kappa for each
// pair of labelers (over the tasks both labeled) and Fleiss' kappa over all tasks with two labels
// or more. Labels are categories (strings); pure.
//
// Fleiss' kappa with a varying number of labels per task: each task's agreement is the share of
// its label pairs that agree, P_i = Σ_j n_ij (n_ij − 1) / (m_i (m_i − 1)); chance agreement is
// Σ_j p_j², p_j the share of all labels in category j. With m labels on every task this is
// Fleiss's own formula.

/** One task's labels: labeler id → category. */
export type TaskLabels = Record<string, string>;

export interface PairAgreement {
  a: string;
  b: string;
  tasks: number;
  /** Share of their common tasks they labeled alike. */
  observed: number;
  /** Cohen's kappa; null where chance agreement is 1 (both always gave one category). */
  kappa: number | null;
}

export interface AgreementReport {
  /** Tasks with two labels or more. */
  tasks: number;
  fleissKappa: number | null;
  pairs: PairAgreement[];
}

function kappaOf(observed: number, chance: number): number | null {
  return chance >= 1 ? null : (observed - chance) / (1 - chance);
}

export function cohensKappa(pairs: readonly (readonly [string, string])[]): number | null {
  if (pairs.length === 0) return null;
  const n = pairs.length;
  const a = new Map<string, number>();
  const b = new Map<string, number>();
  let agree = 0;
  for (const [x, y] of pairs) {
    a.set(x, (a.get(x) ?? 0) + 1);
    b.set(y, (b.get(y) ?? 0) + 1);
    if (x === y) agree++;
  }
  let chance = 0;
  for (const [category, count] of a) chance += (count / n) * ((b.get(category) ?? 0) / n);
  return kappaOf(agree / n, chance);
}

/** Fleiss' kappa over tasks given as category → labels on it (tasks with fewer than 2 skipped). */
export function fleissKappa(tasks: readonly Record<string, number>[]): number | null {
  const rated = tasks.filter((t) => Object.values(t).reduce((s, n) => s + n, 0) >= 2);
  if (rated.length === 0) return null;
  const totals = new Map<string, number>();
  let all = 0;
  let meanAgreement = 0;
  for (const task of rated) {
    const m = Object.values(task).reduce((s, n) => s + n, 0);
    let pairsAlike = 0;
    for (const [category, n] of Object.entries(task)) {
      pairsAlike += n * (n - 1);
      totals.set(category, (totals.get(category) ?? 0) + n);
      all += n;
    }
    meanAgreement += pairsAlike / (m * (m - 1)) / rated.length;
  }
  let chance = 0;
  for (const count of totals.values()) chance += (count / all) ** 2;
  return kappaOf(meanAgreement, chance);
}

export function agreementReport(tasks: readonly TaskLabels[]): AgreementReport {
  const several = tasks.filter((t) => Object.keys(t).length >= 2);
  const byPair = new Map<string, [string, string][]>();
  for (const task of several) {
    const labelers = Object.keys(task).sort();
    for (let i = 0; i < labelers.length; i++)
      for (let j = i + 1; j < labelers.length; j++) {
        const key = `${labelers[i]}\u0000${labelers[j]}`;
        const list = byPair.get(key) ?? [];
        list.push([task[labelers[i]!]!, task[labelers[j]!]!]);
        byPair.set(key, list);
      }
  }
  const pairs = [...byPair].map(([key, labels]): PairAgreement => {
    const [a, b] = key.split('\u0000') as [string, string];
    return {
      a,
      b,
      tasks: labels.length,
      observed: labels.filter(([x, y]) => x === y).length / labels.length,
      kappa: cohensKappa(labels),
    };
  });
  const counts = several.map((t) => {
    const c: Record<string, number> = {};
    for (const label of Object.values(t)) c[label] = (c[label] ?? 0) + 1;
    return c;
  });
  return { tasks: several.length, fleissKappa: fleissKappa(counts), pairs };
}
