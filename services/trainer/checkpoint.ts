// Trainer checkpoints: the learner's state (weights and optimizer state, holdout, progressive
// window) together with the input offsets it reflects, in one file written atomically (temporary
// file, fsync, rename, fsync of the folder), with a sha256 over the body so a torn or edited file
// is refused rather than trained on. A restart loads the newest checkpoint and seeks the inputs to
// its offsets: no example is learned twice or skipped.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import avro from 'avsc';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { CheckpointCorruptError } from '../common/errors.js';
import type { BaselineState } from '../model/baseline.js';
import type { FtrlParams } from '../model/ftrl.js';
import type { SideLearnerState } from './learners.js';
import type { HeldExample, LearnerState } from './online.js';
import { slim, type PipelineState } from './pipeline.js';
import type { ReadOrderState } from './read-order.js';

// The header names the body's layout version ("FWCK<n>\n"); every older layout is read through
// Avro schema resolution (new fields take their defaults). A new field means a new version.
const CURRENT_VERSION = 6;
const magicOf = (version: number) => Buffer.from(`FWCK${version}\n`);
const MAGIC = magicOf(CURRENT_VERSION);

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
  ],
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
const V5_NAMES = [...V5_FIELDS, ...V6_FIELDS].map((f) => f.name);
const V6_NAMES = V6_FIELDS.map((f) => f.name);

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
};
const allFields = [...checkpointSchema.fields, ...V3_FIELDS, ...V5_FIELDS, ...V6_FIELDS];
const layoutType = (missing: readonly string[]) =>
  avro.Type.forSchema({
    ...checkpointSchema,
    fields: allFields.filter((f) => !missing.includes(f.name)),
  } as avro.Schema);
const checkpointType = layoutType([]);
const readers = new Map(
  Object.entries(OLDER_LAYOUTS).map(([version, shapes]) => [
    Number(version),
    shapes.map((missing) => {
      const type = layoutType(missing);
      return { missing, type, resolver: checkpointType.createResolver(type) };
    }),
  ]),
);

/** Writes an older layout (its first shape: what older trainers wrote); for tests of old files. */
export function encodeCheckpointAs(version: number, checkpoint: Checkpoint, shape = 0): Buffer {
  const current = encodeCheckpoint(checkpoint);
  const record = checkpointType.fromBuffer(current.subarray(MAGIC.length + 32)) as Record<string, unknown>;
  const reader = readers.get(version)?.[shape];
  if (!reader) throw new Error(`no checkpoint layout ${version} shape ${shape}`);
  for (const name of reader.missing) delete record[name];
  const body = reader.type.toBuffer(record);
  return Buffer.concat([magicOf(version), createHash('sha256').update(body).digest(), body]);
}

/** Writes the version 1 layout (what the first trainers wrote). */
export function encodeCheckpointV1(checkpoint: Omit<Checkpoint, 'baseline'>): Buffer {
  return encodeCheckpointAs(1, checkpoint);
}

export interface Checkpoint {
  seq: number;
  writtenAt: number;
  featureSpecHash: string;
  params: FtrlParams;
  /** `topic:partition` → next offset to read. */
  offsets: Record<string, string>;
  state: LearnerState;
  waitingHumanLabels?: HumanLabel[];
  baseline?: BaselineState;
  remembered?: LabeledExample[];
  reference?: HeldExample[];
  labelSources?: Record<string, number>;
  newestEventTime?: number;
  newestLearnedTime?: number;
  order?: ReadOrderState;
  orderComplete?: boolean;
  warmStart?: string | null;
  orderBase?: string | null;
  acceptedLabelRate?: number | null;
}

export function encodeCheckpoint(checkpoint: Checkpoint): Buffer {
  const { state } = checkpoint;
  const body = checkpointType.toBuffer({
    seq: checkpoint.seq,
    writtenAt: checkpoint.writtenAt,
    featureSpecHash: checkpoint.featureSpecHash,
    params: { ...checkpoint.params },
    offsets: checkpoint.offsets,
    z: Buffer.from(state.z.buffer, state.z.byteOffset, state.z.byteLength),
    n: Buffer.from(state.n.buffer, state.n.byteOffset, state.n.byteLength),
    learned: state.learned,
    waitingHumanLabels: JSON.stringify(checkpoint.waitingHumanLabels ?? []),
    baseline: checkpoint.baseline ? JSON.stringify(checkpoint.baseline) : '',
    holdout: state.holdout,
    progressive: state.progressive,
    remembered: (checkpoint.remembered ?? []).map((e) => ({
      predictionId: e.predictionId,
      labelSource: e.labelSource,
      example: {
        exampleId: e.exampleId,
        indices: e.features.indices,
        values: e.features.values,
        label: e.label,
        weight: e.weight,
        itemId: e.itemId,
        segment: e.segment,
        labelTime: e.labelTime,
      },
    })),
    reference: checkpoint.reference ?? [],
    labelSources: checkpoint.labelSources ?? {},
    newestEventTime: checkpoint.newestEventTime ?? 0,
    newestLearnedTime: checkpoint.newestLearnedTime ?? 0,
    orderKeys: checkpoint.order?.keys ?? [],
    orderStarts: checkpoint.order?.starts ?? [],
    orderRuns: checkpoint.order?.runs ?? '',
    orderComplete: checkpoint.orderComplete ?? false,
    warmStart: checkpoint.warmStart ?? '',
    orderBase: checkpoint.orderBase ?? '',
    acceptedLabelRate: checkpoint.acceptedLabelRate ?? null,
    sideLearners: (state.side ?? []).map((side) => ({
      ...side,
      z: bytesOf(side.z),
      n: bytesOf(side.n),
      last: bytesOf(side.last),
    })),
    arrival: state.arrival ?? [],
  });
  const digest = createHash('sha256').update(body).digest();
  return Buffer.concat([MAGIC, digest, body]);
}

const bytesOf = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function decodeBody(body: Buffer, version: number): unknown {
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

export function decodeCheckpoint(bytes: Buffer, path = 'checkpoint'): Checkpoint {
  const header = /^FWCK(\d)\n$/.exec(bytes.subarray(0, MAGIC.length).toString('latin1'));
  const version = header ? Number(header[1]) : 0;
  if (bytes.length < MAGIC.length + 32 || !(version === CURRENT_VERSION || readers.has(version)))
    throw new CheckpointCorruptError(path, 'not a Flywheel trainer checkpoint');
  const digest = bytes.subarray(MAGIC.length, MAGIC.length + 32);
  const body = bytes.subarray(MAGIC.length + 32);
  if (!createHash('sha256').update(body).digest().equals(digest))
    throw new CheckpointCorruptError(path, 'sha256 does not match (torn write or edited file)');
  let decoded: unknown;
  try {
    decoded = decodeBody(body, version);
  } catch (error) {
    throw new CheckpointCorruptError(path, `body does not decode: ${(error as Error).message}`);
  }
  const raw = decoded as {
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
  };
  const held = (h: HeldExample): HeldExample => ({ ...h, indices: [...h.indices], values: [...h.values] });
  const floats = (b: Buffer) => new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  return {
    seq: raw.seq,
    writtenAt: raw.writtenAt,
    featureSpecHash: raw.featureSpecHash,
    params: raw.params as unknown as FtrlParams,
    offsets: raw.offsets,
    waitingHumanLabels: JSON.parse(raw.waitingHumanLabels) as HumanLabel[],
    ...(raw.baseline ? { baseline: JSON.parse(raw.baseline) as BaselineState } : {}),
    state: {
      z: floats(raw.z),
      n: floats(raw.n),
      learned: raw.learned,
      holdout: raw.holdout.map(held),
      progressive: raw.progressive.map((p) => ({ ...p })),
      side: raw.sideLearners.map((side) => ({
        ...side,
        z: floats(side.z),
        n: floats(side.n),
        last: floats(side.last),
        losses: [...side.losses],
        weights: [...side.weights],
      })),
      arrival: raw.arrival.map((p) => ({ ...p })),
    },
    remembered: raw.remembered.map(({ predictionId, labelSource, example }) =>
      slim({
        ...example,
        predictionId,
        labelSource: labelSource as LabeledExample['labelSource'],
        features: { indices: example.indices, values: example.values },
      }),
    ),
    reference: raw.reference.map(held),
    labelSources: { ...raw.labelSources },
    newestEventTime: raw.newestEventTime,
    newestLearnedTime: raw.newestLearnedTime,
    order: { keys: [...raw.orderKeys], starts: [...raw.orderStarts], runs: raw.orderRuns },
    orderComplete: raw.orderComplete,
    warmStart: raw.warmStart || null,
    orderBase: raw.orderBase || null,
    acceptedLabelRate: raw.acceptedLabelRate,
  };
}

/** The newest checkpoint in one file, replaced atomically. */
export class CheckpointStore {
  readonly path: string;

  constructor(directory: string, name = 'trainer.ckpt') {
    this.path = join(directory, name);
  }

  async load(): Promise<Checkpoint | null> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    return decodeCheckpoint(bytes, this.path);
  }

  async save(checkpoint: Checkpoint): Promise<void> {
    const directory = dirname(this.path);
    await mkdir(directory, { recursive: true });
    const temporary = `${this.path}.${process.pid}.tmp`;
    const file = await open(temporary, 'w');
    try {
      await file.writeFile(encodeCheckpoint(checkpoint));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.path);
    // The rename itself must survive a power cut: sync the folder's entry.
    const folder = await open(directory, 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  }

  async clear(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

/** The pipeline state a checkpoint holds (for a restart, or a replay from a candidate's snapshot). */
export function pipelineStateOf(checkpoint: Checkpoint): PipelineState {
  return {
    learner: checkpoint.state,
    waitingHumanLabels: checkpoint.waitingHumanLabels ?? [],
    remembered: checkpoint.remembered ?? [],
    baseline: checkpoint.baseline ?? null,
    reference: checkpoint.reference ?? [],
    labelSources: checkpoint.labelSources ?? {},
    newestEventTime: checkpoint.newestEventTime ?? 0,
    newestLearnedTime: checkpoint.newestLearnedTime ?? 0,
  };
}
