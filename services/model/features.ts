// The feature spec shared by scorer, trainer and batch scoring: a click plus its session
// context become a sparse vector of hashed categorical features, crosses and buckets, plus a
// few dense values in reserved slots after the hash space. The vector is logged with each
// prediction, so training sees exactly what serving saw.
import { createHash } from 'node:crypto';
import { ConfigError } from '../common/errors.js';
import type { ClickEvent, FeatureVector } from '../common/contracts.js';
import { murmur3 } from './hash.js';

/** Session state the scorer keeps per user session (Redis). */
export interface SessionContext {
  /** Clicks in this session before this one. */
  clicksBefore: number;
  /** Event time of the session's first click, ms. */
  sessionStart: number;
  /** Distinct categories viewed before this click. */
  categoriesSeen: number;
}

export interface FeatureSpecOptions {
  hashBits: number;
  seed: number;
}

const CATEGORICAL = ['user', 'item', 'category', 'device', 'country', 'referrer', 'pageType'] as const;
const CROSSES = [
  'segment×category',
  'device×category',
  'referrer×pageType',
  'user×category',
  'priceBucket×category',
] as const;
export const BUCKETS = {
  clicksBefore: [0, 1, 2, 3, 5, 8, 13, 21],
  secondsInSession: [0, 10, 30, 60, 120, 300, 600, 1800, 3600],
  priceLog2: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
  categoriesSeen: [0, 1, 2, 3, 5],
  hourOfDay: [0, 6, 9, 12, 15, 18, 21],
} as const;
const DENSE = ['logPrice', 'clicksBefore', 'logSecondsInSession'] as const;

/** Index of the bucket `value` falls in: the last boundary <= value. */
export function bucketOf(value: number, boundaries: readonly number[]): number {
  let b = 0;
  for (let i = 0; i < boundaries.length; i++) if (value >= (boundaries[i] as number)) b = i;
  return b;
}

export function segmentOf(country: string, device: string): string {
  return `${country}/${device}`;
}

export class FeatureSpec {
  readonly version = 1;
  readonly hashBits: number;
  readonly seed: number;
  /** Slots for hashed features; dense values follow at hashSize + i. */
  readonly hashSize: number;
  readonly dimension: number;
  readonly denseNames: readonly string[] = DENSE;
  /** Stable hash of everything that changes the vector; recorded with every model and prediction. */
  readonly hash: string;
  /** Upper bound of non-zero entries per vector (for padded batch tensors). */
  readonly maxNonZero: number;

  constructor(options: Partial<FeatureSpecOptions> = {}) {
    this.hashBits = options.hashBits ?? 16;
    this.seed = options.seed ?? 0x5f1e;
    if (!Number.isInteger(this.hashBits) || this.hashBits < 8 || this.hashBits > 24) {
      throw new ConfigError(
        `hashBits (FW_FEATURE_HASH_BITS) must be an integer in [8, 24], got ${this.hashBits}`,
      );
    }
    this.hashSize = 2 ** this.hashBits;
    this.dimension = this.hashSize + DENSE.length;
    this.maxNonZero = 1 + CATEGORICAL.length + CROSSES.length + Object.keys(BUCKETS).length + DENSE.length;
    this.hash = createHash('sha256').update(JSON.stringify(this.describe())).digest('hex').slice(0, 16);
  }

  /** The hash slot of the bias feature, present in every vector. */
  get biasSlot(): number {
    return murmur3('bias=1', this.seed) & (this.hashSize - 1);
  }

  /** The slot of each bucket of each bucketed feature (a profile reads the buckets back). */
  bucketSlots(): Record<keyof typeof BUCKETS, number[]> {
    const hashed = (text: string) => murmur3(text, this.seed) & (this.hashSize - 1);
    return Object.fromEntries(
      Object.entries(BUCKETS).map(([name, boundaries]) => [
        name,
        boundaries.map((_, i) => hashed(`${name}=${i}`)),
      ]),
    ) as Record<keyof typeof BUCKETS, number[]>;
  }

  /** Everything that defines the vector, in a canonical form. */
  describe() {
    return {
      version: this.version,
      hash: 'murmur3_x86_32',
      hashBits: this.hashBits,
      seed: this.seed,
      categorical: CATEGORICAL,
      crosses: CROSSES,
      buckets: BUCKETS,
      dense: DENSE,
    };
  }

  // The hot path of every scorer: each categorical value is looked up once per click and gets a
  // small id (values repeat: devices, countries, popular items); its slot and the slots of its
  // crosses are remembered by id, bucket slots are computed once, and no string is built for a
  // value or pair already seen. The definition stays murmur3("name=value") (see the unit test).
  private tables?: SlotTables;

  /** Sparse vector of one click: indices ascending and unique (colliding slots add up). */
  vectorize(click: ClickEvent, session: SessionContext): FeatureVector {
    const secondsInSession = Math.max(0, (click.eventTime - session.sessionStart) / 1000);
    const priceBucket = bucketOf(Math.log2(1 + Math.max(0, click.price)), BUCKETS.priceLog2);
    const hour = Math.floor(click.eventTime / 3_600_000) - 24 * Math.floor(click.eventTime / 86_400_000);
    // Memory is bounded: past SLOT_CACHE_SIZE distinct values, the tables start over.
    if (!this.tables || this.tables.held.count > SLOT_CACHE_SIZE) this.tables = slotTables(this);
    const { single, crossed, segments, bucketSlots, scratch: slots } = this.tables;
    const user = single.user.id(click.userId);
    const category = single.category.id(click.category);
    const device = single.device.id(click.device);
    const country = single.country.id(click.country);
    const referrer = single.referrer.id(click.referrer);
    const pageType = single.pageType.id(click.pageType);
    const segment = segments.id(country, device, single.country, single.device);
    let k = 0;
    slots[k++] = this.tables.bias;
    slots[k++] = single.user.slots[user] as number;
    slots[k++] = single.item.slotOf(click.itemId);
    slots[k++] = single.category.slots[category] as number;
    slots[k++] = single.device.slots[device] as number;
    slots[k++] = single.country.slots[country] as number;
    slots[k++] = single.referrer.slots[referrer] as number;
    slots[k++] = single.pageType.slots[pageType] as number;
    slots[k++] = crossed['segment×category'].slot(segment, category, segments.values, single.category.values);
    slots[k++] = crossed['device×category'].slot(
      device,
      category,
      single.device.values,
      single.category.values,
    );
    slots[k++] = crossed['referrer×pageType'].slot(
      referrer,
      pageType,
      single.referrer.values,
      single.pageType.values,
    );
    slots[k++] = crossed['user×category'].slot(user, category, single.user.values, single.category.values);
    slots[k++] = crossed['priceBucket×category'].slot(
      priceBucket,
      category,
      PRICE_BUCKET_NAMES,
      single.category.values,
    );
    slots[k++] = bucketSlots.clicksBefore[bucketOf(session.clicksBefore, BUCKETS.clicksBefore)] as number;
    slots[k++] = bucketSlots.secondsInSession[bucketOf(secondsInSession, BUCKETS.secondsInSession)] as number;
    slots[k++] = bucketSlots.priceLog2[priceBucket] as number;
    slots[k++] = bucketSlots.categoriesSeen[
      bucketOf(session.categoriesSeen, BUCKETS.categoriesSeen)
    ] as number;
    slots[k++] = bucketSlots.hourOfDay[bucketOf(hour, BUCKETS.hourOfDay)] as number;
    const { indices, values } = countedSlots(slots, k);
    indices.push(this.hashSize, this.hashSize + 1, this.hashSize + 2);
    values.push(
      Math.log1p(Math.max(0, click.price)) / 10,
      Math.min(session.clicksBefore, 20) / 20,
      Math.log1p(secondsInSession) / 10,
    );
    return { indices, values };
  }
}

interface SlotTables {
  single: Record<(typeof CATEGORICAL)[number], ValueIds>;
  crossed: Record<(typeof CROSSES)[number], CrossSlots>;
  /** (country, device) → id of the segment "country/device". */
  segments: SegmentIds;
  bias: number;
  /** Slot of each bucket index, per bucketed feature. */
  bucketSlots: Record<keyof typeof BUCKETS, number[]>;
  scratch: Int32Array;
  /** Distinct values held, all features together. */
  held: { count: number };
}

const PRICE_BUCKET_NAMES = BUCKETS.priceLog2.map((_, i) => String(i));

function slotTables(spec: FeatureSpec): SlotTables {
  const hashed = (text: string) => murmur3(text, spec.seed) & (spec.hashSize - 1);
  const held = { count: 0 };
  const single = Object.fromEntries(
    CATEGORICAL.map((name) => [name, new ValueIds(`${name}=`, hashed, held)]),
  ) as SlotTables['single'];
  const segments = new SegmentIds(held);
  return {
    single,
    crossed: Object.fromEntries(
      CROSSES.map((name) => [name, new CrossSlots(`${name}=`, hashed)]),
    ) as SlotTables['crossed'],
    segments,
    bias: hashed('bias=1'),
    bucketSlots: Object.fromEntries(
      Object.entries(BUCKETS).map(([name, boundaries]) => [
        name,
        boundaries.map((_, i) => hashed(`${name}=${i}`)),
      ]),
    ) as SlotTables['bucketSlots'],
    scratch: new Int32Array(spec.maxNonZero),
    held,
  };
}

/** Most distinct values remembered, all features together, before the memory starts over. */
const SLOT_CACHE_SIZE = 200_000;

/** The values of one feature as small ids (first seen, first numbered), and each one's slot. */
class ValueIds {
  private readonly ids = new Map<string, number>();
  readonly values: string[] = [];
  readonly slots: number[] = [];
  constructor(
    private readonly prefix: string,
    private readonly hashed: (text: string) => number,
    private readonly held: { count: number },
  ) {}

  id(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.values.length;
      this.ids.set(value, id);
      this.values.push(value);
      this.slots.push(this.hashed(this.prefix + value));
      this.held.count++;
    }
    return id;
  }

  slotOf(value: string): number {
    return this.slots[this.id(value)] as number;
  }
}

/** Segment ids by (country id, device id); the segment's name is built once per pair. */
class SegmentIds {
  private readonly ids = new PairGrid();
  readonly values: string[] = [];
  constructor(private readonly held: { count: number }) {}

  id(country: number, device: number, countries: ValueIds, devices: ValueIds): number {
    let id = this.ids.get(country, device);
    if (id === undefined) {
      id = this.values.length;
      this.values.push(segmentOf(countries.values[country] as string, devices.values[device] as string));
      this.ids.set(country, device, id);
      this.held.count++;
    }
    return id;
  }
}

/** Slots of a cross "a|b" by the ids of a and b. */
class CrossSlots {
  private readonly slots = new PairGrid();
  constructor(
    private readonly prefix: string,
    private readonly hashed: (text: string) => number,
  ) {}

  slot(a: number, b: number, aValues: readonly string[], bValues: readonly string[]): number {
    let slot = this.slots.get(a, b);
    if (slot === undefined) {
      slot = this.hashed(`${this.prefix}${aValues[a]}|${bValues[b]}`);
      this.slots.set(a, b, slot);
    }
    return slot;
  }
}

/** A number per pair of small ids: a row per first id, a column per second. */
class PairGrid {
  private readonly rows: (number[] | undefined)[] = [];

  get(a: number, b: number): number | undefined {
    return this.rows[a]?.[b];
  }

  set(a: number, b: number, value: number): void {
    (this.rows[a] ??= [])[b] = value;
  }
}

/** The first k slots ascending, each once, with how often it occurs (colliding slots add up). */
function countedSlots(slots: Int32Array, k: number): { indices: number[]; values: number[] } {
  // Insertion sort: 18 slots, mostly one call; a typed-array sort cost a view and a native call.
  for (let i = 1; i < k; i++) {
    const slot = slots[i] as number;
    let j = i - 1;
    while (j >= 0 && (slots[j] as number) > slot) {
      slots[j + 1] = slots[j] as number;
      j--;
    }
    slots[j + 1] = slot;
  }
  const indices: number[] = [];
  const values: number[] = [];
  let last = -1;
  for (let i = 0; i < k; i++) {
    const slot = slots[i] as number;
    if (slot === indices[last]) values[last] = (values[last] as number) + 1;
    else {
      indices.push(slot);
      values.push(1);
      last++;
    }
  }
  return { indices, values };
}
