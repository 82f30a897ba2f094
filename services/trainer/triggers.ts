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

/**
 * While no learned model is champion, the baseline is published after `first` examples taken in,
 * then each time they double (and after each refused candidate, which the service asks for).
 * `first` = 0 never publishes; once a learned model is champion it stops.
 */
export class BaselineSchedule {
  private nextAt: number;

  constructor(first: number) {
    this.nextAt = first;
  }

  /** Whether the baseline still serves in place of a learned model (publishing goes on). */
  get active(): boolean {
    return this.nextAt > 0;
  }

  due(taken: number): boolean {
    return this.nextAt > 0 && taken >= this.nextAt;
  }

  published(taken: number): void {
    this.nextAt = 2 * taken;
  }

  /** A learned model is champion: the baseline's serving is over. */
  over(): void {
    this.nextAt = 0;
  }
}
