// The checkpoint file's layouts. The header names the body's layout version ("FWCK<n>\n"); every
// older layout is read through Avro schema resolution (new fields take their defaults). A new
// field means a new version.
import avro from 'avsc';
import type { SideLearnerState } from './learners.js';
import type { HeldExample, LearnerState } from './online.js';

export const CURRENT_VERSION = 8;
export const magicOf = (version: number) => Buffer.from(`FWCK${version}\n`);
export const MAGIC = magicOf(CURRENT_VERSION);

const heldExampleSchema = {
  type: 'record',
  name: 'HeldExample',
  fields: [
    { name: 'exampleId', type: 'string' },
    { name: 'indices', type: { type: 'array', items: 'int' } },
    { name: 'values', type: { type: 'array', items: 'double' } },
    { name: 'label', type: 'int' },
    { name: 'weight', type: 'double' },
    { name: 'itemId', type: 'string' },
    { name: 'segment', type: 'string' },
    { name: 'labelTime', type: 'long' },
    // Version 7: whose click, and its category (the monitor's reference profiles them).
    { name: 'userId', type: 'string', default: '' },
    { name: 'category', type: 'string', default: '' },
  ],
};
/** The held example of layouts 1 to 6. */
const heldExampleV6Schema = {
  ...heldExampleSchema,
  fields: heldExampleSchema.fields.filter((f) => f.name !== 'userId' && f.name !== 'category'),
};

/** Fields added in versions 3 and 4, each with a default so older files resolve. */
const V3_FIELDS = [
  // Outcome examples remembered for late human labels (the fields training uses).
  {
    name: 'remembered',
    type: {
      type: 'array',
      items: {
        type: 'record',
        name: 'RememberedOutcome',
        fields: [
          { name: 'predictionId', type: 'string' },
          { name: 'labelSource', type: 'string' },
          { name: 'example', type: 'HeldExample' },
        ],
      },
    },
    default: [],
  },
  // Trusted (human or uploaded) examples: the gate's reference set.
  { name: 'reference', type: { type: 'array', items: 'HeldExample' }, default: [] },
  { name: 'labelSources', type: { type: 'map', values: 'long' }, default: {} },
  { name: 'newestEventTime', type: 'long', default: 0 },
  { name: 'newestLearnedTime', type: 'long', default: 0 },
  // The read order (read-order.ts), for replaying a version's lineage.
  { name: 'orderKeys', type: { type: 'array', items: 'string' }, default: [] },
  { name: 'orderStarts', type: { type: 'array', items: 'string' }, default: [] },
  { name: 'orderRuns', type: 'string', default: '' },
  // Whether the order covers all the learner learned (false when resumed from an older file).
  { name: 'orderComplete', type: 'boolean', default: false },
  // The version the learner started from ('' = from zero).
  { name: 'warmStart', type: 'string', default: '' },
  // The candidate whose snapshot the read order starts from ('' = the order starts at the start).
  { name: 'orderBase', type: 'string', default: '' },
  // Label rate of the holdout the last accepted candidate was judged on.
  { name: 'acceptedLabelRate', type: ['null', 'double'], default: null },
];

/** Fields added in version 5. */
const V5_FIELDS = [
  // The learners trained side by side (learners.ts).
  {
    name: 'sideLearners',
    type: {
      type: 'array',
      items: {
        type: 'record',
        name: 'SideLearner',
        fields: [
          { name: 'name', type: 'string' },
          { name: 'spec', type: 'string' },
          { name: 'z', type: 'bytes' },
          { name: 'n', type: 'bytes' },
          { name: 'last', type: 'bytes' },
          { name: 'steps', type: 'long' },
          { name: 'scale', type: 'double' },
          { name: 'shift', type: 'double' },
          { name: 'losses', type: { type: 'array', items: 'double' } },
          { name: 'weights', type: { type: 'array', items: 'double' } },
        ],
      },
    },
    default: [],
  },
];
/** Fields added in version 6: the trainer's own FTRL's losses on arrival (the selection's). */
const V6_FIELDS = [{ name: 'arrival', type: { type: 'array', items: 'Progressive' }, default: [] }];
/** Fields added in version 8: labeler reliability and the outcome rate (MergerMemory, JSON). */
const V8_FIELDS = [{ name: 'merger', type: 'string', default: '' }];
const V8_NAMES = V8_FIELDS.map((f) => f.name);
const V5_NAMES = [...V5_FIELDS, ...V6_FIELDS, ...V8_FIELDS].map((f) => f.name);
const V6_NAMES = [...V6_FIELDS, ...V8_FIELDS].map((f) => f.name);

const checkpointSchema = {
  type: 'record',
  name: 'TrainerCheckpoint',
  fields: [
    { name: 'seq', type: 'long' },
    { name: 'writtenAt', type: 'long' },
    { name: 'featureSpecHash', type: 'string' },
    { name: 'params', type: { type: 'map', values: 'double' } },
    { name: 'offsets', type: { type: 'map', values: 'string' } },
    { name: 'z', type: 'bytes' },
    { name: 'n', type: 'bytes' },
    { name: 'learned', type: 'long' },
    // Human labels still waiting for their outcome example (JSON), so a restart keeps them.
    { name: 'waitingHumanLabels', type: 'string', default: '[]' },
    // The heuristic baseline kept from the learned examples (JSON; '' = none).
    { name: 'baseline', type: 'string', default: '' },
    { name: 'holdout', type: { type: 'array', items: heldExampleSchema } },
    {
      name: 'progressive',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Progressive',
          fields: [
            { name: 'loss', type: 'double' },
            { name: 'weight', type: 'double' },
          ],
        },
      },
    },
  ],
};

/**
 * The fields each older layout lacks, relative to the current one. Version 3 was written in three
 * shapes (fields were added to it without a new version); a body must decode whole under one of
 * them, tried in order.
 */
const OLDER_LAYOUTS: Record<number, readonly (readonly string[])[]> = {
  // 1: no baseline, nothing of version 3 on.
  1: [['baseline', ...V3_FIELDS.map((f) => f.name), ...V5_NAMES]],
  // 2: no remembered outcomes, reference set, read order.
  2: [[...V3_FIELDS.map((f) => f.name), ...V5_NAMES]],
  3: [
    ['newestLearnedTime', 'warmStart', 'orderBase', ...V5_NAMES],
    ['warmStart', 'orderBase', ...V5_NAMES],
    ['orderBase', ...V5_NAMES],
  ],
  // 4: no side learners.
  4: [V5_NAMES],
  // 5: side learners scored before learning, no losses on arrival.
  5: [V6_NAMES],
  // 6: held examples without their user and category (heldExampleV6Schema).
  6: [V8_NAMES],
  // 7: no labeler reliability.
  7: [V8_NAMES],
};
const allFields = [...checkpointSchema.fields, ...V3_FIELDS, ...V5_FIELDS, ...V6_FIELDS, ...V8_FIELDS];
const layoutType = (missing: readonly string[], held = heldExampleSchema) =>
  avro.Type.forSchema({
    ...checkpointSchema,
    fields: allFields
      .filter((f) => !missing.includes(f.name))
      .map((f) => (f.name === 'holdout' ? { ...f, type: { type: 'array', items: held } } : f)),
  } as avro.Schema);
export const checkpointType = layoutType([]);
export const readers = new Map(
  Object.entries(OLDER_LAYOUTS).map(([version, shapes]) => [
    Number(version),
    shapes.map((missing) => {
      const type = layoutType(missing, Number(version) <= 6 ? heldExampleV6Schema : heldExampleSchema);
      return { missing, type, resolver: checkpointType.createResolver(type) };
    }),
  ]),
);

export const bytesOf = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

export function decodeBody(body: Buffer, version: number): unknown {
  const shapes = readers.get(version);
  if (!shapes) return checkpointType.fromBuffer(body);
  let failure: unknown;
  for (const { resolver } of shapes) {
    try {
      return checkpointType.fromBuffer(body, resolver); // throws on trailing data too
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

/** A checkpoint body as Avro decodes it, of any layout (older fields take their defaults). */
export interface RawCheckpoint {
  seq: number;
  writtenAt: number;
  featureSpecHash: string;
  params: Record<string, number>;
  offsets: Record<string, string>;
  z: Buffer;
  n: Buffer;
  learned: number;
  waitingHumanLabels: string;
  baseline: string;
  holdout: LearnerState['holdout'];
  progressive: LearnerState['progressive'];
  remembered: { predictionId: string; labelSource: string; example: HeldExample }[];
  reference: HeldExample[];
  labelSources: Record<string, number>;
  newestEventTime: number;
  newestLearnedTime: number;
  orderKeys: string[];
  orderStarts: string[];
  orderRuns: string;
  orderComplete: boolean;
  warmStart: string;
  orderBase: string;
  acceptedLabelRate: number | null;
  sideLearners: (Omit<SideLearnerState, 'z' | 'n' | 'last'> & { z: Buffer; n: Buffer; last: Buffer })[];
  arrival: LearnerState['progressive'];
  merger: string;
}
