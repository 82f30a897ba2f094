// The order in which the online trainer read its inputs, kept so a version can be trained again
// exactly: FTRL depends on example order, and Kafka gives no order across partitions. Reading is
// contiguous per partition (a restart resumes at the checkpoint's offset), so the order is a list
// of runs "partition i up to offset t", each starting where that partition's previous run ended.
// Encoded as "i@t i@t ..." over an index of `topic:partition` keys: a few bytes per fetched batch.
import { FlywheelError } from '../common/errors.js';
import type { OffsetRange } from '../registry/store.js';

export interface ReadOrderState {
  /** `topic:partition` of each index. */
  keys: string[];
  /** First offset read of each key. */
  starts: string[];
  /** Runs, "index@end" with end exclusive. */
  runs: string;
}

/** A point in the order (see cut()). */
export interface ReadOrderCut {
  runs: number;
  ends: string[];
}

export class ReadOrder {
  private readonly keys: string[];
  private readonly starts: string[];
  private readonly ends: string[];
  private readonly index = new Map<string, number>();
  private readonly runs: string[];
  private lastKey = -1;

  constructor(state?: ReadOrderState) {
    this.keys = [...(state?.keys ?? [])];
    this.starts = [...(state?.starts ?? [])];
    this.ends = [...this.starts];
    this.runs = state?.runs ? state.runs.split(' ') : [];
    this.keys.forEach((key, i) => this.index.set(key, i));
    for (const run of this.runs) {
      const [i, end] = parseRun(run);
      this.ends[i] = end;
      this.lastKey = i;
    }
  }

  /** One record read (offsets of a key only go up). */
  note(key: string, offset: string): void {
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.keys.length;
      this.keys.push(key);
      this.starts.push(offset);
      this.ends.push(offset);
      this.index.set(key, i);
    }
    const end = String(BigInt(offset) + 1n);
    this.ends[i] = end;
    if (this.lastKey === i) this.runs[this.runs.length - 1] = `${i}@${end}`;
    else this.runs.push(`${i}@${end}`);
    this.lastKey = i;
  }

  /** Ends the current run (the next record starts a new one) and marks this point. */
  cut(): ReadOrderCut {
    this.lastKey = -1;
    return { runs: this.runs.length, ends: [...this.ends] };
  }

  /** Forgets what was read before `cut`: the order now starts there. */
  rebase(cut: ReadOrderCut): void {
    this.runs.splice(0, cut.runs);
    cut.ends.forEach((end, i) => (this.starts[i] = end));
    if (this.runs.length === 0) this.lastKey = -1;
  }

  get runCount(): number {
    return this.runs.length;
  }

  state(): ReadOrderState {
    return { keys: [...this.keys], starts: [...this.starts], runs: this.runs.join(' ') };
  }

  /** What was read, per partition, in the index order the runs refer to. */
  ranges(): OffsetRange[] {
    return this.keys.map((key, i) => {
      const at = key.lastIndexOf(':');
      return {
        topic: key.slice(0, at),
        partition: Number(key.slice(at + 1)),
        from: this.starts[i] as string,
        to: this.ends[i] as string,
      };
    });
  }
}

function parseRun(run: string): [number, string] {
  const at = run.indexOf('@');
  const i = Number(run.slice(0, at));
  const end = run.slice(at + 1);
  if (at < 1 || !Number.isInteger(i) || !/^\d+$/.test(end))
    throw new FlywheelError('FW_CHECKPOINT_CORRUPT', `bad read-order run '${run}'`);
  return [i, end];
}

/** The runs of an encoded order as [range index, start, end) triples, in reading order. */
export function runsOf(
  ranges: readonly OffsetRange[],
  runs: string,
): { range: number; from: bigint; to: bigint }[] {
  const position = ranges.map((r) => BigInt(r.from));
  const out: { range: number; from: bigint; to: bigint }[] = [];
  for (const run of runs ? runs.split(' ') : []) {
    const [i, end] = parseRun(run);
    const from = position[i];
    if (from === undefined)
      throw new FlywheelError(
        'FW_CHECKPOINT_CORRUPT',
        `read-order run '${run}' names range ${i} of ${ranges.length}`,
      );
    const to = BigInt(end);
    out.push({ range: i, from, to });
    position[i] = to;
  }
  return out;
}
