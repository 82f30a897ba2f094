// Trainer checkpoints: the learner's state (weights and optimizer state, holdout, progressive
// window) together with the input offsets it reflects, in one file written atomically (temporary
// file, fsync, rename, fsync of the folder), with a sha256 over the body so a torn or edited file
// is refused rather than trained on. A restart loads the newest checkpoint and seeks the inputs to
// its offsets: no example is learned twice or skipped.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { CheckpointCorruptError, FlywheelError } from '../common/errors.js';
import type { BaselineState } from '../model/baseline.js';
import type { FtrlParams } from '../model/ftrl.js';
import type { HeldExample, LearnerState } from './online.js';
import type { MergerMemory } from './label-policy.js';
import {
  CURRENT_VERSION,
  MAGIC,
  bytesOf,
  checkpointType,
  decodeBody,
  magicOf,
  readers,
  type RawCheckpoint,
} from './checkpoint-layout.js';
import { slim, type PipelineState } from './pipeline.js';
import type { ReadOrderState } from './read-order.js';

/** Writes an older layout (its first shape: what older trainers wrote); for tests of old files. */
export function encodeCheckpointAs(version: number, checkpoint: Checkpoint, shape = 0): Buffer {
  const current = encodeCheckpoint(checkpoint);
  const record = checkpointType.fromBuffer(current.subarray(MAGIC.length + 32)) as Record<string, unknown>;
  const reader = readers.get(version)?.[shape];
  if (!reader)
    throw new FlywheelError('FW_CHECKPOINT_CORRUPT', `no checkpoint layout ${version} shape ${shape}`);
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
  merger?: MergerMemory;
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
        userId: e.userId,
        category: e.category,
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
    merger: checkpoint.merger ? JSON.stringify(checkpoint.merger) : '',
  });
  const digest = createHash('sha256').update(body).digest();
  return Buffer.concat([MAGIC, digest, body]);
}

export function decodeCheckpoint(bytes: Buffer, path = 'checkpoint'): Checkpoint {
  return fromRaw(verifiedBody(bytes, path));
}

/** The decoded body of a checkpoint file whose header and sha256 hold. */
function verifiedBody(bytes: Buffer, path: string): RawCheckpoint {
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
  return decoded as RawCheckpoint;
}

function fromRaw(raw: RawCheckpoint): Checkpoint {
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
    ...(raw.merger ? { merger: JSON.parse(raw.merger) as MergerMemory } : {}),
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
    ...(checkpoint.merger ? { merger: checkpoint.merger } : {}),
  };
}
