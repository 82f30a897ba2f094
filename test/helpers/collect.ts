// Collect decoded records from a topic as they arrive (event-driven, no polling).
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';

export interface Collected<T> {
  value: T;
  partition: number;
  offset: string;
  /** Record headers, as text. */
  headers: Record<string, string>;
}

export class TopicCollector<T> {
  readonly records: Collected<T>[] = [];
  private consumer: Consumer | undefined;
  private waiters: { done: (records: Collected<T>[]) => boolean; resolve: () => void }[] = [];

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly decode: (bytes: Buffer | null) => Promise<T>,
  ) {}

  async start(): Promise<this> {
    this.consumer = this.kafka.consumer({ groupId: `test.collector.${randomUUID()}`, maxWaitTimeInMs: 100 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          this.records.push({
            value: await this.decode(m.value),
            partition: batch.partition,
            offset: m.offset,
            headers: Object.fromEntries(
              Object.entries(m.headers ?? {}).map(([name, value]) => [name, String(value)]),
            ),
          });
        }
        this.waiters = this.waiters.filter((w) => {
          if (!w.done(this.records)) return true;
          w.resolve();
          return false;
        });
      },
    });
    return this;
  }

  /** Resolves once at least `count` records arrived; rejects after `timeoutMs`. */
  atLeast(count: number, timeoutMs = 60_000): Promise<void> {
    return this.until((records) => records.length >= count, `${count} records`, timeoutMs);
  }

  /** Resolves once `done` holds for the records collected; rejects after `timeoutMs`. */
  until(done: (records: Collected<T>[]) => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (done(this.records)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`${this.topic}: no ${what} after ${timeoutMs} ms (${this.records.length} records)`),
          ),
        timeoutMs,
      );
      this.waiters.push({
        done,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}
