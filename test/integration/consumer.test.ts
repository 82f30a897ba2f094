// The consumer helper against the real broker: handler failures, retries, and a graceful
// shutdown on SIGTERM that finishes the batch and commits, so a restart neither loses nor
// repeats an event.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { RecordConsumer, type RecordOf } from '../../services/common/consumer.js';
import { DeadLetterPublisher } from '../../services/common/dead-letters.js';
import { FlywheelError, RecordRejectedError, SchemaRegistryError } from '../../services/common/errors.js';
import { createProducer } from '../../services/common/kafka.js';
import { readTopicToEnd } from '../../services/common/read-topic.js';
import { createRedis } from '../../services/common/redis.js';
import { sendTraffic } from '../helpers/traffic.js';
import { Countdown, createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

type Clicks = Record<string, 'click'>;

describe('consumer helper', () => {
  const runtime = testRuntime();
  let topics: TestTopics<'click' | 'purchase' | 'dlq'>;
  let producer: Producer;

  // Each test has its own topics and its own producer: a KafkaJS producer that once wrote to a
  // topic keeps asking for its metadata, and stalls once that topic is deleted.
  beforeEach(async () => {
    topics = await createTestTopics(runtime, ['click', 'purchase', 'dlq'], 3);
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  afterEach(async () => {
    await producer.disconnect();
    await topics.cleanup();
  });

  const sendClicks = async (count: number, seed: number) => {
    const ids: string[] = [];
    await sendTraffic(runtime, producer, {
      clickTopic: topics.names.click,
      purchaseTopic: topics.names.purchase,
      events: count,
      seed,
      onEvent: (e) => {
        if (e.type === 'click') ids.push(e.click.eventId);
      },
    });
    return ids;
  };

  const consumerFor = (groupId: string, handle: (records: RecordOf<Clicks>[]) => Promise<void>) =>
    new RecordConsumer<Clicks>({
      kafka: runtime.kafka,
      groupId,
      service: 'test',
      subscriptions: { [topics.names.click]: 'click' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, topics.names.dlq),
      logger: runtime.logger,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      retryDelayMs: () => 20,
      handle,
    });

  it('dead-letters only the records a handler refuses, retries service failures, loses nothing', async () => {
    const clickIds = await sendClicks(600, 11);
    const poison = new Set(clickIds.filter((_, i) => i % 97 === 5));
    // Service failures of every kind: marked retriable, a registry's refusal, a plain bug-like throw.
    const failures = [
      new FlywheelError('FW_REDIS_UNAVAILABLE', 'redis briefly away', { retriable: true }),
      new SchemaRegistryError('schema registry answered 409', { status: 409 }),
      new TypeError('Cannot read properties of undefined'),
    ];
    let transientLeft = failures.length;
    const handled = new Map<string, number>();
    const progress = new Countdown(clickIds.length - poison.size, 'good records handled');
    const consumer = consumerFor(`test.handler.${topics.names.click}`, (records) => {
      const failure = failures[failures.length - transientLeft];
      if (failure) {
        transientLeft--;
        throw failure;
      }
      const bad = records.find((r) => poison.has(r.value.eventId));
      if (bad) throw new RecordRejectedError(`cannot score ${bad.value.eventId}`);
      for (const r of records) handled.set(r.value.eventId, (handled.get(r.value.eventId) ?? 0) + 1);
      progress.add(records.length);
      return Promise.resolve();
    });
    await consumer.start();
    try {
      await progress.done;
    } finally {
      await consumer.stop();
    }
    assert.equal(transientLeft, 0, 'the retriable failures happened');
    assert.deepEqual([...handled.keys()].sort(), clickIds.filter((id) => !poison.has(id)).sort());
    assert.deepEqual(
      [...handled.values()].filter((n) => n !== 1),
      [],
      'no record handled twice',
    );
    const letters = await Promise.all(
      (await readTopicToEnd(runtime.kafka, topics.names.dlq)).map((m) =>
        runtime.codecs.deadLetter.decode(m.value),
      ),
    );
    const rejected = await Promise.all(
      letters.map(async (l) => (await runtime.codecs.click.decode(l.value)).eventId),
    );
    assert.deepEqual(rejected.sort(), [...poison].sort());
    assert.ok(letters.every((l) => l.errorCode === 'FW_HANDLER_REJECTED' && /cannot score/.test(l.reason)));
  });

  it('reads dead letters larger than the message limit, and never dead-letters one that does not read', async () => {
    const dlqTopic = topics.names.purchase; // read here as a dead-letter topic
    const letter = (offset: number, bytes: number) => ({
      sourceTopic: 'fw.events.click',
      sourcePartition: 0,
      sourceOffset: offset,
      key: Buffer.from('k'),
      value: Buffer.alloc(bytes, 0x41),
      headers: {},
      sourceTimestamp: null,
      errorCode: 'FW_MESSAGE_TOO_LARGE',
      reason: 'too large',
      service: 'scorer',
      consumerGroup: null,
      failedAt: Date.now(),
    });
    await producer.send({
      topic: dlqTopic,
      messages: [
        { key: 'same', value: Buffer.from('not a dead letter') },
        { key: 'same', value: await runtime.codecs.deadLetter.encode(letter(1, 300_000)) },
        { key: 'same', value: await runtime.codecs.deadLetter.encode(letter(2, 10)) },
      ],
    });
    const taken: number[] = [];
    const progress = new Countdown(2, 'dead letters read');
    const consumer = new RecordConsumer<Record<string, 'deadLetter'>>({
      kafka: runtime.kafka,
      groupId: `test.dlq-reader.${dlqTopic}`,
      service: 'test',
      subscriptions: { [dlqTopic]: 'deadLetter' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, topics.names.dlq),
      logger: runtime.logger,
      maxMessageBytes: 65_536,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      fromBeginning: true,
      handle: (records) => {
        for (const r of records) taken.push(r.value.sourceOffset);
        progress.add(records.length);
        return Promise.resolve();
      },
    });
    await consumer.start();
    await progress.done;
    await consumer.stop();
    assert.deepEqual(taken, [1, 2], 'the 300 KB letter is read; the garbage before it is skipped');
    assert.equal((await readTopicToEnd(runtime.kafka, topics.names.dlq)).length, 0, 'nothing dead-lettered');
  });

  it('is not ready while a batch keeps failing, commits nothing meanwhile, and is ready once it goes through', async () => {
    const clickIds = await sendClicks(200, 13);
    const groupId = `test.unready.${topics.names.click}`;
    let registryUp = false;
    let failed = 0;
    const failedThrice = new Countdown(3, 'failed attempts');
    const progress = new Countdown(clickIds.length, 'records handled');
    const consumer = consumerFor(groupId, (records) => {
      if (!registryUp) {
        failed++;
        failedThrice.add(1);
        throw new SchemaRegistryError('schema registry http://127.0.0.1:9 unreachable');
      }
      progress.add(records.length);
      return Promise.resolve();
    });
    await consumer.start();
    try {
      await failedThrice.done;
      const health = consumer.health();
      assert.equal(health.ready, false);
      assert.equal(health.failing[0]?.code, 'FW_SCHEMA_REGISTRY_UNAVAILABLE');
      assert.ok((health.failing[0]?.attempts ?? 0) >= 1);
      const admin = runtime.kafka.admin();
      await admin.connect();
      const committed = await admin.fetchOffsets({ groupId, topics: [topics.names.click] });
      await admin.disconnect();
      assert.ok(
        committed[0]?.partitions.every((p) => p.offset === '-1'),
        `nothing committed while failing: ${JSON.stringify(committed)}`,
      );
      registryUp = true;
      await progress.done;
      assert.equal(consumer.health().ready, true);
    } finally {
      await consumer.stop();
    }
    assert.ok(failed >= 3);
    assert.equal((await readTopicToEnd(runtime.kafka, topics.names.dlq)).length, 0, 'nothing dead-lettered');
  });

  it('SIGTERM finishes the batch and commits: restarts neither lose nor repeat events', async () => {
    const ids = await sendClicks(4000, 12);
    const hash = `test:counting:${topics.names.click}`;
    const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await redis.connect();
    const env = {
      ...process.env,
      WORK_MS: '5',
      TOPIC: topics.names.click,
      DLQ_TOPIC: topics.names.dlq,
      GROUP: `test.sigterm.${topics.names.click}`,
      HASH: hash,
      LOG_LEVEL: process.env.CHILD_LOG_LEVEL ?? 'warn',
    };
    const start = async () => {
      const child = fork(join(import.meta.dirname, '..', 'fixtures', 'counting-consumer.ts'), {
        env,
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const service = new CountingService(child);
      await once(child, 'message');
      return service;
    };
    try {
      // Stop the service three times mid-stream, each time once it has made some progress.
      for (const share of [0.15, 0.4, 0.7]) {
        const service = await start();
        await service.counted(Math.floor(ids.length * share));
        assert.equal(await service.stop(), 0, 'clean exit on SIGTERM');
        assert.ok((await redis.hlen(hash)) < ids.length, 'stopped mid-stream');
      }
      const service = await start();
      await service.counted(ids.length);
      assert.equal(await service.stop(), 0);
      const counts = await redis.hgetall(hash);
      assert.equal(Object.keys(counts).length, ids.length, 'every event handled');
      assert.deepEqual(
        Object.entries(counts).filter(([, n]) => n !== '1'),
        [],
        'no event handled twice',
      );
    } finally {
      await redis.del(hash);
      await redis.quit();
    }
  });
});

/** A forked counting consumer and the latest durable count it reported. */
class CountingService {
  private latest = 0;
  private readonly exited: Promise<number | null>;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (message: { counted?: number }) => {
      if (typeof message.counted === 'number') this.latest = Math.max(this.latest, message.counted);
      child.emit('counted');
    });
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
  }

  /** Resolves once at least `target` events are counted in Redis; rejects if the child exits first. */
  async counted(target: number): Promise<void> {
    let exitedFirst = false;
    const exit = this.exited.then(() => {
      exitedFirst = true;
    });
    while (this.latest < target) {
      await Promise.race([once(this.child, 'counted'), exit]);
      if (exitedFirst) throw new Error(`consumer exited at ${this.latest} of ${target} events`);
    }
  }

  stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}
