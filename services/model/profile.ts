// A compact profile of what a model sees: per feature group, a binned histogram. The trainer
// computes one over a version's training data and stores it in the version's metadata (its
// reference, computed once); the monitor builds the same profile over live predictions and
// compares the two (services/monitor/drift.ts). Groups are what a prediction carries in the
// clear or can be read back from its vector: the score, the category and the segment fields,
// the bucket of each bucketed feature (its slot is known from the spec) and the dense values.
import { BUCKETS, type FeatureSpec } from './features.js';
import type { FeatureVector } from '../common/contracts.js';
import { addToSketch, designEffect, emptySketch, mergeSketch, type ClusterSketch } from './clusters.js';

export const PROFILE_VERSION = 1;
/** Equal-width bins of the score, and of each dense value over [0, 1]. */
export const SCORE_BINS = 20;
export const DENSE_BINS = 10;
/** Most distinct values of a categorical group kept; the rest count as OTHER. */
export const MAX_VALUES = 50;
export const OTHER = '(other)';

export interface GroupHistogram {
  /** Records per bin (bin name → count). */
  bins: Record<string, number>;
  /** Records without this group (no score, no slot of the feature, an empty field). */
  missing: number;
}

export interface FeatureProfile {
  version: typeof PROFILE_VERSION;
  featureSpecHash: string;
  records: number;
  groups: Record<string, GroupHistogram>;
  /** Σm²/Σm over the records' users (clusters.ts); absent in references made before it (1). */
  designEffect?: number;
}

/** What a profile reads from a prediction or a labeled example. */
export interface ProfiledRecord {
  features: FeatureVector;
  category: string;
  segment: string;
  score?: number | null;
  /** Whose click it was: the records of one user are alike (the design effect). */
  userId?: string;
}

/** The dense values (named apart from the bucketed features: clicksBefore is both). */
export const DENSE_GROUPS = ['dense:logPrice', 'dense:clicksBefore', 'dense:logSecondsInSession'] as const;
export const BUCKET_GROUPS = Object.keys(BUCKETS) as (keyof typeof BUCKETS)[];
export const CATEGORICAL_GROUPS = ['category', 'segment'] as const;
export const PROFILE_GROUPS = ['score', ...CATEGORICAL_GROUPS, ...BUCKET_GROUPS, ...DENSE_GROUPS] as const;

function binOf(value: number, bins: number): string {
  return String(Math.min(bins - 1, Math.max(0, Math.floor(value * bins))));
}

/** Counts not yet cut to MAX_VALUES per group: what a builder holds, and what windows merge. */
export interface RawProfile {
  records: number;
  groups: Record<string, GroupHistogram>;
  /** The records' users (absent in a monitor state written before it). */
  users?: ClusterSketch;
}

export function emptyProfile(): RawProfile {
  return {
    records: 0,
    groups: Object.fromEntries(PROFILE_GROUPS.map((g) => [g, { bins: {}, missing: 0 }])),
    users: emptySketch(),
  };
}

/** The design effect of a raw profile's records (1 without users). */
export const profileDesignEffect = (raw: RawProfile) => designEffect(raw.users);

/** The sum of raw profiles (the buckets of a window). */
export function mergeProfiles(profiles: Iterable<RawProfile>): RawProfile {
  const sum = emptyProfile();
  for (const profile of profiles) {
    sum.records += profile.records;
    mergeSketch(sum.users!, profile.users);
    for (const [group, histogram] of Object.entries(profile.groups)) {
      const into = (sum.groups[group] ??= { bins: {}, missing: 0 });
      into.missing += histogram.missing;
      for (const [bin, n] of Object.entries(histogram.bins)) into.bins[bin] = (into.bins[bin] ?? 0) + n;
    }
  }
  return sum;
}

/** A raw profile cut to the MAX_VALUES largest bins per group (the rest as OTHER). */
export function finishProfile(raw: RawProfile, featureSpecHash: string): FeatureProfile {
  const groups: Record<string, GroupHistogram> = {};
  for (const [group, histogram] of Object.entries(raw.groups)) {
    const counts = Object.entries(histogram.bins).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const bins: Record<string, number> = {};
    counts.forEach(([bin, n], rank) => {
      const name = rank < MAX_VALUES ? bin : OTHER;
      bins[name] = (bins[name] ?? 0) + n;
    });
    groups[group] = { bins, missing: histogram.missing };
  }
  return {
    version: PROFILE_VERSION,
    featureSpecHash,
    records: raw.records,
    groups,
    designEffect: designEffect(raw.users),
  };
}

/** Reads the groups of records into a raw profile (the slots of the buckets known from the spec). */
export class ProfileReader {
  private readonly bucketOfSlot = new Map<number, { group: string; bucket: string }[]>();
  private readonly denseSlot: number;

  constructor(readonly spec: FeatureSpec) {
    for (const [group, slots] of Object.entries(spec.bucketSlots()))
      slots.forEach((slot, bucket) => {
        const list = this.bucketOfSlot.get(slot) ?? [];
        list.push({ group, bucket: String(bucket) });
        this.bucketOfSlot.set(slot, list);
      });
    this.denseSlot = spec.hashSize;
  }

  add(into: RawProfile, record: ProfiledRecord): void {
    into.records++;
    if (record.userId) addToSketch((into.users ??= emptySketch()), record.userId);
    const count = (group: string, bin: string) => {
      const bins = (into.groups[group] as GroupHistogram).bins;
      bins[bin] = (bins[bin] ?? 0) + 1;
    };
    const miss = (group: string) => (into.groups[group] as GroupHistogram).missing++;
    const score = record.score;
    if (score === null || score === undefined || !Number.isFinite(score)) miss('score');
    else count('score', binOf(score, SCORE_BINS));
    for (const group of CATEGORICAL_GROUPS) {
      if (record[group]) count(group, record[group]);
      else miss(group);
    }
    const seen = new Set<string>();
    const { indices, values } = record.features;
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i] as number;
      const dense = index >= this.denseSlot ? DENSE_GROUPS[index - this.denseSlot] : undefined;
      if (dense) {
        count(dense, binOf(values[i] as number, DENSE_BINS));
        seen.add(dense);
      }
      for (const { group, bucket } of this.bucketOfSlot.get(index) ?? [])
        if (!seen.has(group)) {
          count(group, bucket);
          seen.add(group);
        }
    }
    for (const group of [...BUCKET_GROUPS, ...DENSE_GROUPS]) if (!seen.has(group)) miss(group);
  }
}

/** The profile of a set of records (a version's training data, in the trainer). */
export function profileOf(spec: FeatureSpec, records: Iterable<ProfiledRecord>): FeatureProfile {
  const reader = new ProfileReader(spec);
  const raw = emptyProfile();
  for (const record of records) reader.add(raw, record);
  return finishProfile(raw, spec.hash);
}

/** A version's holdout reliability: per score bin with examples, mean score and label rate. */
export type CalibrationTable = { meanScore: number; rate: number; n: number }[];

/** What a version is compared with once it serves: its data's profile and its calibration. */
export interface VersionReference {
  profile: FeatureProfile;
  calibration: CalibrationTable;
}

export const CALIBRATION_BINS = 10;

/**
 * The reference of a version from the examples it was judged on, scored by it. Groups the
 * examples do not carry (`absent`) are left out, so the monitor does not test what it cannot
 * compare.
 */
export function versionReference(
  spec: FeatureSpec,
  examples: readonly (ProfiledRecord & { label: number; score: number })[],
  absent: readonly string[] = [],
): VersionReference {
  const profile = profileOf(spec, examples);
  for (const group of absent) delete profile.groups[group];
  const bins = Array.from({ length: CALIBRATION_BINS }, () => ({ n: 0, scoreSum: 0, positives: 0 }));
  for (const { score, label } of examples) {
    const bin = bins[Math.min(CALIBRATION_BINS - 1, Math.max(0, Math.floor(score * CALIBRATION_BINS)))]!;
    bin.n++;
    bin.scoreSum += score;
    bin.positives += label ? 1 : 0;
  }
  const calibration = bins.flatMap((b) =>
    b.n > 0 ? [{ meanScore: b.scoreSum / b.n, rate: b.positives / b.n, n: b.n }] : [],
  );
  return { profile, calibration };
}
