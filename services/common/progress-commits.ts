// Offsets committed with the newest event time taken as their metadata (stream-progress.ts), at
// most once per interval: downstream reads how far a stage has come from them. KafkaJS's own
// commits would drop the metadata, so a consumer with progress commits here.
import type { Consumer } from 'kafkajs';
import type { Logger } from './logger.js';
import { progressMetadata } from './stream-progress.js';

interface PendingCommit {
  topic: string;
  partition: number;
  offset: string;
}

export class ProgressCommits {
  /** Per `topic:partition`: the newest event time taken, and the offset to commit with it. */
  private readonly progressTimes = new Map<string, number>();
  private readonly pending = new Map<string, PendingCommit>();
  private lastCommit = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  /** A commit still pending for a partition now another member's would overwrite its progress. */
  assigned(assignment: Record<string, number[] | undefined>): void {
    for (const [key, c] of this.pending)
      if (!(assignment[c.topic] ?? []).includes(c.partition)) this.pending.delete(key);
  }

  note(topic: string, partition: number, offset: string, maxEventTime: number | undefined): Promise<void> {
    const key = `${topic}:${partition}`;
    if (maxEventTime !== undefined && maxEventTime > (this.progressTimes.get(key) ?? -Infinity))
      this.progressTimes.set(key, maxEventTime);
    this.pending.set(key, { topic, partition, offset });
    if (this.stopping || Date.now() - this.lastCommit >= this.intervalMs) return this.flush();
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs);
    return Promise.resolve();
  }

  /**
   * While stopping, a batch commits its progress as it ends; what is pending commits now, while
   * this member is still in the group.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.flush();
  }

  private async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const commits = [...this.pending.entries()];
    this.pending.clear();
    this.lastCommit = Date.now();
    try {
      await this.consumer.commitOffsets(
        commits.map(([key, c]) => ({
          ...c,
          metadata: progressMetadata(this.progressTimes.get(key) ?? -Infinity),
        })),
      );
    } catch (error) {
      // A rebalance moved the partition (its next owner resumes from the last commit: at least
      // once, as always), or Kafka is away: put them back for the next flush unless newer came.
      for (const [key, c] of commits) if (!this.pending.has(key)) this.pending.set(key, c);
      this.log.warn({ err: error }, 'committing offsets with progress failed; trying again');
      // Tried again even if no batch comes: downstream waits for this progress.
      if (!this.stopping) this.timer ??= setTimeout(() => void this.flush(), Math.max(100, this.intervalMs));
    }
  }
}
