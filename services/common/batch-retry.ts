// A batch that fails with a service failure (not the records' fault) is tried again with
// backoff until it goes through or its partition moves; meanwhile the partition is reported as
// failing, which keeps /readyz at 503. Shared by every consumer loop (consumer.ts, the joiner
// and its repartitioner) so their retries and reports read the same.
import { errorCode, errorMessage } from './errors.js';

/** A partition whose batch keeps failing with a service failure. */
export interface FailingPartition {
  topic: string;
  partition: number;
  code: string;
  message: string;
  since: number;
  attempts: number;
}

export function defaultRetryDelayMs(attempt: number, maxMs = 30_000): number {
  const base = Math.min(100 * 2 ** Math.min(attempt, 20), maxMs);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** The default backoff, capped at `maxMs` (FW_RETRY_MAX_BACKOFF_MS). */
export const backoffUpTo =
  (maxMs?: number) =>
  (attempt: number): number =>
    defaultRetryDelayMs(attempt, maxMs);

/**
 * Runs `attempt` until it succeeds. After each failure: `onFailure`, then a wait of `delayMs(n)`
 * during which `heartbeat` is called at least every second. Gives up (returns false) when
 * `stillOwned()` turns false (a rebalance took the partition, or the consumer stops) or a heartbeat
 * fails: the batch is then fetched again by whoever owns the partition.
 */
export async function retryUntilDone(
  attempt: () => Promise<void>,
  options: {
    stillOwned: () => boolean;
    heartbeat: () => Promise<void>;
    delayMs: (attempt: number) => number;
    onFailure: (error: unknown, attempt: number) => void;
  },
): Promise<boolean> {
  for (let n = 0; ; n++) {
    try {
      await attempt();
      return true;
    } catch (error) {
      if (!options.stillOwned()) return false;
      options.onFailure(error, n);
    }
    const until = Date.now() + options.delayMs(n);
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, until - Date.now())));
      if (!options.stillOwned()) return false;
      try {
        await options.heartbeat();
      } catch {
        return false;
      }
    }
  }
}

/** The partitions failing now, each since its first failure; `onChange` gets the new count. */
export class FailingPartitions {
  private readonly failing = new Map<string, FailingPartition>();

  constructor(
    private readonly onChange: (count: number) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records the `attempt`th failure (from 0) of a batch of `topic`/`partition`. */
  failed(topic: string, partition: number, error: unknown, attempt: number): FailingPartition {
    const key = `${topic}:${partition}`;
    const entry = {
      topic,
      partition,
      code: errorCode(error),
      message: errorMessage(error),
      since: this.failing.get(key)?.since ?? this.now(),
      attempts: attempt + 1,
    };
    this.failing.set(key, entry);
    this.onChange(this.failing.size);
    return entry;
  }

  recovered(topic: string, partition: number): void {
    if (this.failing.delete(`${topic}:${partition}`)) this.onChange(this.failing.size);
  }

  list(): FailingPartition[] {
    return [...this.failing.values()];
  }
}

/** Why a stage is not ready while batches fail, for /readyz. */
export function failingReason(first: FailingPartition): string {
  return `batches are failing (${first.code}: ${first.message}); retried with backoff, nothing dead-lettered`;
}
