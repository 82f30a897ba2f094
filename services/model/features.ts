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
const BUCKETS = {
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

  // Values repeat (devices, countries, popular items): remember recent slots, bounded.
  private readonly slotCache = new Map<string, number>();

  private slot(name: string, value: string): number {
    const key = `${name}=${value}`;
    let slot = this.slotCache.get(key);
    if (slot === undefined) {
      slot = murmur3(key, this.seed) & (this.hashSize - 1);
      if (this.slotCache.size >= 200_000) this.slotCache.clear();
      this.slotCache.set(key, slot);
    }
    return slot;
  }

  /** Sparse vector of one click: indices ascending and unique (colliding slots add up). */
  vectorize(click: ClickEvent, session: SessionContext): FeatureVector {
    const secondsInSession = Math.max(0, (click.eventTime - session.sessionStart) / 1000);
    const priceBucket = bucketOf(Math.log2(1 + Math.max(0, click.price)), BUCKETS.priceLog2);
    const segment = segmentOf(click.country, click.device);
    const hour = new Date(click.eventTime).getUTCHours();
    const slots: number[] = [
      this.slot('bias', '1'),
      this.slot('user', click.userId),
      this.slot('item', click.itemId),
      this.slot('category', click.category),
      this.slot('device', click.device),
      this.slot('country', click.country),
      this.slot('referrer', click.referrer),
      this.slot('pageType', click.pageType),
      this.slot('segment×category', `${segment}|${click.category}`),
      this.slot('device×category', `${click.device}|${click.category}`),
      this.slot('referrer×pageType', `${click.referrer}|${click.pageType}`),
      this.slot('user×category', `${click.userId}|${click.category}`),
      this.slot('priceBucket×category', `${priceBucket}|${click.category}`),
      this.slot('clicksBefore', String(bucketOf(session.clicksBefore, BUCKETS.clicksBefore))),
      this.slot('secondsInSession', String(bucketOf(secondsInSession, BUCKETS.secondsInSession))),
      this.slot('priceLog2', String(priceBucket)),
      this.slot('categoriesSeen', String(bucketOf(session.categoriesSeen, BUCKETS.categoriesSeen))),
      this.slot('hourOfDay', String(bucketOf(hour, BUCKETS.hourOfDay))),
    ];
    const sparse = new Map<number, number>();
    for (const s of slots) sparse.set(s, (sparse.get(s) ?? 0) + 1);
    const dense = [
      Math.log1p(Math.max(0, click.price)) / 10,
      Math.min(session.clicksBefore, 20) / 20,
      Math.log1p(secondsInSession) / 10,
    ];
    const indices = [...sparse.keys()].sort((a, b) => a - b);
    const values = indices.map((i) => sparse.get(i) as number);
    dense.forEach((value, i) => {
      indices.push(this.hashSize + i);
      values.push(value);
    });
    return { indices, values };
  }
}
