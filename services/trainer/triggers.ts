// When the trainer proposes a candidate, checkpoints, and publishes the serving baseline: pure
// policies fed what was learned, the drift alarms and the clock, answering what to do now. The
// service (service.ts) only carries out what they answer.

/** What made the trainer propose a candidate. */
export type CandidateTrigger = 'count' | 'interval' | 'drift' | 'operator' | 'alarm';

export interface CandidatePolicyConfig {
  /** Propose after this many examples learned (0: not by count). */
  every: number;
  /** ... or after this long without a candidate, if anything was learned (0: not by time). */
  intervalMs: number;
}

/** A drift alarm first, then the count, then the interval. */
export class CandidatePolicy {
  private sinceCandidate = 0;
  private lastCandidateAt: number;
  private pendingDrift = false;

  constructor(
    private readonly config: CandidatePolicyConfig,
    now: number,
  ) {
    this.lastCandidateAt = now;
  }

  learned(count: number): void {
    this.sinceCandidate += count;
  }

  driftAlarm(): void {
    this.pendingDrift = true;
  }

  /** The trigger due now, if any (a drift alarm is answered once). */
  due(now: number): CandidateTrigger | null {
    if (this.pendingDrift) {
      this.pendingDrift = false;
      return 'drift';
    }
    const { every, intervalMs } = this.config;
    if (every > 0 && this.sinceCandidate >= every) return 'count';
    if (intervalMs > 0 && this.sinceCandidate > 0 && now - this.lastCandidateAt >= intervalMs)
      return 'interval';
    return null;
  }

  /** A candidate was proposed (by any trigger): the count and the interval start over. */
  proposed(now: number): void {
    this.sinceCandidate = 0;
    this.lastCandidateAt = now;
  }
}

/** Checkpoint after `every` examples learned or `intervalMs` since the last one. */
export class CheckpointPolicy {
  private sinceCheckpoint = 0;
  private lastAt: number;
  private dirty = false;

  constructor(
    private readonly config: { every: number; intervalMs: number },
    now: number,
  ) {
    this.lastAt = now;
  }

  /** Records were taken in (`learned` of them learned from). */
  taken(learned: number): void {
    this.sinceCheckpoint += learned;
    this.dirty = true;
  }

  /** Something changed the state without learning (a candidate's lineage). */
  touched(): void {
    this.dirty = true;
  }

  /** Due after a batch: by count or by time. */
  dueAfterBatch(now: number): boolean {
    return this.sinceCheckpoint >= this.config.every || now - this.lastAt >= this.config.intervalMs;
  }

  /** Due on a quiet stream's tick: anything new, and the interval passed. */
  dueOnTick(now: number): boolean {
    return this.dirty && now - this.lastAt >= this.config.intervalMs;
  }

  written(now: number): void {
    this.sinceCheckpoint = 0;
    this.dirty = false;
    this.lastAt = now;
  }
}

/** Who serves as champion, as far as the baseline's publishing is concerned. */
export type BaselineState =
  /** FW_TRAINER_BASELINE_FIRST=0: never published. */
  | 'off'
  /** No champion yet (the scorer serves its fixed prior). */
  | 'waiting'
  /** The baseline is champion; it is published again as it learns. */
  | 'serving'
  /** A learned model is champion. */
  | 'over';

/**
 * - examples: as many examples taken in as the schedule asked for (the first count, then each
 *   doubling);
 * - refused: a learned candidate was refused;
 * - learned-champion: a learned model took the champion alias (a candidate, or one found there);
 * - champion-failing: the learned champion does worse than a constant and the baseline passed
 *   the gate in its place.
 */
export type BaselineEvent = 'examples' | 'refused' | 'learned-champion' | 'champion-failing';

/** The transitions, and whether the baseline is published on each; any other event changes nothing. */
export const BASELINE_TRANSITIONS: Record<
  BaselineState,
  Partial<Record<BaselineEvent, { to: BaselineState; publish: boolean }>>
> = {
  off: {},
  waiting: {
    examples: { to: 'serving', publish: true },
    refused: { to: 'serving', publish: true },
    'learned-champion': { to: 'over', publish: false },
    'champion-failing': { to: 'serving', publish: true },
  },
  serving: {
    examples: { to: 'serving', publish: true },
    refused: { to: 'serving', publish: true },
    'learned-champion': { to: 'over', publish: false },
    // A learned champion an operator promoted meanwhile can fail too.
    'champion-failing': { to: 'serving', publish: true },
  },
  over: {
    'champion-failing': { to: 'serving', publish: true },
  },
};

/**
 * While no learned model is champion, the baseline is published after `first` examples taken in,
 * then each time they double, and after each refused candidate; once a learned model is champion
 * it stops, until that champion fails. `first` = 0 never publishes.
 */
export class BaselineSchedule {
  private current: BaselineState;
  private nextAt: number;

  constructor(first: number) {
    this.current = first > 0 ? 'waiting' : 'off';
    this.nextAt = first;
  }

  get state(): BaselineState {
    return this.current;
  }

  /** Whether the examples taken in call for a publication now. */
  due(taken: number): boolean {
    return (this.current === 'waiting' || this.current === 'serving') && taken >= this.nextAt;
  }

  /** Moves by the table; true when the baseline is to be published now. */
  on(event: BaselineEvent): boolean {
    const step = BASELINE_TRANSITIONS[this.current][event];
    if (!step) return false;
    this.current = step.to;
    return step.publish;
  }

  /** A publication took the examples taken in so far: the next is due at twice as many. */
  published(taken: number): void {
    this.nextAt = 2 * taken;
  }
}
