// The joiner's durable state in Redis, one set of keys per input partition (hash-tagged, so a
// Redis Cluster keeps them in one slot for the Lua script):
//   meta        hash: epoch (fencing token), seq (batches applied), format, offsets and the join
//               position (JSON)
//   predictions hash: prediction id → the prediction as it was consumed (Avro bytes), while its
//               click is held
//   clicks      hash: click event id → the click's join state (JSON: its predictions and labels)
//   purchases   hash: purchase event id → the purchase and the clicks it credits (JSON)
//   seen:*      zset: input ids by event time, to drop duplicates
//   outbox      the records the last applied batch publishes, with its seq (see service.ts)
// A batch's changes, its position and its outbox are written by one script call: all or none.
import type { Redis } from 'ioredis';
import avro from 'avsc';
import { StaleOwnerError, FlywheelError } from '../common/errors.js';
import type {
  JoinInput,
  JoinJournal,
  JoinPosition,
  JoinSnapshot,
  PendingPrediction,
  StoredClick,
  StoredPurchase,
} from './join.js';

export type InputOffsets = Partial<Record<JoinInput, string>>;

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

/** The layout of the keys above; a state of another layout is not read (the inputs are replayed). */
export const STATE_FORMAT = '2';

/**
 * apply-8: KEYS meta predictions clicks purchases seen:prediction seen:purchase outbox (7 used;
 *   the count is fixed). ARGV[1] epoch  ARGV[2] seq  ARGV[3] offsets JSON  ARGV[4] position JSON
 *   ARGV[5] outbox bytes  ARGV[6] format  ARGV[7..16] item counts of the ten change lists below,
 *   then the items: payloads added (id, bytes), payloads removed (id), clicks set (id, json),
 *   clicks removed (id), purchases set (id, json), purchases removed (id), seen predictions added
 *   (id, time), removed (id), seen purchases added (id, time), removed (id).
 * Returns 1, or -1 when another owner took the partition (epoch changed) or seq is not the next.
 */
const APPLY = `
local meta = KEYS[1]
if redis.call('HGET', meta, 'epoch') ~= ARGV[1] then return -1 end
local seq = tonumber(ARGV[2])
if tonumber(redis.call('HGET', meta, 'seq') or '0') ~= seq - 1 then return -1 end
local counts = {}
for i = 1, 10 do counts[i] = tonumber(ARGV[6 + i]) end
local a = 17
local function set(key, n) for _ = 1, n do redis.call('HSET', key, ARGV[a], ARGV[a + 1]); a = a + 2 end end
local function del(key, n) for _ = 1, n do redis.call('HDEL', key, ARGV[a]); a = a + 1 end end
local function zadd(key, n) for _ = 1, n do redis.call('ZADD', key, ARGV[a + 1], ARGV[a]); a = a + 2 end end
local function zrem(key, n) for _ = 1, n do redis.call('ZREM', key, ARGV[a]); a = a + 1 end end
set(KEYS[2], counts[1]); del(KEYS[2], counts[2])
set(KEYS[3], counts[3]); del(KEYS[3], counts[4])
set(KEYS[4], counts[5]); del(KEYS[4], counts[6])
zadd(KEYS[5], counts[7]); zrem(KEYS[5], counts[8])
zadd(KEYS[6], counts[9]); zrem(KEYS[6], counts[10])
redis.call('HSET', meta, 'seq', seq, 'offsets', ARGV[3], 'position', ARGV[4], 'format', ARGV[6])
redis.call('SET', KEYS[7], ARGV[5])
return 1
`;

interface StateCommands {
  fwJoinApply(...keysThenArgs: (string | number | Buffer | (string | number | Buffer)[])[]): Promise<number>;
}

/** The changes of one batch, collected from the join's journal; netted (added then removed = nothing). */
export class StateDelta implements JoinJournal {
  /** Predictions whose payload must be stored (the service has their bytes). */
  readonly payloadsAdded = new Set<string>();
  readonly payloadsRemoved = new Set<string>();
  readonly clicksSet = new Map<string, StoredClick>();
  readonly clicksRemoved = new Set<string>();
  readonly purchasesSet = new Map<string, StoredPurchase>();
  readonly purchasesRemoved = new Set<string>();
  readonly seenAdded: Record<JoinInput, Map<string, number>> = { prediction: new Map(), purchase: new Map() };
  readonly seenRemoved: Record<JoinInput, Set<string>> = { prediction: new Set(), purchase: new Set() };

  predictionAdded(prediction: PendingPrediction): void {
    this.payloadsAdded.add(prediction.predictionId);
  }
  clickChanged(click: StoredClick): void {
    this.clicksRemoved.delete(click.eventId);
    this.clicksSet.set(click.eventId, click);
  }
  clickForgotten(click: StoredClick): void {
    if (!this.clicksSet.delete(click.eventId)) this.clicksRemoved.add(click.eventId);
    for (const { predictionId } of click.predictions)
      if (!this.payloadsAdded.delete(predictionId)) this.payloadsRemoved.add(predictionId);
  }
  purchaseChanged(purchase: StoredPurchase): void {
    this.purchasesRemoved.delete(purchase.ref.eventId);
    this.purchasesSet.set(purchase.ref.eventId, purchase);
  }
  purchaseForgotten(eventId: string): void {
    if (!this.purchasesSet.delete(eventId)) this.purchasesRemoved.add(eventId);
  }
  seen(input: JoinInput, id: string, eventTime: number): void {
    this.seenAdded[input].set(id, eventTime);
  }
  forgotten(input: JoinInput, id: string): void {
    if (!this.seenAdded[input].delete(id)) this.seenRemoved[input].add(id);
  }
}

export interface LoadedState {
  epoch: number;
  seq: number;
  offsets: InputOffsets;
  outbox: Outbox | null;
  snapshot: JoinSnapshot | null;
}

export function joinStateKeys(group: string, partition: number) {
  const prefix = `fw:join:{${group}:${partition}}:`;
  return {
    meta: `${prefix}meta`,
    predictions: `${prefix}predictions`,
    clicks: `${prefix}clicks`,
    purchases: `${prefix}purchases`,
    seenPredictions: `${prefix}seen:prediction`,
    seenPurchases: `${prefix}seen:purchase`,
    outbox: `${prefix}outbox`,
  };
}

/** Keys an earlier layout of the state used (removed when the state is discarded). */
function legacyKeys(group: string, partition: number): string[] {
  const prefix = `fw:join:{${group}:${partition}}:`;
  return [`${prefix}pending`, `${prefix}deadlines`];
}

const SCAN_COUNT = 2000;

export class RedisJoinState {
  private readonly redis: Redis & StateCommands;

  constructor(
    redis: Redis,
    private readonly group: string,
  ) {
    redis.defineCommand('fwJoinApply', { numberOfKeys: 7, lua: APPLY });
    this.redis = redis as Redis & StateCommands;
  }

  keys(partition: number) {
    return joinStateKeys(this.group, partition);
  }

  /** Takes ownership (a new epoch fences out the previous owner's writes) and reads the state. */
  async load(partition: number): Promise<LoadedState> {
    const k = this.keys(partition);
    const epoch = await this.redis.hincrby(k.meta, 'epoch', 1);
    const [seq, offsets, position, format] = await this.redis.hmget(
      k.meta,
      'seq',
      'offsets',
      'position',
      'format',
    );
    const outboxBytes = await this.redis.getBuffer(k.outbox);
    const outbox = outboxBytes ? decodeOutbox(outboxBytes) : null;
    // No state, or one of another layout: as if Redis had lost it (the service replays the inputs).
    if (!position || format !== STATE_FORMAT)
      return { epoch, seq: 0, offsets: {}, outbox: null, snapshot: null };

    const parsed = parsePosition(position);
    return {
      epoch,
      seq: Number(seq ?? 0),
      offsets: JSON.parse(offsets ?? '{}') as InputOffsets,
      outbox,
      snapshot: {
        ...parsed,
        clicks: await this.scanJson<StoredClick>(k.clicks),
        purchases: await this.scanJson<StoredPurchase>(k.purchases),
        seenPredictions: await this.scanSeen(k.seenPredictions),
        seenPurchases: await this.scanSeen(k.seenPurchases),
      },
    };
  }

  private async scanJson<T>(key: string): Promise<T[]> {
    const out: T[] = [];
    for await (const entries of this.redis.hscanStream(key, { count: SCAN_COUNT })) {
      const pairs = entries as string[];
      for (let i = 1; i < pairs.length; i += 2) out.push(JSON.parse(pairs[i] as string) as T);
    }
    return out;
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
    await this.redis.del(...Object.values(rest), ...legacyKeys(this.group, partition));
    await this.redis.hdel(meta, 'seq', 'offsets', 'position', 'format');
  }

  /** Payloads of held predictions (null where unknown). */
  async payloads(partition: number, ids: string[]): Promise<(Buffer | null)[]> {
    if (ids.length === 0) return [];
    return this.redis.hmgetBuffer(this.keys(partition).predictions, ...ids);
  }

  /** Writes one batch atomically; throws StaleOwnerError when this process no longer owns it. */
  async apply(
    partition: number,
    write: {
      epoch: number;
      seq: number;
      offsets: InputOffsets;
      position: JoinPosition;
      delta: StateDelta;
      payloads: Map<string, Buffer>;
      messages: OutboxMessage[];
    },
  ): Promise<void> {
    const k = this.keys(partition);
    const { delta } = write;
    const outbox = encodeOutbox({ seq: write.seq, offsets: write.offsets, messages: write.messages });
    const items: (string | number | Buffer)[] = [];
    for (const id of delta.payloadsAdded) {
      const payload = write.payloads.get(id);
      if (!payload) throw new FlywheelError('FW_JOIN_STATE_MISSING', `no payload for prediction ${id}`);
      items.push(id, payload);
    }
    items.push(...delta.payloadsRemoved);
    for (const [id, click] of delta.clicksSet) items.push(id, JSON.stringify(click));
    items.push(...delta.clicksRemoved);
    for (const [id, purchase] of delta.purchasesSet) items.push(id, JSON.stringify(purchase));
    items.push(...delta.purchasesRemoved);
    for (const input of ['prediction', 'purchase'] as const) {
      for (const [id, time] of delta.seenAdded[input]) items.push(id, time);
      items.push(...delta.seenRemoved[input]);
    }
    const result = await this.redis.fwJoinApply(
      k.meta,
      k.predictions,
      k.clicks,
      k.purchases,
      k.seenPredictions,
      k.seenPurchases,
      k.outbox,
      write.epoch,
      write.seq,
      JSON.stringify(write.offsets),
      stringifyPosition(write.position),
      outbox,
      STATE_FORMAT,
      delta.payloadsAdded.size,
      delta.payloadsRemoved.size,
      delta.clicksSet.size,
      delta.clicksRemoved.size,
      delta.purchasesSet.size,
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

/** JSON has no infinities; the position's "nothing yet" times are -Infinity. */
function stringifyPosition(position: JoinPosition): string {
  return JSON.stringify(position, (_key, value: unknown) =>
    value === -Infinity ? '-Infinity' : value === Infinity ? 'Infinity' : value,
  );
}

function parsePosition(text: string): JoinPosition {
  return JSON.parse(text, (_key, value: unknown) =>
    value === '-Infinity' ? -Infinity : value === 'Infinity' ? Infinity : value,
  ) as JoinPosition;
}
