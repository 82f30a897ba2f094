// What the registry records of a model version (lineage, training data, metrics, status) and of
// the aliases that route traffic to versions.
import type { RoutedChallenger, Routing } from '../common/contracts.js';
import type { OffsetRange } from '../common/read-ranges.js';
import type { ModelArtifacts, ModelKind } from '../model/artifacts.js';
import type { VersionReference } from '../model/profile.js';

export type Alias = 'champion' | 'challenger' | 'shadow';
export const ALIASES: readonly Alias[] = ['champion', 'challenger', 'shadow'];

/**
 * Files stored with a version that belong to its lineage, not its model: the online trainer's
 * whole state when it proposed the version, where the next version's replay starts.
 */
export const TRAINER_SNAPSHOT_FILE = 'trainer-snapshot.ckpt';
export const LINEAGE_FILES: readonly string[] = [TRAINER_SNAPSHOT_FILE];

export type { OffsetRange };

/**
 * What an online trainer's version needs to be trained again: the read order (read-order.ts,
 * over `ranges`), the holdout size and the label policy. null runs: the trainer resumed from a
 * checkpoint without an order, so the version cannot be replayed.
 */
export interface OnlineReplay {
  runs: string | null;
  /** The version whose FTRL state the trainer started from (null: from zero), when no base. */
  warmStart?: string | null;
  /**
   * The earlier candidate whose trainer snapshot (`trainer-snapshot.ckpt`, the whole pipeline
   * state) the runs start from; null: they start at the beginning (or at the warm start).
   */
  base?: string | null;
  holdoutSize: number;
  policy: {
    conflict: string;
    humanWeight: number;
    holdMs: number;
    rememberOutcomes: number;
    /** Absent in versions recorded before censored segments. */
    censoredSegments?: readonly string[];
    /** How labelers are measured (absent before: the defaults). */
    reliability?: { minJudged: number; windowDays: number };
  };
  /** The trainer's own FTRL parameters (the version's are those of the learner selected). */
  primary?: { alpha: number; beta: number; l1: number; l2: number };
  /** The learners trained side by side with it (services/trainer/learners.ts). */
  learners?: {
    name: string;
    params: { alpha: number; beta: number; l1: number; l2: number };
    hashBits: number | null;
    dense: boolean;
    forgetting: number;
    calibrationRate: number;
  }[];
  /** Newest examples the selection compares learners on, as configured. */
  selectionWindow?: number;
  /** Which learner the version's weights are, picked by recent progressive log loss. */
  selection?: { selected: string; window: number; progressiveLogLoss: Record<string, number | null> };
}

/** Where a version's training data came from, enough to train it again. */
export type TrainingData =
  | {
      source: 'kafka';
      ranges: OffsetRange[];
      /** Examples learned from. */
      examples: number;
      labelSources: Record<string, number>;
      /** Newest label time (ms) the version has seen, in training or in its holdout. */
      newestEventTime?: number;
      /** Newest label time (ms) it learned from: the freshness of its weights. */
      newestLearnedTime?: number;
      /** What made the trainer propose it: count, interval, drift, operator or alarm. */
      trigger?: string;
      /** What each input topic carries (feedback examples or human labels). */
      kinds?: Record<string, 'labeledExample' | 'humanLabel'>;
      /** How the online trainer read and merged the records; absent for a backfill (time order). */
      online?: OnlineReplay;
      /** The teacher whose soft labels trained this student (distillation). */
      teacher?: string;
    }
  | {
      source: 'simulated';
      seed: number;
      clicks: number;
      startTime: number;
      trafficRate: number;
      attributionWindowMs: number;
      examples: number;
    }
  | { source: 'upload'; description: string; examples: number | null };

export interface HoldoutMetrics {
  examples: number;
  logLoss: number;
  auc: number;
  calibrationError: number;
  /** Label rate in the top 10% by score over the holdout's rate (expected purchase-rate lift). */
  lift?: number;
  /** The same holdout scored by the baseline and the champion at registration, when known. */
  baselineLogLoss?: number;
  championLogLoss?: number;
  /** The same holdout scored by a constant at its own label rate (the gate's rule 2). */
  constantLogLoss?: number;
}

export interface VersionMetadata {
  version: string;
  parent: string | null;
  kind: ModelKind;
  featureSpecHash: string;
  hyperParameters: Record<string, unknown>;
  seed: number;
  training: TrainingData;
  metrics: HoldoutMetrics | null;
  /** Its holdout's feature profile and calibration, for the monitor (absent: none computed). */
  reference?: VersionReference;
  sha256: string;
  files: Record<string, number>;
  createdAt: string;
  createdBy: string;
  status: 'registered' | 'rejected';
  statusReason: string | null;
}

export interface NewVersion {
  artifacts: ModelArtifacts;
  parent: string | null;
  seed: number;
  training: TrainingData;
  metrics: HoldoutMetrics | null;
  reference?: VersionReference;
  createdBy: string;
  status?: VersionMetadata['status'];
  statusReason?: string | null;
}

export type { Routing };

/** A split of traffic between the champion, challengers and the baseline (ModelUpdate v2). */
export interface Split {
  challengers: RoutedChallenger[];
  baselineWeight: number;
  segments: string[];
}

export interface AliasMove {
  at: string;
  alias: Alias;
  from: string | null;
  to: string | null;
  challengerWeight: number;
  /** A split's move: every challenger, the baseline's share and the segments after it. */
  split?: Split;
  actor: string;
  reason: string;
}
