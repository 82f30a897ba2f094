// Messages between the scorer's Kafka thread and its scoring worker (worker.ts). Each request
// carries an id; a score request is answered twice: `scored` with the bytes to send, then
// `recorded` once Redis has the batch's clicks (the offsets wait for both).
import type { ModelUpdate } from '../common/contracts.js';
import type { SchemaRegistrySettings } from '../common/runtime.js';
import type { SessionStoreOptions } from './session-store.js';
import type { PipelineLimits, ScoredBatchBytes } from './pipeline.js';
import type { ReviewPolicyConfig } from './review.js';

/** What the worker builds its pipeline from (plain data: it crosses threads). */
export interface WorkerSetup {
  service: string;
  logLevel: string;
  redisUrl: string;
  schemaRegistry: SchemaRegistrySettings;
  registryDir: string;
  hashBits: number;
  sessions: SessionStoreOptions;
  policy: ReviewPolicyConfig;
  limits: PipelineLimits;
}

export interface SerializedError {
  code: string | null;
  message: string;
  retriable: boolean;
}

export type ToWorker =
  | { type: 'apply'; id: number; update: ModelUpdate }
  /** Values packed by packValues; lengths[i] is -1 for a message without a value. */
  | { type: 'score'; id: number; lane: string; bytes: Uint8Array; lengths: Int32Array }
  | { type: 'clearSessions' }
  | { type: 'close'; id: number };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'startFailed'; error: SerializedError }
  | { type: 'applied'; id: number; ok: boolean }
  | { type: 'scored'; id: number; scored: ScoredBatchBytes }
  | { type: 'failed'; id: number; error: SerializedError }
  | { type: 'recorded'; id: number; error?: SerializedError }
  | { type: 'closed'; id: number };

/** Message values end to end in one buffer (it can be transferred), with their lengths. */
export function packValues(values: readonly (Buffer | null)[]): {
  bytes: Uint8Array<ArrayBuffer>;
  lengths: Int32Array<ArrayBuffer>;
} {
  let size = 0;
  for (const value of values) size += value?.length ?? 0;
  const bytes = new Uint8Array(size);
  const lengths = new Int32Array(values.length);
  let at = 0;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!value) lengths[i] = -1;
    else {
      bytes.set(value, at);
      lengths[i] = value.length;
      at += value.length;
    }
  }
  return { bytes, lengths };
}

/** The values packValues packed, as views of its buffer. */
export function unpackValues(bytes: Uint8Array, lengths: Int32Array): (Buffer | null)[] {
  const values = new Array<Buffer | null>(lengths.length);
  let at = 0;
  for (let i = 0; i < lengths.length; i++) {
    const length = lengths[i] as number;
    if (length < 0) values[i] = null;
    else {
      values[i] = Buffer.from(bytes.buffer, bytes.byteOffset + at, length);
      at += length;
    }
  }
  return values;
}
