// What the monitor remembers: per model version and arm, per bucket of click time, the
// sufficient statistics of its predictions and of their labels. A window is a sum of buckets, so
// any window within the retention is answered exactly and the state is plain data (checkpointed
// as JSON). Pure: records and times in, numbers out.
//
// - Predictions: volume, score sum, a score histogram, the live feature profile (drift), and the
//   expected log loss and expected positives under the version's calibration (the estimate of
//   quality before labels land, as NannyML's CBPE).
// - Labels (outcomes and timeouts of a served prediction), by their click time: count,
//   positives, log loss, scores by label (AUC), reliability bins (ECE), label delay.
// - A correction (revision > 0) flips its prediction's label: the old label is taken out first.
import type { LabeledExample, Prediction } from '../common/contracts.js';
import { emptyProfile, mergeProfiles, type ProfileReader, type RawProfile } from '../model/profile.js';

const EPS = 1e-7;
/** Score bins for AUC (ties within a bin count half) and the estimate's expected counts. */
export const SCORE_BINS = 100;
export const RELIABILITY_BINS = 10;
/** Upper bounds of the label-delay bins, ms (the last bin is open). */
export const DELAY_BOUNDS = [
  1e3, 5e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 1800e3, 3600e3, 7200e3, 21600e3,
];

export interface PredictionStats {
  n: number;
  scoreSum: number;
  /** Predictions per score bin. */
  bins: number[];
  /** Σ calibrated probability per score bin: expected positives. */
  expectedPositives: number[];
  /** Σ expected log loss under the calibrated probability. */
  expectedLossSum: number;
  profile: RawProfile;
}

export interface LabelStats {
  n: number;
  positives: number;
  lossSum: number;
  scoreSum: number;
  positiveBins: number[];
  negativeBins: number[];
  reliability: { n: number[]; scoreSum: number[]; positives: number[] };
  delays: number[];
  delaySum: number;
  delayCount: number;
}

export interface Bucket {
  start: number;
  predictions: PredictionStats;
  labels: LabelStats;
}

export interface WindowsState {
  bucketMs: number;
  /** Bucket start → buckets of each "version|arm". */
  buckets: Record<string, Record<string, Bucket>>;
  newest: number;
  /** Records older than the retention when they came (not counted). */
  tooOld: number;
}

const zeros = (n: number) => new Array<number>(n).fill(0);
const scoreBin = (score: number, bins: number) => Math.min(bins - 1, Math.max(0, Math.floor(score * bins)));
const clip = (p: number) => Math.min(1 - EPS, Math.max(EPS, p));

export const armKey = (version: string, arm: string) => `${version}|${arm}`;
export function parseArmKey(key: string): { version: string; arm: string } {
  const cut = key.lastIndexOf('|');
  return { version: key.slice(0, cut), arm: key.slice(cut + 1) };
}

function emptyBucket(start: number): Bucket {
  return {
    start,
    predictions: {
      n: 0,
      scoreSum: 0,
      bins: zeros(SCORE_BINS),
      expectedPositives: zeros(SCORE_BINS),
      expectedLossSum: 0,
      profile: emptyProfile(),
    },
    labels: {
      n: 0,
      positives: 0,
      lossSum: 0,
      scoreSum: 0,
      positiveBins: zeros(SCORE_BINS),
      negativeBins: zeros(SCORE_BINS),
      reliability: {
        n: zeros(RELIABILITY_BINS),
        scoreSum: zeros(RELIABILITY_BINS),
        positives: zeros(RELIABILITY_BINS),
      },
      delays: zeros(DELAY_BOUNDS.length + 1),
      delaySum: 0,
      delayCount: 0,
    },
  };
}

/** A version's map from score to probability (its holdout's reliability); identity if unknown. */
export type Calibration = (version: string, score: number) => number;

export class MonitorWindows {
  constructor(
    readonly state: WindowsState,
    private readonly options: {
      retentionMs: number;
      reader: ProfileReader;
      calibration?: Calibration;
      /** Told of each bucket as it falls behind the retention (the long history keeps its sums). */
      onExpire?: (key: string, bucket: Bucket) => void;
    },
  ) {}

  static empty(bucketMs: number, options: MonitorWindows['options']): MonitorWindows {
    return new MonitorWindows({ bucketMs, buckets: {}, newest: 0, tooOld: 0 }, options);
  }

  addPrediction(p: Prediction): void {
    const bucket = this.bucketFor(p.eventTime, armKey(p.modelVersion, p.arm));
    if (!bucket) return;
    const s = bucket.predictions;
    const b = scoreBin(p.score, SCORE_BINS);
    const c = clip(this.options.calibration?.(p.modelVersion, p.score) ?? p.score);
    const q = clip(p.score);
    s.n++;
    s.scoreSum += p.score;
    s.bins[b]!++;
    s.expectedPositives[b]! += c;
    s.expectedLossSum -= c * Math.log(q) + (1 - c) * Math.log(1 - q);
    this.options.reader.add(s.profile, p);
  }

  /** A label of a served prediction; uploads, human labels and unscored examples are not. */
  addLabel(e: LabeledExample): void {
    if (e.modelVersion === null || e.arm === null || e.score === null) return;
    if (e.labelSource !== 'outcome' && e.labelSource !== 'timeout') return;
    const bucket = this.bucketFor(e.clickTime, armKey(e.modelVersion, e.arm));
    if (!bucket) return;
    const s = bucket.labels;
    const previous = e.label ? 0 : 1;
    // A correction replaces the other label, if this bucket counted it.
    if (e.revision > 0 && (previous ? s.positives : s.n - s.positives) > 0)
      this.count(s, e.score, previous, -1);
    this.count(s, e.score, e.label ? 1 : 0, 1);
    if (e.revision === 0 && e.delayMs !== null && e.delayMs >= 0) {
      let d = DELAY_BOUNDS.findIndex((bound) => e.delayMs! < bound);
      if (d < 0) d = DELAY_BOUNDS.length;
      s.delays[d]!++;
      s.delaySum += e.delayMs;
      s.delayCount++;
    }
  }

  private count(s: LabelStats, score: number, label: 0 | 1, sign: 1 | -1): void {
    const p = clip(score);
    s.n += sign;
    s.positives += sign * label;
    s.scoreSum += sign * score;
    s.lossSum -= sign * (label ? Math.log(p) : Math.log(1 - p));
    (label ? s.positiveBins : s.negativeBins)[scoreBin(score, SCORE_BINS)]! += sign;
    const r = scoreBin(score, RELIABILITY_BINS);
    s.reliability.n[r]! += sign;
    s.reliability.scoreSum[r]! += sign * score;
    s.reliability.positives[r]! += sign * label;
  }

  private bucketFor(time: number, key: string): Bucket | null {
    const { bucketMs } = this.state;
    const start = Math.floor(time / bucketMs) * bucketMs;
    if (time > this.state.newest) {
      this.state.newest = time;
      this.expire();
    }
    if (start + bucketMs <= this.state.newest - this.options.retentionMs) {
      this.state.tooOld++;
      return null;
    }
    const byKey = (this.state.buckets[start] ??= {});
    return (byKey[key] ??= emptyBucket(start));
  }

  /** Buckets entirely behind the retention are forgotten. */
  private expire(): void {
    const horizon = this.state.newest - this.options.retentionMs;
    for (const [start, byKey] of Object.entries(this.state.buckets)) {
      if (Number(start) + this.state.bucketMs > horizon) continue;
      for (const [key, bucket] of Object.entries(byKey)) this.options.onExpire?.(key, bucket);
      delete this.state.buckets[start];
    }
  }

  /** Every "version|arm" with a bucket in [from, to). */
  keys(from = -Infinity, to = Infinity): string[] {
    const keys = new Set<string>();
    for (const [start, byKey] of Object.entries(this.state.buckets))
      if (Number(start) >= from && Number(start) < to) for (const key of Object.keys(byKey)) keys.add(key);
    return [...keys].sort();
  }

  /** The buckets of the keys `match` accepts with a start in [from, to). */
  buckets(match: (key: string) => boolean, from: number, to: number): Bucket[] {
    const out: Bucket[] = [];
    for (const [start, byKey] of Object.entries(this.state.buckets)) {
      if (Number(start) < from || Number(start) >= to) continue;
      for (const [key, bucket] of Object.entries(byKey)) if (match(key)) out.push(bucket);
    }
    return out.sort((a, b) => a.start - b.start);
  }

  /** The live profile of the matching keys over [from, to). */
  profile(match: (key: string) => boolean, from: number, to: number): RawProfile {
    return mergeProfiles(this.buckets(match, from, to).map((b) => b.predictions.profile));
  }
}
