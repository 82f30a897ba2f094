// 10,000 simulated events through the real broker, 1% malformed: every good event is decoded
// exactly once by the consumer helper, every malformed one is in the dead-letter topic with the
// right reason and its original bytes, and good + dead-lettered = sent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RecordConsumer, type RecordOf } from '../../services/common/consumer.js';
import { DeadLetterPublisher } from '../../services/common/dead-letters.js';
import { createProducer } from '../../services/common/kafka.js';
import { readTopicToEnd } from '../../services/common/read-topic.js';
import { ShopSimulation, type SimEvent } from '../../services/simulator/generator.js';
import { runSimulator } from '../../services/simulator/runner.js';
import { Countdown, createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

const EVENTS = 10_000;

describe('simulator → Kafka → consumer helper with dead letters', () => {
  const runtime = testRuntime();
  let topics: TestTopics<'click' | 'purchase' | 'dlq'>;
  before(async () => {
    topics = await createTestTopics(runtime, ['click', 'purchase', 'dlq'], 3);
  });
  after(() => topics.cleanup());

  it(`decodes all ${EVENTS} good events and dead-letters the 1% malformed with reasons`, async () => {
    const { click: clickTopic, purchase: purchaseTopic, dlq: dlqTopic } = topics.names;
    const producer = createProducer(runtime.kafka);
    await producer.connect();

    const sentGood = new Map<string, SimEvent>();
    const expectedCodes: string[] = [];
    // Traffic ten times faster in event time than sent, so some purchases land inside the run.
    const stats = await runSimulator({
      producer,
      codecs: runtime.codecs,
      logger: runtime.logger,
      simulation: { seed: 20261126, startTime: Date.now() - 3_600_000, trafficRate: 50 },
      rate: 0,
      maxEvents: EVENTS,
      durationMs: null,
      malformedRate: 0.01,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      showProgress: false,
      clickTopic,
      purchaseTopic,
      onEvent: (event) =>
        sentGood.set(event.type === 'click' ? event.click.eventId : event.purchase.eventId, event),
      onMalformed: ({ expectedCode }) => expectedCodes.push(expectedCode),
    });
    assert.equal(stats.clicks + stats.purchases, EVENTS);
    assert.ok(stats.purchases > 0, 'the stream has purchases');
    assert.ok(
      stats.malformedTotal >= 50 && stats.malformedTotal <= 160,
      `about 1% malformed (${stats.malformedTotal})`,
    );
    assert.equal(stats.sent, EVENTS + stats.malformedTotal);

    type Kinds = Record<string, 'click' | 'purchase'>;
    const subscriptions: Kinds = { [clickTopic]: 'click', [purchaseTopic]: 'purchase' };
    const seen = new Map<string, number>();
    const handled = new Countdown(EVENTS, 'good events handled');
    const consumer = new RecordConsumer({
      kafka: runtime.kafka,
      groupId: `test.dlq.${clickTopic}`,
      service: 'test',
      subscriptions,
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, dlqTopic),
      logger: runtime.logger,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      handle: (records: RecordOf<Kinds>[]) => {
        for (const record of records) {
          seen.set(record.value.eventId, (seen.get(record.value.eventId) ?? 0) + 1);
        }
        handled.add(records.length);
        return Promise.resolve();
      },
    });
    await consumer.start();
    try {
      await handled.done;
    } finally {
      await consumer.stop();
    }

    // Every good event exactly once, nothing else.
    assert.equal(seen.size, EVENTS);
    assert.deepEqual(
      [...seen.values()].filter((n) => n !== 1),
      [],
    );
    assert.deepEqual(
      [...seen.keys()].filter((id) => !sentGood.has(id)),
      [],
    );

    // Every malformed message in the dead-letter topic, with its reason and original bytes.
    const letters = await Promise.all(
      (await readTopicToEnd(runtime.kafka, dlqTopic)).map((m) => runtime.codecs.deadLetter.decode(m.value)),
    );
    assert.equal(letters.length, stats.malformedTotal);
    assert.equal(seen.size + letters.length, stats.sent, 'good + dead-lettered = sent');
    assert.deepEqual(letters.map((l) => l.errorCode).sort(), [...expectedCodes].sort());
    for (const letter of letters) assert.ok(letter.reason.length > 10, `reason given: ${letter.reason}`);

    const originals = new Map<string, Buffer | null>();
    for (const topic of [clickTopic, purchaseTopic]) {
      for (const m of await readTopicToEnd(runtime.kafka, topic))
        originals.set(`${topic}/${m.partition}/${m.offset}`, m.value);
    }
    for (const letter of letters) {
      const where = `${letter.sourceTopic}/${letter.sourcePartition}/${letter.sourceOffset}`;
      assert.ok(originals.has(where), `source ${where} exists`);
      const original = originals.get(where) ?? null;
      if (letter.errorCode === 'FW_EMPTY_MESSAGE') assert.equal(original, null);
      else
        assert.ok(
          original && letter.value && letter.value.equals(original),
          `original bytes kept for ${where}`,
        );
      assert.equal(letter.service, 'test');
    }
    await producer.disconnect();
  });

  it('after its duration sends no more clicks, but the purchases of sent clicks for the settle time', async () => {
    const producer = createProducer(runtime.kafka);
    await producer.connect();
    const simulation = { seed: 7, startTime: Date.now() - 3 * 3_600_000, trafficRate: 5 };
    const durationMs = 3_600_000;
    const settleMs = 30 * 60_000;
    const sent: SimEvent[] = [];
    try {
      await runSimulator({
        producer,
        codecs: runtime.codecs,
        logger: runtime.logger,
        simulation,
        rate: 0,
        maxEvents: null,
        durationMs,
        settleMs,
        malformedRate: 0,
        maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
        showProgress: false,
        clickTopic: topics.names.click,
        purchaseTopic: topics.names.purchase,
        onEvent: (event) => sent.push(event),
      });
    } finally {
      await producer.disconnect();
    }
    // The same shop, run by hand: every click up to the end, and each purchase of those clicks
    // up to the settle time.
    const end = simulation.startTime + durationMs;
    const shop = new ShopSimulation(simulation);
    const clickTimes = new Map<string, number>();
    const expected: string[] = [];
    for (let event = shop.next(); event.time <= end + settleMs; event = shop.next()) {
      if (event.type === 'click') {
        clickTimes.set(event.click.eventId, event.time);
        if (event.time <= end) expected.push(event.click.eventId);
      } else if ((clickTimes.get(event.clickEventId) ?? Infinity) <= end) {
        expected.push(event.purchase.eventId);
      }
    }
    const ids = sent.map((e) => (e.type === 'click' ? e.click.eventId : e.purchase.eventId));
    assert.deepEqual(ids, expected);
    const lateSales = sent.filter((e) => e.type === 'purchase' && e.time > end).length;
    assert.ok(lateSales > 10, `${lateSales} purchases settle after the end`);
  });
});
