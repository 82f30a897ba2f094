// The feature spec shared by scorer, trainer and batch scoring: a click plus its session
// context become a sparse vector of hashed categorical features, crosses and buckets, plus a
// few dense values in reserved slots after the hash space. The vector is logged with each
// prediction, so training sees exactly what serving saw.
import { createHash } from 'node:crypto';
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
      throw new Error(`hashBits must be an integer in [8, 24], got ${this.hashBits}`);
    }
    this.hashSize = 2 ** this.hashBits;
    this.dimension = this.hashSize + DENSE.length;
    this.maxNonZero = 1 + CATEGORICAL.length + CROSSES.length + Object.keys(BUCKETS).length + DENSE.length;
    this.hash = createHash('sha256').update(JSON.stringify(this.describe())).digest('hex').slice(0, 16);
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

  // The hot path of every scorer: slots are remembered per feature and value (values repeat:
  // devices, countries, popular items), bucket slots are computed once, and no string is built
  // for a value already seen. The definition stays murmur3("name=value") (see the unit test).
  private tables?: SlotTables;

  /** Sparse vector of one click: indices ascending and unique (colliding slots add up). */
  vectorize(click: ClickEvent, session: SessionContext): FeatureVector {
    const secondsInSession = Math.max(0, (click.eventTime - session.sessionStart) / 1000);
    const priceBucket = bucketOf(Math.log2(1 + Math.max(0, click.price)), BUCKETS.priceLog2);
    const hour = Math.floor(click.eventTime / 3_600_000) - 24 * Math.floor(click.eventTime / 86_400_000);
    this.tables ??= slotTables(this);
    const { single, crossed, bucketSlots, scratch: slots } = this.tables;
    let k = 0;
    slots[k++] = this.tables.bias;
    slots[k++] = single.user.get(click.userId);
    slots[k++] = single.item.get(click.itemId);
    slots[k++] = single.category.get(click.category);
    slots[k++] = single.device.get(click.device);
    slots[k++] = single.country.get(click.country);
    slots[k++] = single.referrer.get(click.referrer);
    slots[k++] = single.pageType.get(click.pageType);
    slots[k++] = crossed['segment×category'].get(segmentOf(click.country, click.device), click.category);
    slots[k++] = crossed['device×category'].get(click.device, click.category);
    slots[k++] = crossed['referrer×pageType'].get(click.referrer, click.pageType);
    slots[k++] = crossed['user×category'].get(click.userId, click.category);
    slots[k++] = crossed['priceBucket×category'].get(String(priceBucket), click.category);
    slots[k++] = bucketSlots.clicksBefore[bucketOf(session.clicksBefore, BUCKETS.clicksBefore)] as number;
    slots[k++] = bucketSlots.secondsInSession[bucketOf(secondsInSession, BUCKETS.secondsInSession)] as number;
    slots[k++] = bucketSlots.priceLog2[priceBucket] as number;
    slots[k++] = bucketSlots.categoriesSeen[
      bucketOf(session.categoriesSeen, BUCKETS.categoriesSeen)
    ] as number;
    slots[k++] = bucketSlots.hourOfDay[bucketOf(hour, BUCKETS.hourOfDay)] as number;
    const sorted = slots.subarray(0, k).sort();
    const indices: number[] = [];
    const values: number[] = [];
    for (let i = 0; i < k; i++) {
      const slot = sorted[i] as number;
      if (slot === indices[indices.length - 1]) values[values.length - 1] = (values.at(-1) as number) + 1;
      else {
        indices.push(slot);
        values.push(1);
      }
    }
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
  single: Record<(typeof CATEGORICAL)[number], SlotCache>;
  crossed: Record<(typeof CROSSES)[number], CrossCache>;
  bias: number;
  /** Slot of each bucket index, per bucketed feature. */
  bucketSlots: Record<keyof typeof BUCKETS, number[]>;
  scratch: Int32Array;
}

function slotTables(spec: FeatureSpec): SlotTables {
  const hashed = (text: string) => murmur3(text, spec.seed) & (spec.hashSize - 1);
  return {
    single: Object.fromEntries(
      CATEGORICAL.map((name) => [name, new SlotCache(`${name}=`, hashed)]),
    ) as SlotTables['single'],
    crossed: Object.fromEntries(
      CROSSES.map((name) => [name, new CrossCache(`${name}=`, hashed)]),
    ) as SlotTables['crossed'],
    bias: hashed('bias=1'),
    bucketSlots: Object.fromEntries(
      Object.entries(BUCKETS).map(([name, boundaries]) => [
        name,
        boundaries.map((_, i) => hashed(`${name}=${i}`)),
      ]),
    ) as SlotTables['bucketSlots'],
    scratch: new Int32Array(spec.maxNonZero),
  };
}

/** Most values remembered per feature before the memory starts over. */
const SLOT_CACHE_SIZE = 100_000;

/** value → slot of one feature, bounded. */
class SlotCache {
  private readonly slots = new Map<string, number>();
  constructor(
    private readonly prefix: string,
    private readonly hashed: (text: string) => number,
  ) {}

  get(value: string): number {
    let slot = this.slots.get(value);
    if (slot === undefined) {
      slot = this.hashed(this.prefix + value);
      if (this.slots.size >= SLOT_CACHE_SIZE) this.slots.clear();
      this.slots.set(value, slot);
    }
    return slot;
  }
}

/** (a, b) → slot of a cross "a|b", bounded, without building "a|b" for pairs already seen. */
class CrossCache {
  private readonly byFirst = new Map<string, SlotCache>();
  constructor(
    private readonly prefix: string,
    private readonly hashed: (text: string) => number,
  ) {}

  get(a: string, b: string): number {
    let second = this.byFirst.get(a);
    if (second === undefined) {
      if (this.byFirst.size >= SLOT_CACHE_SIZE) this.byFirst.clear();
      second = new SlotCache(`${this.prefix}${a}|`, this.hashed);
      this.byFirst.set(a, second);
    }
    return second.get(b);
  }
}
