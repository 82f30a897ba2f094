// Every Redis key of a labeling queue, built in one place.
export class QueueKeys {
  readonly prefix: string;

  constructor(readonly queue: string) {
    this.prefix = `fw:labeling:${queue}:`;
  }

  /** Tasks waiting for a labeler: member task id, score = -priority (highest first). */
  get ready(): string {
    return `${this.prefix}ready`;
  }

  /** Active leases: member "taskId|labelerId", score = expiry (ms). */
  get leases(): string {
    return `${this.prefix}leases`;
  }

  /** Completed task ids, newest first (capped), for the admin export. */
  get completed(): string {
    return `${this.prefix}completed`;
  }

  /** Hour start (ms) → labels recorded in it (the console's labels per hour). */
  get hourly(): string {
    return `${this.prefix}hourly`;
  }

  /** Per labeler: labeled:<id>, judged:<id> (on multi-label tasks), agreed:<id> (with the majority). */
  get labelers(): string {
    return `${this.prefix}labelers`;
  }

  /** Counters: added, duplicates, completed, expired, skipped, unclear, leaseTimeouts. */
  get stats(): string {
    return `${this.prefix}stats`;
  }

  /** Task hash: payload, priority, required, createdAt, labels, status. */
  task(id: string): string {
    return `${this.prefix}task:${id}`;
  }

  /** Labels of a task: labeler id → label. */
  labels(id: string): string {
    return `${this.prefix}labels:${id}`;
  }

  /** Labelers who skipped a task (it is not offered to them again). */
  skips(id: string): string {
    return `${this.prefix}skips:${id}`;
  }

  /** De-duplication marker (one task per user session or item, for a while). */
  dedupe(key: string): string {
    return `${this.prefix}dedupe:${key}`;
  }
}
