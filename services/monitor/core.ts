// The monitor's pure core: predictions and labels in (windows.ts), and at each look the quality
// of every version and arm, the drift of every version against its reference, and what to do
// (alerts.ts). The service (its driver) feeds it records from Kafka, gives it the references from
// the registry and the clock, checkpoints its state and carries out the judgement.
//
// Which window a look reads: drift and the estimate, the newest `windowMs` of click time (they
// need predictions only); live quality, the same length ending `labelLagMs` earlier, since a
// click's label lands up to the attribution window after it (a newer window is mostly unlabeled,
// and its purchase rate would read low).
import type { DeadLetter, HumanLabel, LabeledExample, Prediction } from '../common/contracts.js';
import { FlaggedPredictions, type FlagState } from './flags.js';
import type { FeatureProfile, ProfileReader } from '../model/profile.js';
import { judge, type AlertPolicy, type AlertState, type Judgement, type Observation } from './alerts.js';
import { driftOf, type DriftPolicy, type DriftReport } from './drift.js';
import { emptyDeadLetters, takeDeadLetter, type DeadLetterState } from './dead-letters.js';
import { emptyHistory, rollUp, type HistoryState } from './history.js';
import { windowQuality } from './quality.js';
import { MonitorWindows, parseArmKey, type WindowsState } from './windows.js';

export interface MonitorCoreConfig {
  bucketMs: number;
  windowMs: number;
  labelLagMs: number;
  retentionMs: number;
  /** How long the hourly history and the dead-letter counts are kept. */
  historyMs: number;
  drift: DriftPolicy;
  alerts: AlertPolicy;
}

/** Reliability of a version's holdout: mean score → label rate, ascending by score. */
export type CalibrationTable = readonly { meanScore: number; rate: number }[];

export interface VersionReference {
  profile: FeatureProfile | null;
  calibration: CalibrationTable | null;
}

export interface MonitorState {
  windows: WindowsState;
  alerts: AlertState;
  /** Absent in a checkpoint written before the long history. */
  history?: HistoryState;
  deadLetters?: DeadLetterState;
  /** Predictions labelers flagged (absent before validity flags). */
  flags?: FlagState;
}

export interface Look {
  at: number;
  drift: { from: number; to: number };
  quality: { from: number; to: number };
  observations: Observation[];
  judgement: Judgement;
}

/** Piecewise-linear through the table's points, flat beyond its ends; the score itself without one. */
export function calibrate(table: CalibrationTable | null, score: number): number {
  if (!table || table.length === 0) return score;
  const first = table[0] as CalibrationTable[number];
  const last = table.at(-1) as CalibrationTable[number];
  if (score <= first.meanScore) return first.rate;
  if (score >= last.meanScore) return last.rate;
  for (let i = 1; i < table.length; i++) {
    const a = table[i - 1] as CalibrationTable[number];
    const b = table[i] as CalibrationTable[number];
    if (score <= b.meanScore)
      return a.rate + ((b.rate - a.rate) * (score - a.meanScore)) / (b.meanScore - a.meanScore || 1);
  }
  return last.rate;
}

export class MonitorCore {
  readonly windows: MonitorWindows;
  readonly alerts: AlertState;
  readonly history: HistoryState;
  readonly deadLetters: DeadLetterState;
  readonly flags: FlaggedPredictions;

  constructor(
    private readonly config: MonitorCoreConfig,
    reader: ProfileReader,
    private readonly referenceOf: (version: string) => VersionReference | null,
    state?: MonitorState,
  ) {
    const options = {
      retentionMs: config.retentionMs,
      reader,
      calibration: (version: string, score: number) =>
        calibrate(this.referenceOf(version)?.calibration ?? null, score),
      onExpire: (key: string, bucket: Parameters<typeof rollUp>[2]) =>
        rollUp(this.history, key, bucket, config.historyMs),
    };
    this.history = state?.history ?? emptyHistory();
    this.deadLetters = state?.deadLetters ?? emptyDeadLetters();
    this.flags = new FlaggedPredictions(undefined, state?.flags);
    this.windows = state
      ? new MonitorWindows(state.windows, options)
      : MonitorWindows.empty(config.bucketMs, options);
    this.alerts = state?.alerts ?? { open: {}, lastRetrainAt: null };
  }

  takePredictions(records: readonly Prediction[]): void {
    for (const p of records) this.windows.addPrediction(p);
  }

  /** Outcomes; one of a prediction most labelers flagged invalid is left out (counted). */
  takeLabels(records: readonly LabeledExample[]): void {
    for (const e of records) {
      if (this.flags.invalid(e.predictionId)) this.flags.excluded++;
      else this.windows.addLabel(e);
    }
  }

  /** Human labels: only their validity flags matter here (a flag after the outcome is too late). */
  takeHumanLabels(records: readonly HumanLabel[]): void {
    for (const l of records) this.flags.take(l);
  }

  takeDeadLetters(records: readonly DeadLetter[]): void {
    for (const d of records) takeDeadLetter(this.deadLetters, d, this.config.historyMs);
  }

  /** The windows as of the newest click time seen, judged at wall time `now`. */
  look(now: number): Look {
    const newest = this.windows.state.newest;
    const { bucketMs, windowMs, labelLagMs } = this.config;
    const end = Math.floor(newest / bucketMs) * bucketMs + bucketMs;
    const drift = { from: end - windowMs, to: end };
    const quality = { from: end - labelLagMs - windowMs, to: end - labelLagMs };
    const keys = this.windows.keys(quality.from, drift.to);
    const driftByVersion = new Map<string, DriftReport | null>();
    const observations = keys.map((key): Observation => {
      const { version, arm } = parseArmKey(key);
      if (!driftByVersion.has(version)) driftByVersion.set(version, this.driftOf(version, drift));
      const live = windowQuality(this.windows.buckets((k) => k === key, quality.from, quality.to));
      const recent = windowQuality(this.windows.buckets((k) => k === key, drift.from, drift.to));
      return {
        version,
        arm,
        quality: { ...live, estimate: recent.estimate },
        drift: driftByVersion.get(version) ?? null,
      };
    });
    const judgement = judge(observations, this.alerts, now, this.config.alerts);
    return { at: now, drift, quality, observations, judgement };
  }

  /** Plain data to checkpoint (JSON). */
  snapshot(): MonitorState {
    return {
      windows: this.windows.state,
      alerts: this.alerts,
      history: this.history,
      deadLetters: this.deadLetters,
      flags: this.flags.state(),
    };
  }

  private driftOf(version: string, range: { from: number; to: number }): DriftReport | null {
    const reference = this.referenceOf(version)?.profile;
    if (!reference) return null;
    const live = this.windows.profile((key) => parseArmKey(key).version === version, range.from, range.to);
    return driftOf(reference, live, this.config.drift);
  }
}
