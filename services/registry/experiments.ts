// Experiments in the registry: which candidate is tried against which control, with which ramp,
// where it stands and every decision taken, with the numbers that drove it. One file, changed
// under its own lock by whoever acts on an experiment (the rollout controller, an operator over
// the CLI or the admin API, the trainer queueing a candidate):
//
//   <root>/experiments.json   { experiments: [...], offsets: {...} } (write-then-rename)
//
// `offsets` are the rollout controller's: how far into fw.feedback.labeled the arms' summaries
// reach, written with them, so a restarted controller counts each outcome once. The lock is taken
// before the alias lock (an experiment's decision moves aliases while holding it), never after.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryError } from '../common/errors.js';
import { isCode, withFileLock, writeAtomically } from './file-lock.js';
import { ACTIVE_STATES, type ExperimentState } from './experiment-states.js';

export * from './experiment-states.js';

export interface MetricSpec {
  better: 'higher' | 'lower';
  role: 'primary' | 'guardrail';
  /** The size of difference the mixture is tuned to (see rollout/sequential.ts). */
  tau: number;
  /**
   * A guardrail's margin for promotion: its interval must rule out harm larger than this (a
   * non-inferiority test); absent, only significant harm counts.
   */
  tolerance?: number;
  /** Harm up to this size does not roll back (default 0: any significant harm does). */
  harmMargin?: number;
}

export interface RampConfig {
  /** The candidate's traffic share at each step, increasing (e.g. 0.01, 0.05, 0.25, 0.5). */
  steps: readonly number[];
  /** Candidate outcomes needed in a step before it may advance. */
  minOutcomes: number;
  /** Time a step lasts at least. */
  minStepMs: number;
  /** Candidate outcomes after which an undecided experiment ends inconclusive. */
  budget: number;
  alpha: number;
  metrics: Readonly<Record<string, MetricSpec>>;
}

/** The metrics an experiment decides on, by what it tries to improve. */
export const METRIC_PRESETS = {
  // A better predictor: log loss decides; purchases must not fall by more than two points.
  logLoss: {
    logLoss: { better: 'lower', role: 'primary', tau: 0.1 },
    purchaseRate: { better: 'higher', role: 'guardrail', tau: 0.02, tolerance: 0.02 },
  },
  // A change meant to sell more: purchases decide. Log loss cannot guard it: it rises with the
  // purchase rate itself (the entropy of the outcome), so a candidate that sells more would
  // look worse on it however well it predicts.
  purchaseRate: {
    purchaseRate: { better: 'higher', role: 'primary', tau: 0.02 },
  },
} as const satisfies Record<string, Record<string, MetricSpec>>;
export type PrimaryMetric = keyof typeof METRIC_PRESETS;

export const DEFAULT_RAMP: RampConfig = {
  steps: [0.05, 0.25, 0.5],
  minOutcomes: 500,
  minStepMs: 0,
  budget: 10_000,
  alpha: 0.05,
  metrics: METRIC_PRESETS.logLoss,
};

/** One arm's outcomes of one metric: count, mean and sum of squared deviations (Welford). */
export interface MeanSummary {
  n: number;
  mean: number;
  m2: number;
}
export type ArmSummaries = Record<'control' | 'candidate', Record<string, MeanSummary>>;

/** Served scores in [k/B, (k+1)/B): how many, and the sums of their scores and outcomes. */
export interface ReliabilityBin {
  n: number;
  score: number;
  label: number;
}
export const RELIABILITY_BINS = 10;

/** Expected calibration error of reliability bins: Σ n_b/N · |mean score_b − outcome rate_b|. */
export function calibrationError(bins: readonly ReliabilityBin[]): number | null {
  const total = bins.reduce((sum, b) => sum + b.n, 0);
  if (total === 0) return null;
  return bins.reduce((sum, b) => (b.n > 0 ? sum + Math.abs(b.score - b.label) / total : sum), 0);
}

/** What the rollout controller keeps of an experiment's outcomes: in all, and by stratum. */
export interface OutcomeSummaries {
  stats: ArmSummaries;
  strata: Record<string, ArmSummaries>;
  /** Per arm, the reliability of the scores it served. */
  calibration?: Record<'control' | 'candidate', ReliabilityBin[]>;
  /** The heuristic baseline arm's outcomes, when the experiment gives it a share. */
  baseline?: Record<string, MeanSummary>;
  /** Outcomes whose attribution window has not closed yet, by click-time bucket (not counted). */
  pending?: PendingOutcomeRecord[];
  /** The newest click time whose window is known closed. */
  closedUntil?: number;
}

export interface PendingOutcomeRecord {
  bucket: number;
  arm: 'control' | 'candidate' | 'baseline';
  stratum: string;
  stats: Record<string, MeanSummary>;
}

/** candidate − control with its always-valid interval; a null bound is unbounded (too few outcomes). */
export interface IntervalRecord {
  estimate: number;
  lower: number | null;
  upper: number | null;
}

export function intervalRecords(
  intervals: Readonly<Record<string, { estimate: number; lower: number; upper: number }>>,
): Record<string, IntervalRecord> {
  const bound = (x: number) => (Number.isFinite(x) ? x : null);
  return Object.fromEntries(
    Object.entries(intervals).map(([metric, i]) => [
      metric,
      { estimate: i.estimate, lower: bound(i.lower), upper: bound(i.upper) },
    ]),
  );
}

export interface ExperimentDecision {
  at: number;
  action: string;
  actor: string;
  /** The candidate's share after it. */
  share: number;
  reasons: string[];
  intervals: Record<string, IntervalRecord>;
  outcomes: { control: number; candidate: number };
}

/** One look at the arms, for the report's chart. */
export interface TimelinePoint {
  at: number;
  share: number;
  arms: Record<'control' | 'candidate', ArmPoint> & { baseline?: ArmPoint };
  intervals: Record<string, IntervalRecord>;
  /** control − baseline arm, with its always-valid interval, when the baseline has a share. */
  baselineIntervals?: Record<string, IntervalRecord>;
}

export interface ArmPoint {
  n: number;
  means: Record<string, number>;
}

export interface ExperimentRecord {
  id: string;
  candidate: string;
  /**
   * The experiments started together with it, one per candidate, against the same control:
   * the id of the first. Each candidate is decided on its own at alpha / candidates; when one
   * is promoted, the others end.
   */
  group?: string;
  /** Share of users the heuristic baseline serves while the group runs (a permanent control). */
  baselineShare?: number;
  /** Segments (country/device, '*' for any) the split applies to; absent or empty: all traffic. */
  segments?: string[];
  /**
   * 'shadow': the candidate scores every click as the shadow, serving no one; its log loss on the
   * same clicks is compared with the champion's, and passing queues a canary of it (the ramp in
   * `config`). Absent: a split of users.
   */
  mode?: 'shadow';
  /** The champion when it started (null while queued), or the refresh of it serving now. */
  control: string | null;
  /**
   * Every version counted as the control: the champion it started against and, when that was
   * the heuristic baseline serving, each refresh of it the trainer published since.
   */
  controls?: string[];
  state: ExperimentState;
  config: RampConfig;
  createdBy: string;
  createdAt: number;
  /** Why it was created (the trainer's gate numbers, an operator's words). */
  reason: string;
  startedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  step: number;
  stepStartedAt: number;
  /** Candidate outcomes when the current step began. */
  stepStartOutcomes: number;
  stats: ArmSummaries;
  /** The same by the candidate's traffic share that served each outcome (the decisions' strata). */
  strata?: Record<string, ArmSummaries>;
  /** Per arm, the reliability of its served scores (RELIABILITY_BINS bins). */
  calibration?: Record<'control' | 'candidate', ReliabilityBin[]>;
  /** The heuristic baseline arm's outcomes, when it has a share. */
  baseline?: Record<string, MeanSummary>;
  /** Outcomes waiting for their window to close, and how far it is closed (see OutcomeSummaries). */
  pending?: PendingOutcomeRecord[];
  closedUntil?: number;
  timeline: TimelinePoint[];
  decisions: ExperimentDecision[];
}

export interface ExperimentsFile {
  experiments: ExperimentRecord[];
  offsets: Record<string, string>;
}

/** Timeline points kept per experiment: older ones are thinned to every other one. */
export const MAX_TIMELINE_POINTS = 400;

export class ExperimentStore {
  private readonly path: string;

  constructor(readonly root: string) {
    this.path = join(root, 'experiments.json');
  }

  async read(): Promise<ExperimentsFile> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as ExperimentsFile;
    } catch (error) {
      if (isCode(error, 'ENOENT')) return { experiments: [], offsets: {} };
      throw error;
    }
  }

  async list(): Promise<ExperimentRecord[]> {
    return (await this.read()).experiments;
  }

  async get(id: string): Promise<ExperimentRecord> {
    const found = (await this.list()).find((e) => e.id === id);
    if (!found) throw new RegistryError('FW_UNKNOWN_EXPERIMENT', `no experiment ${id}`);
    return found;
  }

  /**
   * Changes the file under the lock: `change` gets the current contents to edit in place (and
   * may do more while the lock is held, such as moving aliases); written only if it returns.
   */
  async transact<T>(change: (file: ExperimentsFile) => Promise<T> | T): Promise<T> {
    return withFileLock(this.root, 'experiments.lock', async () => {
      const file = await this.read();
      const result = await change(file);
      await writeAtomically(this.path, JSON.stringify(file));
      return result;
    });
  }

  /**
   * Queues a candidate for an experiment. A trainer's queued candidate that has not started is
   * superseded by the trainer's next one (each is judged against the champion: the newest is
   * the one worth trying); an operator's are kept, in order.
   */
  async queue(input: QueueInput & { candidate: string }): Promise<ExperimentRecord> {
    const [record] = await this.queueGroup({ ...input, candidates: [input.candidate] });
    return record as ExperimentRecord;
  }

  /** Queues several candidates as one group, started together (see ExperimentRecord.group). */
  async queueGroup(input: QueueInput & { candidates: readonly string[] }): Promise<ExperimentRecord[]> {
    return this.transact((file) => {
      for (const candidate of input.candidates) {
        const open = file.experiments.find(
          (e) => e.candidate === candidate && (e.state === 'queued' || ACTIVE_STATES.includes(e.state)),
        );
        if (open)
          throw new RegistryError(
            'FW_EXPERIMENT_CONFLICT',
            `${candidate} is already in experiment ${open.id} (${open.state})`,
          );
      }
      for (const e of file.experiments) {
        if (e.state === 'queued' && e.createdBy === input.actor && input.actor === 'trainer') {
          e.state = 'superseded';
          e.endedAt = input.now;
          e.endReason = `superseded by the trainer's newer candidate ${input.candidates.join(', ')}`;
        }
      }
      const records: ExperimentRecord[] = [];
      for (const candidate of input.candidates) {
        const record = newExperiment(nextId(file), { ...input, candidate });
        if (input.candidates.length > 1) record.group = records[0]?.id ?? record.id;
        if (input.baselineShare) record.baselineShare = input.baselineShare;
        if (input.segments?.length) record.segments = [...input.segments];
        if (input.mode) record.mode = input.mode;
        file.experiments.push(record);
        records.push(record);
      }
      return records;
    });
  }
}

export interface QueueInput {
  config: RampConfig;
  actor: string;
  reason: string;
  now: number;
  baselineShare?: number;
  segments?: readonly string[];
  mode?: 'shadow';
}

/**
 * What a shadow experiment decides on: log loss alone (its purchases are the control's own: it
 * serves no one), one step (it has no share to ramp).
 */
export function shadowConfig(config: RampConfig): RampConfig {
  return { ...config, steps: [0], metrics: { logLoss: METRIC_PRESETS.logLoss.logLoss } };
}

/** A queued experiment added to the file (under its lock): for the canary a shadow earned. */
export function addExperiment(
  file: ExperimentsFile,
  input: QueueInput & { candidate: string },
): ExperimentRecord {
  const record = newExperiment(nextId(file), input);
  if (input.segments?.length) record.segments = [...input.segments];
  file.experiments.push(record);
  return record;
}

/** The experiments of `experiment`'s group (itself alone when it has none), in file order. */
export function groupOf(file: ExperimentsFile, experiment: ExperimentRecord): ExperimentRecord[] {
  const key = experiment.group ?? experiment.id;
  return file.experiments.filter((e) => (e.group ?? e.id) === key);
}

function nextId(file: ExperimentsFile): string {
  const highest = Math.max(0, ...file.experiments.map((e) => Number(e.id.slice(4)) || 0));
  return `exp-${String(highest + 1).padStart(6, '0')}`;
}

export function newExperiment(
  id: string,
  input: { candidate: string; config: RampConfig; actor: string; reason: string; now: number },
): ExperimentRecord {
  const empty = () => Object.fromEntries(Object.keys(input.config.metrics).map((m) => [m, EMPTY_SUMMARY]));
  return {
    id,
    candidate: input.candidate,
    control: null,
    state: 'queued',
    config: input.config,
    createdBy: input.actor,
    createdAt: input.now,
    reason: input.reason,
    startedAt: null,
    endedAt: null,
    endReason: null,
    step: 0,
    stepStartedAt: input.now,
    stepStartOutcomes: 0,
    stats: { control: empty(), candidate: empty() },
    strata: {},
    timeline: [],
    decisions: [],
  };
}

/** When one candidate of a group is promoted, the others end: their control is no longer champion. */
export function endSiblings(
  file: ExperimentsFile,
  promoted: ExperimentRecord,
  now: number,
): ExperimentRecord[] {
  const ended: ExperimentRecord[] = [];
  for (const sibling of groupOf(file, promoted)) {
    if (sibling === promoted || !ACTIVE_STATES.includes(sibling.state)) continue;
    sibling.state = 'aborted';
    sibling.endedAt = now;
    sibling.endReason = `${promoted.candidate} of the same group was promoted (${promoted.id}): the control changed`;
    ended.push(sibling);
  }
  return ended;
}

export const EMPTY_SUMMARY: MeanSummary = { n: 0, mean: 0, m2: 0 };

/** The timeline with one more point, thinned to stay within MAX_TIMELINE_POINTS. */
export function appendTimeline(timeline: TimelinePoint[], point: TimelinePoint): TimelinePoint[] {
  const next = [...timeline, point];
  if (next.length <= MAX_TIMELINE_POINTS) return next;
  // Keep the newest half whole; every other point of the older half.
  const half = Math.floor(next.length / 2);
  return [...next.slice(0, half).filter((_, i) => i % 2 === 0), ...next.slice(half)];
}
