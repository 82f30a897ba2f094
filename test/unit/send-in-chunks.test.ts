import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message, Producer, ProducerRecord } from 'kafkajs';
import { sendInChunks } from '../../services/common/kafka.js';

describe('sendInChunks', () => {
  it('splits a large send into requests under the byte limit, in order, each awaited', async () => {
    const sent: Message[][] = [];
    let inFlight = 0;
    const producer = {
      send: async (record: ProducerRecord) => {
        assert.equal(inFlight, 0, 'one request at a time keeps order');
        inFlight++;
        await new Promise((resolve) => setImmediate(resolve));
        sent.push(record.messages);
        inFlight--;
        return [];
      },
    } as unknown as Producer;
    const messages = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(1000, i) }));
    await sendInChunks(producer, 't', messages, 10_000);
    assert.ok(sent.length >= 10, `${sent.length} requests`);
    for (const chunk of sent) assert.ok(chunk.reduce((n, m) => n + (m.value as Buffer).length, 0) <= 10_000);
    assert.deepEqual(
      sent.flat().map((m) => m.key),
      messages.map((m) => m.key),
    );
  });
});
