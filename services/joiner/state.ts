// The joiner's durable state in Redis, one set of keys per input partition (hash-tagged, so a
// Redis Cluster keeps them in one slot for the Lua script):
//   meta       hash: epoch (fencing token), seq (batches applied), offsets and join position (JSON)
//   pending    hash: prediction id → the prediction as it was consumed (Avro bytes)
//   deadlines  zset: prediction id by window end (the order windows close in)
//   purchases  hash: purchase event id → purchase reference (JSON), until it can match no click
//   seen:*     zset: input ids by event time, to drop duplicates
//   outbox     the records the last applied batch publishes, with its seq (see service.ts)
// A batch's changes, its position and its outbox are written by one script call: all or none.
import type { Redis } from 'ioredis';
import avro from 'avsc';
import type {
  JoinCounters,
  JoinInput,
  JoinJournal,
  JoinSnapshot,
  PendingPrediction,
  PurchaseRef,
} from './join.js';

export type InputOffsets = Partial<Record<JoinInput, string>>;

export interface JoinPosition {
  streamTimes: Record<JoinInput, number>;
  watermark: number;
  lastPrune: number;
  counters: JoinCounters;
}

export interface OutboxMessage {
  topic: string;
  key: Buffer | null;
  value: Buffer;
  /** Record headers (dead letters carry their error code and source, as everywhere). */
  headers?: Record<string, string>;
}

export interface Outbox {
  seq: number;
  offsets: InputOffsets;
  messages: OutboxMessage[];
}

const outboxMessageFields = [
  { name: 'topic', type: 'string' },
  { name: 'key', type: ['null', 'bytes'] },
  { name: 'value', type: 'bytes' },
];
const outboxSchema = (messageFields: object[]) => ({
  type: 'record',
  name: 'JoinOutbox',
  fields: [
    { name: 'seq', type: 'long' },
    { name: 'offsets', type: { type: 'map', values: 'string' } },
    {
      name: 'messages',
      type: {
        type: 'array',
        items: { type: 'record', name: 'OutboxMessage', fields: messageFields },
      },
    },
  ],
});
// Stored outboxes are read by the next owner, maybe a newer joiner: the header-less layout of
// earlier joiners (no magic) resolves to this one, with no headers.
const outboxType = avro.Type.forSchema(
  outboxSchema([
    ...outboxMessageFields,
    { name: 'headers', type: { type: 'map', values: 'string' }, default: {} },
  ]) as avro.Schema,
);
const headerlessOutboxType = avro.Type.forSchema(outboxSchema(outboxMessageFields) as avro.Schema);
const fromHeaderless = outboxType.createResolver(headerlessOutboxType);
const OUTBOX_MAGIC = Buffer.from('FWOB2');

export function encodeOutbox(outbox: Outbox): Buffer {
  const messages = outbox.messages.map((m) => ({ ...m, headers: m.headers ?? {} }));
  return Buffer.concat([OUTBOX_MAGIC, outboxType.toBuffer({ ...outbox, messages })]);
}

/** The layout earlier joiners wrote; kept for tests of stored outboxes. */
export function encodeHeaderlessOutbox(outbox: Outbox): Buffer {
  const messages = outbox.messages.map(({ topic, key, value }) => ({ topic, key, value }));
  return headerlessOutboxType.toBuffer({ ...outbox, messages });
}

export function decodeOutbox(bytes: Buffer): Outbox {
  return (
    bytes.subarray(0, OUTBOX_MAGIC.length).equals(OUTBOX_MAGIC)
      ? outboxType.fromBuffer(bytes.subarray(OUTBOX_MAGIC.length))
      : outboxType.fromBuffer(bytes, fromHeaderless)
  ) as Outbox;
}

/**
 * apply-8: KEYS meta pending deadlines purchases seen:prediction seen:purchase outbox (7 used;
 *   the count is fixed). ARGV[1] epoch  ARGV[2] seq  ARGV[3] offsets JSON  ARGV[4] position JSON
 *   ARGV[5] outbox bytes  ARGV[6..13] item counts of the eight change lists below, then the items:
 *   pending added (id, window end, payload), pending removed (id), purchases added (id, json),
 *   purchases removed (id), seen predictions added (id, time), removed (id), seen purchases
 *   added (id, time), removed (id).
 * Returns 1, or -1 when another owner took the partition (epoch changed) or seq is not the next.
 */
const APPLY = `
local meta = KEYS[1]
if redis.call('HGET', meta, 'epoch') ~= ARGV[1] then return -1 end
local seq = tonumber(ARGV[2])
if tonumber(redis.call('HGET', meta, 'seq') or '0') ~= seq - 1 then return -1 end
local counts = {}
for i = 1, 8 do counts[i] = tonumber(ARGV[5 + i]) end
local a = 14
for _ = 1, counts[1] do
  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 2])
  redis.call('ZADD', KEYS[3], ARGV[a + 1], ARGV[a])
  a = a + 3
end
for _ = 1, counts[2] do
  redis.call('HDEL', KEYS[2], ARGV[a])
  redis.call('ZREM', KEYS[3], ARGV[a])
  a = a + 1
end
for _ = 1, counts[3] do redis.call('HSET', KEYS[4], ARGV[a], ARGV[a + 1]); a = a + 2 end
for _ = 1, counts[4] do redis.call('HDEL', KEYS[4], ARGV[a]); a = a + 1 end
for _ = 1, counts[5] do redis.call('ZADD', KEYS[5], ARGV[a + 1], ARGV[a]); a = a + 2 end
for _ = 1, counts[6] do redis.call('ZREM', KEYS[5], ARGV[a]); a = a + 1 end
for _ = 1, counts[7] do redis.call('ZADD', KEYS[6], ARGV[a + 1], ARGV[a]); a = a + 2 end
for _ = 1, counts[8] do redis.call('ZREM', KEYS[6], ARGV[a]); a = a + 1 end
redis.call('HSET', meta, 'seq', seq, 'offsets', ARGV[3], 'position', ARGV[4])
redis.call('SET', KEYS[7], ARGV[5])
return 1
`;

interface StateCommands {
  fwJoinApply(...keysThenArgs: (string | number | Buffer | (string | number | Buffer)[])[]): Promise<number>;
}

export class StaleOwnerError extends Error {
  constructor(partition: number) {
    super(`partition ${partition}: the join state was taken over by another owner, or is out of step`);
    this.name = 'StaleOwnerError';
  }
}

/** The changes of one batch, collected from the join's journal; netted (open then closed = nothing). */
export class StateDelta<P extends PendingPrediction> implements JoinJournal<P> {
  readonly pendingAdded = new Map<string, P>();
  readonly pendingRemoved = new Set<string>();
  readonly purchasesAdded = new Map<string, PurchaseRef>();
  readonly purchasesRemoved = new Set<string>();
  readonly seenAdded: Record<JoinInput, Map<string, number>> = { prediction: new Map(), purchase: new Map() };
  readonly seenRemoved: Record<JoinInput, Set<string>> = { prediction: new Set(), purchase: new Set() };

  opened(prediction: P): void {
    this.pendingAdded.set(prediction.predictionId, prediction);
  }
  closed(predictionId: string): void {
    if (!this.pendingAdded.delete(predictionId)) this.pendingRemoved.add(predictionId);
  }
  purchaseAdded(purchase: PurchaseRef): void {
    this.purchasesAdded.set(purchase.eventId, purchase);
  }
  purchaseForgotten(eventId: string): void {
    if (!this.purchasesAdded.delete(eventId)) this.purchasesRemoved.add(eventId);
  }
  seen(input: JoinInput, id: string, eventTime: number): void {
    this.seenAdded[input].set(id, eventTime);
  }
  forgotten(input: JoinInput, id: string): void {
    if (!this.seenAdded[input].delete(id)) this.seenRemoved[input].add(id);
  }
}

export interface LoadedState<P extends PendingPrediction> {
  epoch: number;
  seq: number;
  offsets: InputOffsets;
  outbox: Outbox | null;
  snapshot: JoinSnapshot<P> | null;
}

export function joinStateKeys(group: string, partition: number) {
  const prefix = `fw:join:{${group}:${partition}}:`;
  return {
    meta: `${prefix}meta`,
    pending: `${prefix}pending`,
    deadlines: `${prefix}deadlines`,
    purchases: `${prefix}purchases`,
    seenPredictions: `${prefix}seen:prediction`,
    seenPurchases: `${prefix}seen:purchase`,
    outbox: `${prefix}outbox`,
  };
}

const SCAN_COUNT = 2000;

export class RedisJoinState<P extends PendingPrediction> {
  private readonly redis: Redis & StateCommands;

  constructor(
    redis: Redis,
    private readonly group: string,
    /** Turns a stored prediction payload back into what the join holds. */
    private readonly decodePending: (payload: Buffer) => Promise<P>,
  ) {
    redis.defineCommand('fwJoinApply', { numberOfKeys: 7, lua: APPLY });
    this.redis = redis as Redis & StateCommands;
  }

  keys(partition: number) {
    return joinStateKeys(this.group, partition);
  }

  /** Takes ownership (a new epoch fences out the previous owner's writes) and reads the state. */
  async load(partition: number): Promise<LoadedState<P>> {
    const k = this.keys(partition);
    const epoch = await this.redis.hincrby(k.meta, 'epoch', 1);
    const [seq, offsets, position] = await this.redis.hmget(k.meta, 'seq', 'offsets', 'position');
    const outboxBytes = await this.redis.getBuffer(k.outbox);
    const outbox = outboxBytes ? decodeOutbox(outboxBytes) : null;
    if (!position) return { epoch, seq: 0, offsets: {}, outbox: null, snapshot: null };

    const open: P[] = [];
    for await (const entries of this.redis.hscanBufferStream(k.pending, { count: SCAN_COUNT })) {
      const pairs = entries as Buffer[];
      for (let i = 1; i < pairs.length; i += 2) open.push(await this.decodePending(pairs[i] as Buffer));
    }
    const purchases: PurchaseRef[] = [];
    for await (const entries of this.redis.hscanStream(k.purchases, { count: SCAN_COUNT })) {
      const pairs = entries as string[];
      for (let i = 1; i < pairs.length; i += 2) purchases.push(JSON.parse(pairs[i] as string) as PurchaseRef);
    }
    const parsed = JSON.parse(position) as JoinPosition;
    return {
      epoch,
      seq: Number(seq ?? 0),
      offsets: JSON.parse(offsets ?? '{}') as InputOffsets,
      outbox,
      snapshot: {
        open,
        purchases,
        seenPredictions: await this.scanSeen(k.seenPredictions),
        seenPurchases: await this.scanSeen(k.seenPurchases),
        ...parsed,
      },
    };
  }

  private async scanSeen(key: string): Promise<[string, number][]> {
    const seen: [string, number][] = [];
    for await (const entries of this.redis.zscanStream(key, { count: SCAN_COUNT })) {
      const pairs = entries as string[];
      for (let i = 0; i < pairs.length; i += 2) seen.push([pairs[i] as string, Number(pairs[i + 1])]);
    }
    return seen;
  }

  /** Forgets a partition's state, keeping its epoch (so fencing still holds). */
  async discard(partition: number): Promise<void> {
    const { meta, ...rest } = this.keys(partition);
    await this.redis.del(...Object.values(rest));
    await this.redis.hdel(meta, 'seq', 'offsets', 'position');
  }

  /** Payloads of pending predictions (null where unknown). */
  async payloads(partition: number, ids: string[]): Promise<(Buffer | null)[]> {
    if (ids.length === 0) return [];
    return this.redis.hmgetBuffer(this.keys(partition).pending, ...ids);
  }

  /** Writes one batch atomically; throws StaleOwnerError when this process no longer owns it. */
  async apply(
    partition: number,
    write: {
      epoch: number;
      seq: number;
      offsets: InputOffsets;
      position: JoinPosition;
      delta: StateDelta<P>;
      payloads: Map<string, Buffer>;
      windowMs: number;
      messages: OutboxMessage[];
    },
  ): Promise<void> {
    const k = this.keys(partition);
    const { delta } = write;
    const outbox = encodeOutbox({ seq: write.seq, offsets: write.offsets, messages: write.messages });
    const items: (string | number | Buffer)[] = [];
    for (const [id, prediction] of delta.pendingAdded) {
      const payload = write.payloads.get(id);
      if (!payload) throw new Error(`no payload for pending prediction ${id}`);
      items.push(id, prediction.clickTime + write.windowMs, payload);
    }
    items.push(...delta.pendingRemoved);
    for (const [id, purchase] of delta.purchasesAdded) items.push(id, JSON.stringify(purchase));
    items.push(...delta.purchasesRemoved);
    for (const input of ['prediction', 'purchase'] as const) {
      for (const [id, time] of delta.seenAdded[input]) items.push(id, time);
      items.push(...delta.seenRemoved[input]);
    }
    const result = await this.redis.fwJoinApply(
      k.meta,
      k.pending,
      k.deadlines,
      k.purchases,
      k.seenPredictions,
      k.seenPurchases,
      k.outbox,
      write.epoch,
      write.seq,
      JSON.stringify(write.offsets),
      JSON.stringify(write.position),
      outbox,
      delta.pendingAdded.size,
      delta.pendingRemoved.size,
      delta.purchasesAdded.size,
      delta.purchasesRemoved.size,
      delta.seenAdded.prediction.size,
      delta.seenRemoved.prediction.size,
      delta.seenAdded.purchase.size,
      delta.seenRemoved.purchase.size,
      items, // ioredis flattens arrays: no spread, so no argument-count limit
    );
    if (result !== 1) throw new StaleOwnerError(partition);
  }

  /** Bytes Redis uses for one partition's state (MEMORY USAGE of each key, sampled fully). */
  async memoryBytes(partition: number): Promise<number> {
    let total = 0;
    for (const key of Object.values(this.keys(partition))) {
      total += Number((await this.redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
    }
    return total;
  }
}
