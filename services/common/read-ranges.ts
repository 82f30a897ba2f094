// Records of given offset ranges, decoded and validated as a live consumer would (classifyMessage),
// read committed: the history a version was trained on, for retraining and backfills. A fresh
// group seeks each partition to its range's start; a partition is done when its range's last
// offset arrives. A range may end in transaction markers, which are never delivered (the end of
// a partition of a transactional topic is one), so a partition that stays silent for
// `quietMs` after its last record is also taken as done.
import { randomUUID } from 'node:crypto';
import type { Batch, Consumer, Kafka } from 'kafkajs';
import { FlywheelError } from './errors.js';
import { classifyMessage } from './classify.js';
import type { Codecs, RecordKind, RecordTypes } from './contracts.js';
import type { Logger } from './logger.js';
import { Progress } from './progress.js';
import type { Runtime } from './runtime.js';

/** A span of one partition's offsets: the history a version was trained on is a list of them. */
export interface OffsetRange {
  topic: string;
  partition: number;
  /** First offset used (inclusive). */
  from: string;
  /** Offset after the last one used (exclusive). */
  to: string;
}

export interface RangeRecord {
  offset: bigint;
  kind: RecordKind;
  /** null: the message does not decode or validate (a live consumer dead-letters it). */
  value: RecordTypes[RecordKind] | null;
  timestamp: number;
}

/** Where history is read from, and with which limits (those of the live consumers). */
export interface HistorySource {
  kafka: Kafka;
  codecs: Codecs;
  limits: { maxMessageBytes: number; maxClockSkewMs: number };
  logger: Logger;
}

/** A service's history source: its Kafka, codecs and consumer limits. */
export function historySource(runtime: Runtime): HistorySource {
  return {
    kafka: runtime.kafka,
    codecs: runtime.codecs,
    limits: {
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
    },
    logger: runtime.logger,
  };
}

export interface ReadRangesOptions extends HistorySource {
  /** Record kind of each topic. */
  kinds: Record<string, RecordKind>;
  quietMs?: number;
  timeoutMs?: number;
  label?: string;
}

/** The records of each range (same index as `ranges`), in offset order. */
export async function readRanges(
  ranges: readonly OffsetRange[],
  options: ReadRangesOptions,
): Promise<RangeRecord[][]> {
  const reader = new RangeReader(ranges, options);
  if (reader.done) return reader.records();
  const consumer = options.kafka.consumer({
    groupId: `flywheel.history.${randomUUID()}`,
    maxWaitTimeInMs: 200,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  const topics = [...new Set(ranges.map((r) => r.topic))];
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      for (const [topic, partitions] of Object.entries(payload.memberAssignment))
        for (const partition of partitions ?? []) {
          const from = reader.startOf(topic, partition);
          if (from !== undefined) consumer.seek({ topic, partition, offset: from });
        }
    });
    await reader.readWith(consumer);
  } finally {
    await consumer.disconnect();
  }
  return reader.records();
}

/** The ranges' records as they arrive, and which ranges are still open. */
class RangeReader {
  private readonly out: RangeRecord[][];
  private readonly byPartition = new Map<string, number>();
  private readonly open: Set<number>;
  private readonly lastHeard = new Map<number, number>();
  private readonly progress: Progress;

  constructor(
    private readonly ranges: readonly OffsetRange[],
    private readonly options: ReadRangesOptions,
  ) {
    this.out = ranges.map(() => []);
    ranges.forEach((r, i) => this.byPartition.set(`${r.topic}:${r.partition}`, i));
    this.open = new Set(
      ranges.map((_, i) => i).filter((i) => BigInt(ranges[i]!.from) < BigInt(ranges[i]!.to)),
    );
    const total = ranges.reduce((n, r) => n + Math.max(0, Number(BigInt(r.to) - BigInt(r.from))), 0);
    this.progress = new Progress({ label: options.label ?? 'read history', total, logger: options.logger });
  }

  get done(): boolean {
    return this.open.size === 0;
  }

  startOf(topic: string, partition: number): string | undefined {
    const i = this.byPartition.get(`${topic}:${partition}`);
    return i === undefined ? undefined : this.ranges[i]!.from;
  }

  /** Runs the consumer until every range is read, silent for quietMs, or the time limit passes. */
  readWith(consumer: Consumer): Promise<void> {
    this.progress.start();
    const now = Date.now();
    for (const i of this.open) this.lastHeard.set(i, now);
    return new Promise<void>((resolve, reject) => {
      const stop = (error?: Error) => {
        clearTimeout(timeout);
        clearInterval(quiet);
        if (error) reject(error);
        else resolve();
      };
      this.finished = () => stop();
      const timeout = setTimeout(() => {
        const left = [...this.open].map((i) => `${this.ranges[i]?.topic}:${this.ranges[i]?.partition}`);
        stop(
          new FlywheelError(
            'FW_TIMED_OUT',
            `reading history timed out; ranges not finished: ${left.join(', ')}`,
          ),
        );
      }, this.options.timeoutMs ?? 600_000);
      const quiet = setInterval(() => {
        const limit = Date.now() - (this.options.quietMs ?? 5000);
        for (const i of [...this.open]) if ((this.lastHeard.get(i) ?? 0) < limit) this.finish(i);
      }, 500);
      consumer
        .run({ eachBatch: ({ batch }) => this.take(batch) })
        .catch((error: unknown) => stop(error as Error));
    }).finally(() => this.progress.stop());
  }

  private finished: () => void = () => undefined;

  private finish(i: number): void {
    this.open.delete(i);
    if (this.open.size === 0) this.finished();
  }

  private async take(batch: Batch): Promise<void> {
    const i = this.byPartition.get(`${batch.topic}:${batch.partition}`);
    if (i === undefined || !this.open.has(i)) return;
    const range = this.ranges[i]!;
    const from = BigInt(range.from);
    const to = BigInt(range.to);
    const kind = this.options.kinds[batch.topic] as RecordKind;
    const limits = { ...this.options.limits, now: Date.now() };
    let inRange = 0;
    for (const message of batch.messages) {
      const offset = BigInt(message.offset);
      if (offset < from || offset >= to) continue;
      inRange++;
      const result = await classifyMessage(message, kind, this.options.codecs, limits);
      this.out[i]!.push({
        offset,
        kind,
        value: result.ok ? result.value : null,
        timestamp: Number(message.timestamp),
      });
    }
    this.progress.add(inRange);
    this.lastHeard.set(i, Date.now());
    if (BigInt(batch.lastOffset()) + 1n >= to) this.finish(i);
  }

  /** A fetch can deliver an offset twice (after a rebalance); keep one of each, in order. */
  records(): RangeRecord[][] {
    return this.out.map((records) => {
      records.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
      return records.filter((r, k) => k === 0 || r.offset !== records[k - 1]?.offset);
    });
  }
}
