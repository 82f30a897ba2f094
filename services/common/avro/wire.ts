// Confluent wire format: byte 0 = magic 0, bytes 1-4 = schema id (big-endian int32), then the
// Avro binary body. Any Confluent-compatible client can read our topics with this framing.
import { DecodeError } from '../errors.js';

export const MAGIC_BYTE = 0;
export const HEADER_BYTES = 5;

export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  writeHeader(out, schemaId);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** Writes the magic byte and schema id into the first HEADER_BYTES of `out`. */
export function writeHeader(out: Buffer, schemaId: number, at = 0): void {
  out[at] = MAGIC_BYTE;
  out.writeInt32BE(schemaId, at + 1);
}

export interface Framed {
  schemaId: number;
  body: Buffer;
}

export function unframe(bytes: Buffer | null | undefined): Framed {
  if (!bytes || bytes.length === 0) throw new DecodeError('FW_EMPTY_MESSAGE', 'message has no value');
  if (bytes[0] !== MAGIC_BYTE) {
    throw new DecodeError(
      'FW_BAD_MAGIC_BYTE',
      `first byte is ${bytes[0]}, expected ${MAGIC_BYTE} (Confluent wire format: magic byte, 4-byte schema id, Avro body)`,
    );
  }
  if (bytes.length < HEADER_BYTES) {
    throw new DecodeError(
      'FW_MALFORMED_AVRO',
      `message of ${bytes.length} bytes is shorter than the 5-byte header`,
    );
  }
  return { schemaId: bytes.readInt32BE(1), body: bytes.subarray(HEADER_BYTES) };
}
