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
}

export interface Routing {
  champion: string | null;
  challenger: string | null;
  challengerWeight: number;
  shadow: string | null;
}

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

function eventTime(name: string, value: number): Check {
  return (problems, { now, maxClockSkewMs }) => {
    if (!Number.isFinite(value) || value < EARLIEST_EVENT_TIME) {
      problems.push(`${name} ${value} is before 2000-01-01 (expected milliseconds since the epoch)`);
    } else if (value > now + maxClockSkewMs) {
      problems.push(
        `${name} ${new Date(value).toISOString()} is more than ${maxClockSkewMs} ms in the future`,
      );
    }
  };
}

function range(name: string, value: number, min: number, max: number): Check {
  return (problems) => {
    if (!Number.isFinite(value) || value < min || value > max)
      problems.push(`${name} ${value} is outside [${min}, ${max}]`);
  };
}

function features(vector: FeatureVector): Check {
  return (problems) => {
    if (vector.indices.length !== vector.values.length) {
      problems.push(`features has ${vector.indices.length} indices but ${vector.values.length} values`);
    }
  };
}

/** Semantic checks per record kind, beyond what the Avro schema can say. */
const CHECKS: { [K in RecordKind]: (record: RecordTypes[K]) => Check[] } = {
  click: (c) => [
    ids(c, ['eventId', 'userId', 'sessionId', 'itemId']),
    range('price', c.price, 0, MAX_PRICE),
    eventTime('eventTime', c.eventTime),
  ],
  purchase: (p) => [
    ids(p, ['eventId', 'userId', 'itemId']),
    range('price', p.price, 0, MAX_PRICE),
    range('quantity', p.quantity, 1, MAX_QUANTITY),
    eventTime('eventTime', p.eventTime),
  ],
  prediction: (p) => [
    ids(p, ['predictionId', 'eventId', 'userId', 'modelVersion']),
    range('score', p.score, 0, 1),
    range('confidence', p.confidence, 0, 1),
    features(p.features),
    eventTime('eventTime', p.eventTime),
  ],
  labeledExample: (e) => [
    ids(e, ['exampleId', 'predictionId', 'userId']),
    range('label', e.label, 0, 1),
    range('weight', e.weight, 0, 1000),
    features(e.features),
    eventTime('clickTime', e.clickTime),
  ],
  humanLabel: (l) => [
    ids(l, ['labelId', 'taskId', 'predictionId', 'userId', 'labelerId']),
    range('label', l.label, 0, 1),
    eventTime('labelTime', l.labelTime),
  ],
  modelUpdate: (u) => [
    ids(u, ['updateId', 'alias']),
    range('challengerWeight', u.routing.challengerWeight, 0, 1),
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
  for (const check of CHECKS[kind](record)) check(problems, limits);
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
    return new AvroCodec<RecordTypes[K]>(registry, subject, embedded.latest(subject).type);
  };
  return {
    click: make('click'),
    purchase: make('purchase'),
    prediction: make('prediction'),
    labeledExample: make('labeledExample'),
    humanLabel: make('humanLabel'),
    modelUpdate: make('modelUpdate'),
    deadLetter: make('deadLetter'),
  };
}
