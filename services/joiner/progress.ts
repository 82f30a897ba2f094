// How far each join input is complete, from the stage that wrote it (pure, fed by samples the
// service takes from Kafka). An upstream stage (the scorer on the click topic, the repartitioner
// on the purchase topic) commits, per source partition, its offset and the newest event time it
// took (stream-progress.ts), only after its outputs are acknowledged. So once the joiner has read
// its input partition up to that partition's high watermark read *after* those commits (not the
// last stable offset: records committed behind another open transaction lie past it; see
// common/high-watermarks.ts), every output of the records before them is in; and a record the
// stage has not taken yet has an event time no older than that partition's newest time minus the
// allowed lateness, unless it is late within its own source partition. The input is complete up to the least such time over the source
// partitions that are not idle (caught up with their topic for `idleMs`, or never written to: as
// in Flink, an idle source does not hold the others back) while the stream is live; in a replay
// of history every written source holds, since an idle one's next record may be older than the
// others' progress. When every source is idle, up to the least advanced one that holds anything.
// A lagging or stopped stage holds the join back instead of letting the other input run ahead.
import type { InputProgress } from './join.js';

/** One reading of an upstream stage and of the topic it writes. */
export interface UpstreamSample {
  /** Wall clock when the committed offsets were read (before the end offsets). */
  at: number;
  /** Per source partition: the stage's committed offset and progress, and the partition's end. */
  sources: { partition: number; committed: bigint | null; time: number; end: bigint }[];
  /** End offset of each partition of the topic the stage writes, read after the commits. */
  derivedEnds: ReadonlyMap<number, bigint>;
}

interface Reading {
  derivedEnds: ReadonlyMap<number, bigint>;
  progress: InputProgress;
}

export class UpstreamProgress {
  /** Newest progress seen per source partition (a new owner may commit less for a while). */
  private readonly times = new Map<number, number>();
  /** Since when each source partition has been caught up (absent: it is not). */
  private readonly caughtUpSince = new Map<number, number>();
  /** Readings, oldest first; only the newest one a partition has read past is kept per use. */
  private readings: Reading[] = [];

  constructor(
    private readonly idleMs: number,
    /** Progress within this of the wall clock is live; only then do idle sources stop holding. */
    private readonly liveLagMs: number,
  ) {}

  add(sample: UpstreamSample): void {
    const active: number[] = [];
    const written: number[] = [];
    const holding: number[] = [];
    for (const source of sample.sources) {
      const time = Math.max(this.times.get(source.partition) ?? -Infinity, source.time);
      this.times.set(source.partition, time);
      if (source.end > 0n) written.push(time);
      // Nothing committed on an empty partition: nothing to wait for either.
      const caughtUp = (source.committed ?? 0n) >= source.end;
      if (!caughtUp) this.caughtUpSince.delete(source.partition);
      else if (!this.caughtUpSince.has(source.partition)) this.caughtUpSince.set(source.partition, sample.at);
      // A partition never written to is idle at once; one that was waits `idleMs` in step.
      const idle =
        source.end === 0n ||
        (caughtUp && sample.at - (this.caughtUpSince.get(source.partition) as number) >= this.idleMs);
      if (!idle) active.push(time);
      // In a replay an idle source's next records may be older than another's progress.
      if (!idle || source.end > 0n) holding.push(time);
    }
    const live = written.length > 0 && sample.at - Math.max(...written) <= this.liveLagMs;
    // All idle: complete up to the least advanced source that holds anything (a producer that
    // paused, or a replay that ended, says nothing about the partitions it had not reached).
    const progress: InputProgress =
      active.length > 0
        ? { time: Math.min(...(live ? active : holding)), idle: false }
        : { time: written.length > 0 ? Math.min(...written) : -Infinity, idle: true };
    this.readings.push({ derivedEnds: sample.derivedEnds, progress });
    // Bounded, and spaced out with age: a partition far behind (a backlog) still finds a reading
    // it has read past, a little older than it could be.
    if (this.readings.length > 64) {
      const old = this.readings.slice(0, 32).filter((_, i) => i % 2 === 0);
      this.readings = [...old, ...this.readings.slice(32)];
    }
  }

  /**
   * The progress of input partition `partition` once read up to `fetched` (the next offset it
   * will read): the newest reading whose end offset it has reached (idle only if the newest
   * reading is idle and read to its end); null while it reached none.
   */
  progressFor(partition: number, fetched: bigint): InputProgress | null {
    const latest = this.readings.at(-1);
    for (let i = this.readings.length - 1; i >= 0; i--) {
      const reading = this.readings[i] as Reading;
      const end = reading.derivedEnds.get(partition);
      if (end === undefined || fetched < end) continue;
      // How far it is complete is the reading's. Idle only when the stage is idle now and this
      // partition has read all it wrote: an idle input stops holding the other back, so one with
      // records still unread would let the watermark pass them (they would arrive late).
      const latestEnd = (latest as Reading).derivedEnds.get(partition);
      const readAll = latestEnd !== undefined && fetched >= latestEnd;
      return { time: reading.progress.time, idle: readAll && (latest as Reading).progress.idle };
    }
    return null;
  }

  /** The newest reading's progress over all sources (for metrics). */
  get latest(): InputProgress | null {
    return this.readings.at(-1)?.progress ?? null;
  }
}
