// The joiner's completeness when another writer holds a transaction open on its input, as a
// second joiner instance's repartitioner does while it moves a batch: the records committed after
// that transaction opened lie past the partition's last stable offset, so reading "to the end" as
// KafkaJS's admin names it would let the watermark pass purchases not read yet (they arrived late
// and labels were corrected, seen under load in CI). The join of that partition waits instead.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { partitionOf } from '../../services/common/partitioner.js';
import { joinConfigFrom } from '../../services/joiner/config.js';
import { Joiner } from '../../services/joiner/service.js';
import { TopicCollector } from '../helpers/collect.js';
import { reference, stream, timeOf } from '../helpers/join-reference.js';
import { drainCollector, joinerTestConfig, purchaseRecord, sendInputs } from '../helpers/joiner.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

const PARTITIONS = 3;
type Roles = 'predictions' | 'purchases' | 'repartitioned' | 'feedback' | 'dlq';

describe('joiner with a transaction open on its input', () => {
  const runtime = testRuntime('joiner-transactions');
  let topics: TestTopics<Roles>;
  let producer: Producer;
  before(async () => {
    topics = await createTestTopics(runtime, [
      'predictions',
      'purchases',
      'repartitioned',
      'feedback',
      'dlq',
    ]);
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  after(async () => {
    await producer.disconnect();
    await topics.cleanup();
  });

  it('waits for it to end, then labels every prediction as the reference does, none late', async () => {
    const { names } = topics;
    const inputs = stream(51, 900, Date.now() - 3 * 3600_000, 5).sort((a, b) => timeOf(a) - timeOf(b));
    const config = joinerTestConfig({ FW_JOINER_GROUP: `test.joiner.${names.feedback}` });
    const expected = reference(inputs, joinConfigFrom(config));
    const partitionOfPrediction = new Map(
      inputs.flatMap((i) =>
        i.kind === 'prediction' ? [[i.value.predictionId, partitionOf(i.value.userId, PARTITIONS)]] : [],
      ),
    );
    const held = 0;
    const elsewhere = [...expected.keys()].filter((id) => partitionOfPrediction.get(id) !== held).length;
    assert.ok(elsewhere > 0 && elsewhere < expected.size);
    await sendInputs(producer, runtime.codecs, names, inputs);

    // Another writer's transaction, open on the held partition before the repartitioner writes.
    const other = createProducer(runtime.kafka, {
      transactionalId: `${names.repartitioned}.other-instance`,
      maxInFlightRequests: 1,
    });
    await other.connect();
    const transaction = await other.transaction();
    const stray = purchaseRecord({
      eventId: 'stray',
      userId: 'stray-user',
      itemId: 'i',
      sessionId: null,
      eventTime: Date.now(),
    });
    await transaction.send({
      topic: names.repartitioned,
      messages: [{ partition: held, key: 'stray-user', value: await runtime.codecs.purchase.encode(stray) }],
    });

    const collector = await new TopicCollector(runtime.kafka, names.feedback, (b) =>
      runtime.codecs.labeledExample.decode(b),
    ).start();
    const joiner = new Joiner({
      runtime,
      config,
      http: false,
      topics: {
        predictions: names.predictions,
        purchases: names.purchases,
        repartitioned: names.repartitioned,
        feedback: names.feedback,
        deadLetters: names.dlq,
      },
    });
    await joiner.start();
    try {
      // The other partitions are complete and labeled; the held one decided nothing meanwhile.
      await collector.atLeast(elsewhere, 90_000);
      const state = joiner.partitionStates().find((p) => p.partition === held);
      assert.equal(state?.watermark, -Infinity, JSON.stringify(state));
      assert.ok(collector.records.every((r) => partitionOfPrediction.get(r.value.predictionId) !== held));

      await transaction.abort();
      await collector.atLeast(expected.size, 90_000);
      const counters = joiner.counters();
      assert.equal(counters.latePurchases, 0, JSON.stringify(counters));
      assert.equal(counters.corrections, 0);
    } finally {
      await joiner.stop();
      await other.disconnect();
    }
    const labeled: LabeledExample[] = await drainCollector(
      collector,
      producer,
      runtime.codecs,
      names.feedback,
      PARTITIONS,
    );
    await collector.stop();
    assert.equal(labeled.length, expected.size, 'each prediction labeled once');
    assert.deepEqual(new Map(labeled.map((e) => [e.predictionId, e.label])), expected);
    assert.ok(labeled.some((e) => e.label === 1));
  });
});
