// Why the joiner reads end offsets with its own admin: behind a transaction still open, KafkaJS's
// admin answers the last stable offset, so records another transaction committed later lie past
// "the end". highWatermarkAdmin answers every record written.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Admin } from 'kafkajs';
import { highWatermarkAdmin } from '../../services/common/high-watermarks.js';
import { createProducer } from '../../services/common/kafka.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

describe('high watermarks', () => {
  const runtime = testRuntime();
  let topics: TestTopics<'ends'>;
  let admin: Admin;
  before(async () => {
    topics = await createTestTopics(runtime, ['ends'], 1);
    admin = highWatermarkAdmin(runtime.kafka);
    await admin.connect();
  });
  after(async () => {
    await admin.disconnect();
    await topics.cleanup();
  });

  it('count the records a later transaction committed behind one still open', async () => {
    const topic = topics.names.ends;
    const transactional = (id: string) =>
      createProducer(runtime.kafka, { transactionalId: `${topic}.${id}`, maxInFlightRequests: 1 });
    const open = transactional('open');
    const later = transactional('later');
    await Promise.all([open.connect(), later.connect()]);
    const end = async (reader: Admin) => Number((await reader.fetchTopicOffsets(topic))[0]?.high);
    try {
      const held = await open.transaction();
      await held.send({ topic, messages: [{ key: 'k', value: 'first, still open' }] });
      const committed = await later.transaction();
      await committed.send({
        topic,
        messages: [
          { key: 'k', value: 'a' },
          { key: 'k', value: 'b' },
        ],
      });
      await committed.commit();

      assert.equal(await end(topics.admin), 0, 'KafkaJS admin: the last stable offset');
      // The open record and the two committed ones (their marker is written asynchronously).
      assert.ok((await end(admin)) >= 3);
      await held.abort();
      // Once the abort's marker is in, nothing is open: both name the same end, past both markers.
      let ends = [0, 0];
      for (let tries = 0; tries < 100 && (ends[0] !== ends[1] || ends[0] !== 5); tries++) {
        if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        ends = [await end(topics.admin), await end(admin)];
      }
      assert.deepEqual(ends, [5, 5], 'with no transaction open both agree');
    } finally {
      await Promise.all([open.disconnect(), later.disconnect()]);
    }
  });
});
