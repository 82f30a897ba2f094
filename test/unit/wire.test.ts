import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { frame, unframe } from '../../services/common/avro/wire.js';
import { DecodeError } from '../../services/common/errors.js';

describe('Confluent wire format', () => {
  it('puts magic byte 0 and the big-endian schema id before the body', () => {
    const bytes = frame(0x01020304, Buffer.from([0xaa, 0xbb]));
    assert.deepEqual([...bytes], [0, 1, 2, 3, 4, 0xaa, 0xbb]);
    const { schemaId, body } = unframe(bytes);
    assert.equal(schemaId, 0x01020304);
    assert.deepEqual([...body], [0xaa, 0xbb]);
  });

  it('names what is wrong with a bad frame', () => {
    const codeOf = (bytes: Buffer | null) => {
      try {
        unframe(bytes);
        return 'ok';
      } catch (error) {
        assert.ok(error instanceof DecodeError);
        return error.code;
      }
    };
    assert.equal(codeOf(null), 'FW_EMPTY_MESSAGE');
    assert.equal(codeOf(Buffer.alloc(0)), 'FW_EMPTY_MESSAGE');
    assert.equal(codeOf(Buffer.from([1, 0, 0, 0, 1])), 'FW_BAD_MAGIC_BYTE');
    assert.equal(codeOf(Buffer.from([0, 0, 1])), 'FW_MALFORMED_AVRO');
    assert.equal(codeOf(Buffer.from([0, 0, 0, 0, 1])), 'ok');
  });
});
