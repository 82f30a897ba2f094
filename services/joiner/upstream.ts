// Reads the upstream stages' progress from Kafka for progress.ts: each stage's committed offsets
// with their progress metadata, then the end offsets of its source topic, then those of the topic
// it writes (in that order: what is committed is acknowledged, so it lies below the ends read
// after). End offsets are high watermarks (the admin given is common/high-watermarks.ts's). One
// admin client polls every input; a failed poll is logged and retried, and only
// holds the join back.
import type { Admin } from 'kafkajs';
import type { Logger } from '../common/logger.js';
import { parseProgress } from '../common/stream-progress.js';
import { UpstreamProgress, type UpstreamSample } from './progress.js';

export interface Upstream {
  /** What the joiner reads (fw.predictions, fw.purchases.repartitioned). */
  derived: string;
  /** The stage's group and the topic it reads; null: progress from the derived topic's own records. */
  stage: { groupId: string; source: string } | null;
}

export class UpstreamPoller {
  readonly progress: UpstreamProgress;
  /** End offsets of the derived topic at the last poll (stream progress uses them). */
  derivedEnds: ReadonlyMap<number, bigint> = new Map();
  private timer: NodeJS.Timeout | undefined;
  private failingSince: number | null = null;
  private lastWarned = 0;
  private polling: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly admin: Admin,
    readonly upstream: Upstream,
    timing: { idleMs: number; liveLagMs: number },
    private readonly log: Logger,
  ) {
    this.progress = new UpstreamProgress(timing.idleMs, timing.liveLagMs);
  }

  /** Since when polls have failed (null: the last one worked). */
  get failing(): number | null {
    return this.failingSince;
  }

  start(intervalMs: number): void {
    const loop = () => {
      if (this.stopped) return;
      this.polling = this.poll().finally(() => {
        this.polling = null;
        if (!this.stopped) this.timer = setTimeout(loop, intervalMs);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
  }

  private async poll(): Promise<void> {
    try {
      const sample = await this.read();
      if (sample.sources.length > 0 || this.upstream.stage === null) this.progress.add(sample);
      this.derivedEnds = sample.derivedEnds;
      this.failingSince = null;
    } catch (error) {
      this.failingSince ??= Date.now();
      if (Date.now() - this.lastWarned > 30_000) {
        this.lastWarned = Date.now();
        this.log.warn(
          { err: error, derived: this.upstream.derived, stage: this.upstream.stage },
          'reading the upstream progress failed; the join waits until it works again',
        );
      }
    }
  }

  private async read(): Promise<UpstreamSample> {
    const at = Date.now();
    const sources: UpstreamSample['sources'] = [];
    const stage = this.upstream.stage;
    if (stage) {
      const [committed] = await this.admin.fetchOffsets({ groupId: stage.groupId, topics: [stage.source] });
      const ends = await this.admin.fetchTopicOffsets(stage.source);
      for (const { partition, high } of ends) {
        const own = committed?.partitions.find((p) => p.partition === partition);
        const offset = own && Number(own.offset) >= 0 ? BigInt(own.offset) : null;
        sources.push({ partition, committed: offset, time: parseProgress(own?.metadata), end: BigInt(high) });
      }
    }
    const derived = await this.admin.fetchTopicOffsets(this.upstream.derived);
    return { at, sources, derivedEnds: new Map(derived.map((p) => [p.partition, BigInt(p.high)])) };
  }
}
