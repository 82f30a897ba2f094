// Drift of a live window against a version's reference profile, per feature group and for the
// score. A group drifts only when both hold: the chi-squared test of homogeneity rejects at the
// level the daily false-alarm budget leaves each test (Bonferroni over the groups and the looks
// of a day), and the Jensen-Shannon distance is at least `minDistance` (an effect worth acting
// on: with large samples the test alone rejects differences nobody cares about). A missing value
// is a bin of its own; a value the reference never saw counts in NEW (its share is reported).
// The test is corrected for clicks that come in clusters of one user (clusteredTest).
import type { FeatureProfile, RawProfile } from '../model/profile.js';
import { OTHER, profileDesignEffect } from '../model/profile.js';
import { chiSquaredHomogeneity, chiSquaredSurvival, jensenShannon, perTestLevel, psi } from './stats.js';

export const MISSING = '(missing)';
export const NEW = '(new)';

export interface DriftPolicy {
  /** Expected false alarms a day over all groups and looks (the budget). */
  falseAlarmsPerDay: number;
  looksPerDay: number;
  /** Fewer live records than this: no test (too little to say anything). */
  minRecords: number;
  /** Smallest Jensen-Shannon distance that counts as drift. */
  minDistance: number;
  /** Groups not tested: hourOfDay, since a window shorter than a day sees a few hours only. */
  ignore: readonly string[];
}

export const DEFAULT_DRIFT_POLICY: DriftPolicy = {
  falseAlarmsPerDay: 0.1,
  looksPerDay: 1440,
  minRecords: 500,
  minDistance: 0.1,
  ignore: ['hourOfDay'],
};

export interface GroupDrift {
  group: string;
  records: number;
  psi: number;
  distance: number;
  pValue: number;
  /** Enough records and a reference to compare with: `drifted: false` then means it held. */
  tested: boolean;
  drifted: boolean;
  missingRate: number;
  referenceMissingRate: number;
  /** Share of live records with a value the reference does not name. */
  newValueRate: number;
}

export interface DriftReport {
  /** The level each test was run at. */
  level: number;
  /** Σm²/Σm of the live window's and of the reference's users: how far the tests were corrected. */
  designEffect: { live: number; reference: number };
  groups: GroupDrift[];
  drifted: string[];
}

/** Live bins named as the reference names them: unknown values to OTHER if it has one, else NEW. */
function aligned(
  reference: FeatureProfile['groups'][string],
  live: RawProfile['groups'][string] | undefined,
) {
  const ref: Record<string, number> = { ...reference.bins, [MISSING]: reference.missing };
  const now: Record<string, number> = { [MISSING]: live?.missing ?? 0 };
  let unknown = 0;
  for (const [bin, n] of Object.entries(live?.bins ?? {})) {
    const known = bin in reference.bins && bin !== OTHER;
    const name = known ? bin : OTHER in reference.bins ? OTHER : NEW;
    if (!known) unknown += n;
    now[name] = (now[name] ?? 0) + n;
  }
  return { ref, now, unknown };
}

export function driftOf(reference: FeatureProfile, live: RawProfile, policy: DriftPolicy): DriftReport {
  const names = Object.keys(reference.groups)
    .filter((g) => !policy.ignore.includes(g))
    .sort();
  const level = perTestLevel(policy.falseAlarmsPerDay, names.length, policy.looksPerDay);
  const design = { live: profileDesignEffect(live), reference: reference.designEffect ?? 1 };
  const groups = names.map((group): GroupDrift => {
    const { ref, now, unknown } = aligned(reference.groups[group]!, live.groups[group]);
    const records = Object.values(now).reduce((s, n) => s + n, 0);
    const refRecords = Object.values(ref).reduce((s, n) => s + n, 0);
    const comparable = records > 0 && refRecords > 0;
    const test = clusteredTest(ref, now, design);
    const distance = comparable ? jensenShannon(ref, now) : 0;
    return {
      group,
      records,
      psi: comparable ? psi(ref, now) : 0,
      distance,
      pValue: test.pValue,
      tested: comparable && records >= policy.minRecords,
      drifted:
        comparable && records >= policy.minRecords && test.pValue < level && distance >= policy.minDistance,
      missingRate: records > 0 ? (now[MISSING] as number) / records : 0,
      referenceMissingRate: refRecords > 0 ? (ref[MISSING] as number) / refRecords : 0,
      newValueRate: records > 0 ? unknown / records : 0,
    };
  });
  return {
    level,
    designEffect: design,
    groups,
    drifted: groups.filter((g) => g.drifted).map((g) => g.group),
  };
}

/**
 * The chi-squared test of homogeneity with its statistic divided by the samples' design effects
 * (Rao-Scott, first order): Var(p̂ live − p̂ reference) grows from 1/n + 1/m to d/n + e/m when
 * the records come in clusters. Without it, clicks of the same users read as independent
 * evidence and a steady shop is flagged at every look.
 */
function clusteredTest(
  ref: Record<string, number>,
  now: Record<string, number>,
  design: { live: number; reference: number },
): { pValue: number } {
  const test = chiSquaredHomogeneity(ref, now);
  const n = Object.values(now).reduce((s, x) => s + x, 0);
  const m = Object.values(ref).reduce((s, x) => s + x, 0);
  if (test.degreesOfFreedom === 0 || n === 0 || m === 0) return test;
  const factor = (1 / n + 1 / m) / (design.live / n + design.reference / m);
  return { pValue: chiSquaredSurvival(test.statistic * factor, test.degreesOfFreedom) };
}
