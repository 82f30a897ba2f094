// Shared set-up for tests against the real local stack: a runtime with a quiet logger, and
// topics of their own per test (random names), deleted afterwards.
import { randomUUID } from 'node:crypto';
import type { Admin } from 'kafkajs';
import { waitForKafka } from '../../services/common/kafka.js';
import { ensureTopics } from '../../services/common/provision.js';
import { createRuntime, type Runtime } from '../../services/common/runtime.js';
import type { TopicName, TopicSpec } from '../../services/common/topics.js';

export function testRuntime(service = 'test'): Runtime {
  return createRuntime(service, { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent' });
}

export interface TestTopics<R extends string = string> {
  names: Record<R, string>;
  admin: Admin;
  cleanup(): Promise<void>;
}

/** Create fresh topics (one per role) with the given partition count; `cleanup` deletes them. */
export async function createTestTopics<R extends string>(
  runtime: Runtime,
  roles: R[],
  partitions = 3,
): Promise<TestTopics<R>> {
  const admin = await waitForKafka(runtime.kafka, runtime.logger, 30000);
  const suffix = randomUUID().slice(0, 8);
  const names = Object.fromEntries(roles.map((role) => [role, `test.${role}.${suffix}`])) as Record<
    R,
    string
  >;
  const specs: TopicSpec[] = Object.values<string>(names).map((name) => ({
    name: name as TopicName,
    partitions,
    configs: {},
    description: 'test topic',
  }));
  await ensureTopics(admin, runtime.logger, { partitions, replicationFactor: 1, specs });
  return {
    names,
    admin,
    async cleanup() {
      await admin.deleteTopics({ topics: Object.values<string>(names) }).catch(() => undefined);
      await admin.disconnect();
    },
  };
}

/** A promise that resolves once `target` units were counted; rejects after `timeoutMs`. */
export class Countdown {
  readonly done: Promise<void>;
  private count = 0;
  private resolve!: () => void;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly target: number,
    what: string,
    timeoutMs = 60000,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.timer = setTimeout(
        () =>
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${this.count}/${target}`)),
        timeoutMs,
      );
    });
    if (target <= 0) this.finish();
  }

  get value(): number {
    return this.count;
  }

  add(units = 1): void {
    this.count += units;
    if (this.count >= this.target) this.finish();
  }

  private finish(): void {
    clearTimeout(this.timer);
    this.resolve();
  }
}
