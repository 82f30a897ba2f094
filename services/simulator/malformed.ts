// Broken messages of every kind a consumer must survive, each with the dead-letter code it
// must produce. Built from a good event so keys and topics look like real traffic.
import { routingOf, type Codecs } from '../common/contracts.js';
import { frame } from '../common/avro/wire.js';
import type { Random } from '../common/random.js';
import type { SimEvent } from './generator.js';

export const MALFORMED_KINDS = [
  'garbage',
  'empty',
  'unknown-schema',
  'truncated',
  'wrong-schema',
  'missing-id',
  'negative-price',
  'future-time',
  'oversized',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

export const EXPECTED_CODE: Record<MalformedKind, string> = {
  garbage: 'FW_BAD_MAGIC_BYTE',
  empty: 'FW_EMPTY_MESSAGE',
  'unknown-schema': 'FW_UNKNOWN_SCHEMA_ID',
  truncated: 'FW_MALFORMED_AVRO',
  'wrong-schema': 'FW_SCHEMA_MISMATCH',
  'missing-id': 'FW_INVALID_RECORD',
  'negative-price': 'FW_INVALID_RECORD',
  'future-time': 'FW_INVALID_RECORD',
  oversized: 'FW_MESSAGE_TOO_LARGE',
};

/** An id no registry of ours hands out. */
export const UNKNOWN_SCHEMA_ID = 999_999;
const DAY_MS = 24 * 3600 * 1000;

export interface MalformedMessage {
  kind: MalformedKind;
  key: string;
  value: Buffer | null;
}

export async function makeMalformed(
  kind: MalformedKind,
  event: SimEvent,
  codecs: Codecs,
  random: Random,
  limits: { oversizedBytes: number; now: number },
): Promise<MalformedMessage> {
  const key = event.type === 'click' ? event.click.userId : event.purchase.userId;
  const good = () =>
    event.type === 'click' ? codecs.click.encode(event.click) : codecs.purchase.encode(event.purchase);
  const mutate = (patch: Record<string, unknown>) =>
    event.type === 'click'
      ? codecs.click.encode({ ...event.click, ...patch })
      : codecs.purchase.encode({ ...event.purchase, ...patch });
  switch (kind) {
    case 'garbage': {
      const bytes = Buffer.alloc(16 + random.int(48));
      for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
      bytes[0] = 1 + random.int(255); // never the magic byte
      return { kind, key, value: bytes };
    }
    case 'empty':
      return { kind, key, value: null };
    case 'unknown-schema':
      return { kind, key, value: frame(UNKNOWN_SCHEMA_ID, (await good()).subarray(5)) };
    case 'truncated': {
      const bytes = await good();
      return { kind, key, value: bytes.subarray(0, 5 + Math.floor((bytes.length - 5) / 3)) };
    }
    case 'wrong-schema':
      // A record of the other event type, framed correctly, on this topic.
      return { kind, key, value: await otherType(event, codecs) };
    case 'missing-id':
      return { kind, key, value: await mutate({ eventId: '' }) };
    case 'negative-price':
      return { kind, key, value: await mutate({ price: -(1 + random.int(100)) }) };
    case 'future-time':
      return {
        kind,
        key,
        value: await mutate({ eventTime: Math.max(event.time, limits.now) + DAY_MS * (1 + random.int(30)) }),
      };
    case 'oversized': {
      const bytes = Buffer.alloc(limits.oversizedBytes);
      (await good()).copy(bytes);
      return { kind, key, value: bytes };
    }
  }
}

/** The event as a record of another type: a click as a purchase, a purchase as a model update. */
function otherType(event: SimEvent, codecs: Codecs): Promise<Buffer> {
  if (event.type === 'click')
    return codecs.purchase.encode({
      eventId: event.click.eventId,
      userId: event.click.userId,
      sessionId: event.click.sessionId,
      itemId: event.click.itemId,
      category: event.click.category,
      price: event.click.price,
      quantity: 1,
      eventTime: event.click.eventTime,
    });
  return codecs.modelUpdate.encode({
    updateId: event.purchase.eventId,
    alias: 'champion',
    version: null,
    artifactUri: null,
    sha256: null,
    modelKind: null,
    featureSpecHash: null,
    routing: routingOf({ champion: null, challenger: null, challengerWeight: 0, shadow: null }),
    reason: 'misrouted',
    actor: 'simulator',
    updateTime: event.purchase.eventTime,
  });
}
