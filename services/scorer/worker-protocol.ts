// Messages between the scorer's Kafka thread and its scoring worker (worker.ts). Each request
// carries an id; a score request is answered twice: `scored` with the bytes to send, then
// `recorded` once Redis has the batch's clicks (the offsets wait for both).
import type { ModelUpdate } from '../common/contracts.js';
import type { SessionStoreOptions } from './session-store.js';
import type { PipelineLimits, ScoredBatchBytes } from './pipeline.js';
import type { ReviewPolicyConfig } from './review.js';

/** What the worker builds its pipeline from (plain data: it crosses threads). */
export interface WorkerSetup {
  service: string;
  logLevel: string;
  redisUrl: string;
  schemaRegistryUrl: string | undefined;
  registryDir: string;
  hashBits: number;
  sessions: SessionStoreOptions;
  policy: ReviewPolicyConfig;
  limits: PipelineLimits;
  slice: number;
}

export interface SerializedError {
  code: string | null;
  message: string;
  retriable: boolean;
}

export type ToWorker =
  | { type: 'apply'; id: number; update: ModelUpdate }
  /** Values packed end to end; lengths[i] is -1 for a message without a value. */
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
