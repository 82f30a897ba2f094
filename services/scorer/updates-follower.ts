// Follows the compacted fw.models.updates topic from its beginning with a group of its own (each
// scorer must see every update), applying routing records to the model manager. At start-up only
// the newest routing record present is applied (compaction keeps one per key eventually, but the
// active segment can hold hundreds, and each would load its models), or, when its models cannot
// be loaded, the newest older one that can: what applying each in turn would have left serving.
// `caughtUp` resolves then. After that, every record is applied as it arrives.
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Codecs } from '../common/contracts.js';
import type { Logger } from '../common/logger.js';
import { TOPICS } from '../common/topics.js';
import { ROUTING_KEY } from '../registry/publisher.js';
import type { ModelManager } from './model-manager.js';

export class ModelUpdatesFollower {
  readonly caughtUp: Promise<void>;
  private markCaughtUp!: () => void;
  private consumer: Consumer | undefined;
  private readonly groupId = `flywheel.scorer.models.${randomUUID()}`;

  constructor(
    private readonly kafka: Kafka,
    private readonly codecs: Codecs,
    private readonly manager: Pick<ModelManager, 'apply'>,
    private readonly logger: Logger,
    private readonly topic: string = TOPICS.modelUpdates,
  ) {
    this.caughtUp = new Promise((resolve) => (this.markCaughtUp = resolve));
  }

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = new Map(
      (await admin.fetchTopicOffsets(this.topic)).map((o) => [o.partition, BigInt(o.high)]),
    );
    await admin.disconnect();
    const remaining = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
    if (remaining.size === 0) this.markCaughtUp();

    this.consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 100 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    const apply = async (value: Buffer, offset: string): Promise<boolean> => {
      try {
        // false when its models failed to load (the manager has logged why)
        return await this.manager.apply(await this.codecs.modelUpdate.decode(value));
      } catch (error) {
        // A bad update must not stop the scorer; the previous models keep serving.
        this.logger.error({ err: error, offset }, 'model update could not be applied');
        return false;
      }
    };
    // Routing records read while catching up, oldest first, not applied yet.
    const backlog: { value: Buffer; offset: string }[] = [];
    await this.consumer.run({
      eachMessage: async ({ partition, message }) => {
        const catchingUp = remaining.size > 0;
        if (message.key?.toString() === ROUTING_KEY && message.value) {
          if (catchingUp) backlog.push({ value: message.value, offset: message.offset });
          else await apply(message.value, message.offset);
        }
        if (remaining.has(partition) && BigInt(message.offset) + 1n >= (ends.get(partition) ?? 0n)) {
          remaining.delete(partition);
          if (remaining.size === 0) {
            for (let i = backlog.length - 1; i >= 0; i--) {
              const record = backlog[i] as (typeof backlog)[number];
              if (await apply(record.value, record.offset)) break;
            }
            backlog.length = 0;
            this.markCaughtUp();
          }
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.deleteGroups([this.groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}
