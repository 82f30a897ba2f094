// The record types of every topic, their codecs and their semantic checks. Types mirror
// schemas/*.avsc (newest version of each); test/unit/contracts.test.ts keeps the two in step.
import { AvroCodec } from './avro/codec.js';
import { EmbeddedSchemaRegistry, type SchemaRegistry } from './avro/registry.js';
import { ValidationError } from './errors.js';
import { TOPICS, type TopicName } from './topics.js';

export interface FeatureVector {
  indices: number[];
  values: number[];
}

export interface ClickEvent {
  eventId: string;
  userId: string;
  sessionId: string;
  itemId: string;
  category: string;
  price: number;
  device: string;
  country: string;
  referrer: string;
  eventTime: number;
  pageType: string;
}

export interface PurchaseEvent {
  eventId: string;
  userId: string;
  sessionId: string | null;
  itemId: string;
  category: string;
  price: number;
  quantity: number;
  eventTime: number;
}

export type Arm = 'champion' | 'challenger' | 'shadow' | 'baseline';

export interface Prediction {
  predictionId: string;
  eventId: string;
  userId: string;
  sessionId: string;
  itemId: string;
  category: string;
  segment: string;
  modelVersion: string;
  arm: Arm;
  score: number;
  confidence: number;
  features: FeatureVector;
  featureSpecHash: string;
  eventTime: number;
  serveTime: number;
  reviewRequested: boolean;
  /**
   * Probability with which the arm was chosen for this user (the challenger's share, or the
   * rest for the champion; 1 for a shadow or the baseline). Prediction v2; 1 before.
   */
  propensity: number;
  /** The traffic split that served it (routing.ts, splitId). Prediction v3; null before. */
  split: string | null;
}

export type LabelSource = 'outcome' | 'timeout' | 'human' | 'upload';

export interface LabeledExample {
  exampleId: string;
  predictionId: string;
  eventId: string;
  userId: string;
  itemId: string;
  category: string;
  segment: string;
  label: number;
  labelSource: LabelSource;
  weight: number;
  features: FeatureVector;
  featureSpecHash: string;
  modelVersion: string | null;
  arm: string | null;
  score: number | null;
  clickTime: number;
  purchaseEventId: string | null;
  purchaseTime: number | null;
  labelTime: number;
  delayMs: number | null;
  /** 0 for a prediction's first label; n > 0 for the n-th correction, replacing revision n - 1. */
  revision: number;
  /** The prediction's propensity (LabeledExample v3; 1 before, and for uploads). */
  propensity: number;
  /** The prediction's traffic split (LabeledExample v4; null before, and for uploads). */
  split: string | null;
}

export interface HumanLabel {
  labelId: string;
  taskId: string;
  predictionId: string;
  eventId: string;
  userId: string;
  itemId: string;
  label: number;
  labelerId: string;
  labelTime: number;
  agreement: number | null;
  note: string | null;
  /** Validity flags raised (HumanLabel v2; empty before): a prediction most labelers flag is not trained on. */
  flags: string[];
}

export interface RoutedChallenger {
  version: string;
  weight: number;
}

export interface Routing {
  champion: string | null;
  /** The first challenger and its share (challengers[0]), for readers of ModelUpdate v1. */
  challenger: string | null;
  challengerWeight: number;
  shadow: string | null;
  /** Every challenger in bucket order (ModelUpdate v2); empty: `challenger` alone. */
  challengers: RoutedChallenger[];
  /** Share of users the heuristic baseline serves: a permanent small control arm. */
  baselineWeight: number;
  /** Segments (country/device, '*' for any part) the split applies to; empty: all traffic. */
  segments: string[];
}

export { EMPTY_ROUTING, routingOf } from './routing.js';

export interface ModelUpdate {
  updateId: string;
  alias: string;
  version: string | null;
  artifactUri: string | null;
  sha256: string | null;
  modelKind: string | null;
  featureSpecHash: string | null;
  routing: Routing;
  reason: string;
  actor: string;
  updateTime: number;
}

export interface DeadLetter {
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer>;
  sourceTimestamp: number | null;
  errorCode: string;
  reason: string;
  service: string;
  consumerGroup: string | null;
  failedAt: number;
}

export interface RecordTypes {
  click: ClickEvent;
  purchase: PurchaseEvent;
  prediction: Prediction;
  labeledExample: LabeledExample;
  humanLabel: HumanLabel;
  modelUpdate: ModelUpdate;
  deadLetter: DeadLetter;
}
export type RecordKind = keyof RecordTypes;

/** Limits the checks apply; from config (FW_MAX_CLOCK_SKEW_MS) or defaults. */
export interface ValidationLimits {
  now: number;
  maxClockSkewMs: number;
}

// Event times before this are absurd for a live stream (and catch seconds-instead-of-ms bugs).
const EARLIEST_EVENT_TIME = Date.UTC(2000, 0, 1);
const MAX_PRICE = 1_000_000;
const MAX_QUANTITY = 10_000;
const MAX_ID_LENGTH = 256;
/** Categories, devices, countries, segments, hashes: short labels, never documents. */
const MAX_TEXT_LENGTH = 1000;
const MAX_NOTE_LENGTH = 10_000;
/** Validity flags of a human label: a few short ids. */
const [MAX_FLAGS, MAX_FLAG_LENGTH] = [20, 64];
const MAX_FEATURES = 100_000;
/** Feature slots are array indices (the hash space plus a few dense slots). */
const MAX_FEATURE_INDEX = 2 ** 31 - 1;

type Check = (problems: string[], limits: ValidationLimits) => void;

function ids(record: object, names: string[]): Check {
  return (problems) => {
    for (const name of names) {
      const value = (record as Record<string, unknown>)[name];
      if (typeof value !== 'string' || value.trim() === '') problems.push(`${name} is missing`);
      else if (value.length > MAX_ID_LENGTH)
        problems.push(`${name} is longer than ${MAX_ID_LENGTH} characters`);
    }
  };
}

/** Free-text fields: may be empty (or null), never longer than `max`. */
function texts(record: object, names: string[], max = MAX_TEXT_LENGTH): Check {
  return (problems) => {
    for (const name of names) {
      const value = (record as Record<string, unknown>)[name];
      if (typeof value === 'string' && value.length > max)
        problems.push(`${name} is longer than ${max} characters`);
    }
  };
}

/** A time as a person reads it, or the raw number where it is not a representable date. */
export function shownTime(value: number): string {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}

function eventTime(name: string, value: number | null, optional = false): Check {
  return (problems, { now, maxClockSkewMs }) => {
    if (value === null && optional) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < EARLIEST_EVENT_TIME) {
      problems.push(`${name} ${value} is before 2000-01-01 (expected milliseconds since the epoch)`);
    } else if (value > now + maxClockSkewMs) {
      problems.push(`${name} ${shownTime(value)} is more than ${maxClockSkewMs} ms in the future`);
    }
  };
}

function range(name: string, value: number | null, min: number, max: number, optional = false): Check {
  return (problems) => {
    if (value === null && optional) return;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max)
      problems.push(`${name} ${value} is outside [${min}, ${max}]`);
  };
}

/** The split's shares each in [0, 1] and together at most 1; bounded lists (16 challengers). */
function split({ challengers, segments, baselineWeight }: Routing): Check {
  return (problems, limits) => {
    if (challengers.length > 16 || segments.length > 256)
      problems.push('routing lists too many arms or segments');
    for (const c of challengers)
      range(`challenger ${c.version.slice(0, 40)} weight`, c.weight, 0, 1)(problems, limits);
    const total = challengers.reduce((sum, c) => sum + c.weight, baselineWeight);
    if (total > 1 + 1e-9) problems.push(`routing shares add up to ${total} (above 1)`);
    if (segments.some((s) => s.length > MAX_TEXT_LENGTH)) problems.push('a routing segment is too long');
  };
}

function features(vector: FeatureVector): Check {
  return (problems) => {
    const { indices, values } = vector;
    if (indices.length !== values.length) {
      problems.push(`features has ${indices.length} indices but ${values.length} values`);
      return;
    }
    if (indices.length > MAX_FEATURES) problems.push(`features has more than ${MAX_FEATURES} entries`);
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i] as number;
      if (!Number.isInteger(index) || index < 0 || index > MAX_FEATURE_INDEX) {
        problems.push(`features index ${index} at position ${i} is not a slot in [0, ${MAX_FEATURE_INDEX}]`);
        return;
      }
      if (!Number.isFinite(values[i])) {
        problems.push(`features value ${values[i]} at position ${i} is not a finite number`);
        return;
      }
    }
  };
}

/** Semantic checks per record kind, beyond what the Avro schema can say. */
const CHECKS: { [K in RecordKind]: (record: RecordTypes[K]) => Check[] } = {
  click: (c) => [
    ids(c, ['eventId', 'userId', 'sessionId', 'itemId']),
    texts(c, ['category', 'device', 'country', 'referrer', 'pageType']),
    range('price', c.price, 0, MAX_PRICE),
    eventTime('eventTime', c.eventTime),
  ],
  purchase: (p) => [
    ids(p, ['eventId', 'userId', 'itemId']),
    texts(p, ['sessionId', 'category'], MAX_ID_LENGTH),
    range('price', p.price, 0, MAX_PRICE),
    range('quantity', p.quantity, 1, MAX_QUANTITY),
    eventTime('eventTime', p.eventTime),
  ],
  prediction: (p) => [
    ids(p, ['predictionId', 'eventId', 'userId', 'sessionId', 'itemId', 'modelVersion']),
    texts(p, ['category', 'segment', 'featureSpecHash']),
    range('score', p.score, 0, 1),
    range('confidence', p.confidence, 0, 1),
    range('propensity', p.propensity, Number.MIN_VALUE, 1),
    features(p.features),
    eventTime('eventTime', p.eventTime),
    range('serveTime', p.serveTime, EARLIEST_EVENT_TIME, Number.MAX_SAFE_INTEGER),
  ],
  labeledExample: (e) => [
    ids(e, ['exampleId', 'predictionId', 'userId']),
    texts(e, ['eventId', 'itemId', 'category', 'segment', 'featureSpecHash', 'modelVersion', 'arm']),
    texts(e, ['purchaseEventId'], MAX_ID_LENGTH),
    range('label', e.label, 0, 1),
    range('weight', e.weight, 0, 1000),
    range('score', e.score, 0, 1, true),
    features(e.features),
    eventTime('clickTime', e.clickTime),
    eventTime('purchaseTime', e.purchaseTime, true),
    eventTime('labelTime', e.labelTime),
    range('delayMs', e.delayMs, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true),
    range('revision', e.revision, 0, 1_000_000),
    range('propensity', e.propensity, Number.MIN_VALUE, 1),
  ],
  humanLabel: (l) => [
    ids(l, ['labelId', 'taskId', 'predictionId', 'userId', 'labelerId']),
    texts(l, ['eventId', 'itemId']),
    texts(l, ['note'], MAX_NOTE_LENGTH),
    range('label', l.label, 0, 1),
    range('agreement', l.agreement, 0, 1, true),
    eventTime('labelTime', l.labelTime),
    (problems) => {
      if (l.flags.length > MAX_FLAGS || l.flags.some((f) => f.length === 0 || f.length > MAX_FLAG_LENGTH))
        problems.push(`flags: at most ${MAX_FLAGS} ids of 1 to ${MAX_FLAG_LENGTH} characters`);
    },
  ],
  modelUpdate: (u) => [
    ids(u, ['updateId', 'alias']),
    range('challengerWeight', u.routing.challengerWeight, 0, 1),
    range('baselineWeight', u.routing.baselineWeight, 0, 1),
    split(u.routing),
  ],
  deadLetter: (d) => [ids(d, ['sourceTopic', 'errorCode'])],
};

/** Problems with a decoded record; empty when it is fine. */
export function findProblems<K extends RecordKind>(
  kind: K,
  record: RecordTypes[K],
  limits: ValidationLimits,
): string[] {
  const problems: string[] = [];
  try {
    for (const check of CHECKS[kind](record)) check(problems, limits);
  } catch (error) {
    // A value no check foresaw: the record is refused, the consumer goes on.
    problems.push(`cannot be checked: ${error instanceof Error ? error.message : String(error)}`);
  }
  return problems;
}

export function validate<K extends RecordKind>(
  kind: K,
  record: RecordTypes[K],
  limits: ValidationLimits,
): void {
  const problems = findProblems(kind, record, limits);
  if (problems.length > 0) throw new ValidationError(problems);
}

/** Which topic carries which record kind (subject = `<topic>-value`). */
export const TOPIC_OF: { [K in RecordKind]: TopicName } = {
  click: TOPICS.clicks,
  purchase: TOPICS.purchases,
  prediction: TOPICS.predictions,
  labeledExample: TOPICS.feedback,
  humanLabel: TOPICS.humanLabels,
  modelUpdate: TOPICS.modelUpdates,
  deadLetter: TOPICS.deadLetters,
};

export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

export type Codecs = { [K in RecordKind]: AvroCodec<RecordTypes[K]> };

/**
 * One codec per record kind. Reader schemas are always the newest embedded versions; ids come
 * from `registry` (the embedded one unless a Confluent registry is configured).
 */
export function createCodecs(
  registry: SchemaRegistry,
  embedded: EmbeddedSchemaRegistry = registry instanceof EmbeddedSchemaRegistry
    ? registry
    : new EmbeddedSchemaRegistry(),
): Codecs {
  const make = <K extends RecordKind>(kind: K): AvroCodec<RecordTypes[K]> => {
    const subject = subjectOf(TOPIC_OF[kind]);
    return new AvroCodec<RecordTypes[K]>(registry, subject, embedded.latest(subject));
  };
  return Object.fromEntries(
    (Object.keys(TOPIC_OF) as RecordKind[]).map((kind) => [kind, make(kind)]),
  ) as Codecs;
}
