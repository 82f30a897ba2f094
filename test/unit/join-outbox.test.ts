// The joiner's stored outbox (the last batch's records, republished by the next owner when Kafka
// missed them): dead letters keep their headers, and outboxes stored by earlier joiners, without
// headers, still read.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeOutbox,
  encodeHeaderlessOutbox,
  encodeOutbox,
  type Outbox,
} from '../../services/joiner/state.js';

const outbox: Outbox = {
  seq: 42,
  offsets: { prediction: '100', purchase: '7' },
  messages: [
    { topic: 'fw.feedback.labeled', key: Buffer.from('u1'), value: Buffer.from([1, 2, 3]) },
    {
      topic: 'fw.dlq',
      key: null,
      value: Buffer.from([9]),
      headers: { 'fw-error-code': 'FW_MALFORMED_AVRO', 'fw-source': 'fw.predictions/0/5' },
    },
  ],
};

describe('join outbox', () => {
  it('round-trips with headers', () => {
    const back = decodeOutbox(encodeOutbox(outbox));
    assert.equal(back.seq, 42);
    assert.deepEqual(back.offsets, outbox.offsets);
    assert.deepEqual(back.messages[0]?.headers, {});
    assert.deepEqual(back.messages[1]?.headers, outbox.messages[1]?.headers);
    assert.deepEqual(back.messages[1]?.value, Buffer.from([9]));
  });

  it('reads an outbox stored by an earlier joiner (no headers)', () => {
    const back = decodeOutbox(encodeHeaderlessOutbox(outbox));
    assert.equal(back.seq, 42);
    assert.equal(back.messages.length, 2);
    assert.deepEqual(back.messages[0]?.key, Buffer.from('u1'));
    assert.deepEqual(back.messages[1]?.headers, {});
  });
});
