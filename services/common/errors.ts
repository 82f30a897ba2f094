// Every error Flywheel raises on purpose. `code` is stable (it lands in dead-letter records, HTTP
// responses, logs and /readyz). The one rule every consumer follows: a `RecordError` says the
// record itself is at fault, and only such a record goes to the dead-letter topic; any other
// failure (Kafka, Redis, the schema registry, the registry's files, a bug) is the service's, so
// the batch is retried with backoff and never dead-lettered or committed past. `retriable` tells
// an HTTP client whether the same request may succeed later.

import { ERROR_CODES, type DeadLetterCode, type ErrorCode } from './error-codes.js';

export {
  DEAD_LETTER_CODES,
  SERVICE_FAILURE_CODES,
  type DeadLetterCode,
  type ErrorCode,
} from './error-codes.js';

export interface FlywheelErrorOptions {
  cause?: unknown;
  retriable?: boolean;
}

export class FlywheelError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;

  /** Retriable as its code's entry in ERROR_CODES says, unless told otherwise. */
  constructor(code: ErrorCode, message: string, options: FlywheelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
  }

  /** The HTTP status an API answers this error with. */
  get httpStatus(): number {
    return ERROR_CODES[this.code].status;
  }
}

/** A bug: a condition the code relies on does not hold. */
export class InternalError extends FlywheelError {
  constructor(message: string) {
    super('FW_INTERNAL', message);
  }
}

/** Throws an InternalError unless the condition holds. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InternalError(message);
}

/** Environment configuration is missing or invalid; the message names each variable. */
export class ConfigError extends FlywheelError {
  constructor(message: string) {
    super('FW_CONFIG_INVALID', message);
  }
}

/** The record itself cannot be used: it is dead-lettered with this code and reason. */
export class RecordError extends FlywheelError {
  readonly recordFault = true;
}

/** Bytes that are not a Confluent-framed Avro record we can read. */
export class DecodeError extends RecordError {
  constructor(code: DecodeErrorCode, message: string, options: FlywheelErrorOptions = {}) {
    super(code, message, options);
  }
}

export type DecodeErrorCode =
  | 'FW_EMPTY_MESSAGE'
  | 'FW_BAD_MAGIC_BYTE'
  | 'FW_UNKNOWN_SCHEMA_ID'
  | 'FW_SCHEMA_MISMATCH'
  | 'FW_MALFORMED_AVRO';

/** A message larger than the consumer accepts; never decoded. */
export class OversizedMessageError extends RecordError {
  constructor(size: number, limit: number) {
    super('FW_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** A decoded record whose values break the contract (missing ids, negative price, ...). */
export class ValidationError extends RecordError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super('FW_INVALID_RECORD', problems.join('; '));
    this.problems = problems;
  }
}

/**
 * A service's own rule refuses this record (its reason attached); thrown by a batch handler.
 * The code is FW_HANDLER_REJECTED unless the service names one of the dead-letter codes.
 */
export class RecordRejectedError extends RecordError {
  constructor(reason: string, options: FlywheelErrorOptions & { code?: DeadLetterCode } = {}) {
    super(options.code ?? 'FW_HANDLER_REJECTED', reason, options);
  }
}

/**
 * The schema registry could not be reached, timed out, or refused a request (wrong URL,
 * credentials, a subject it will not register). Never the record's fault: retried.
 * `status` is the registry's HTTP status (null when it did not answer).
 */
export class SchemaRegistryError extends FlywheelError {
  readonly status: number | null;

  constructor(message: string, options: FlywheelErrorOptions & { status?: number | null } = {}) {
    super(
      options.status === undefined || options.status === null
        ? 'FW_SCHEMA_REGISTRY_UNAVAILABLE'
        : 'FW_SCHEMA_REGISTRY_REFUSED',
      message,
      { retriable: true, ...options },
    );
    this.status = options.status ?? null;
  }
}

/** A command line the CLI cannot run (unknown flag, missing value); it exits with status 2. */
export class UsageError extends FlywheelError {
  constructor(message: string) {
    super('FW_USAGE', message);
  }
}

/** The trainer's checkpoint is torn or edited: it is never trained on (an operator moves it away). */
export class CheckpointCorruptError extends FlywheelError {
  constructor(path: string, why: string) {
    super(
      'FW_CHECKPOINT_CORRUPT',
      `checkpoint ${path} is unusable: ${why}. Not trained on; move it away to start over (from the champion, or from zero)`,
    );
  }
}

/** Another joiner took the partition's state over, or it is out of step: the partition is reloaded. */
export class StaleOwnerError extends FlywheelError {
  constructor(partition: number) {
    super(
      'FW_STALE_OWNER',
      `partition ${partition}: the join state was taken over by another owner, or is out of step`,
      { retriable: true },
    );
  }
}

/** An HTTP API refuses the request. */
export class HttpError extends FlywheelError {
  constructor(code: 'FW_BAD_REQUEST' | 'FW_UNAUTHORIZED' | 'FW_FORBIDDEN' | 'FW_NOT_FOUND', message: string) {
    super(code, message);
  }
}

/** A model artifact that fails its checks, built or read. */
export class ArtifactError extends FlywheelError {
  constructor(
    code: 'FW_ARTIFACT_CORRUPT' | 'FW_ARTIFACT_INVALID' | 'FW_FEATURE_SPEC_MISMATCH',
    message: string,
  ) {
    super(code, message);
  }
}

/** The model registry refuses an operation. */
export class RegistryError extends FlywheelError {
  constructor(
    code:
      | 'FW_UNKNOWN_VERSION'
      | 'FW_VERSION_REJECTED'
      | 'FW_REGISTRY_BUSY'
      | 'FW_NOTHING_TO_ROLL_BACK'
      | 'FW_BAD_REQUEST'
      | 'FW_RETRAIN_UNSUPPORTED'
      | 'FW_UNKNOWN_EXPERIMENT'
      | 'FW_EXPERIMENT_CONFLICT',
    message: string,
  ) {
    super(code, message);
  }
}

/** An upload of labeled examples with invalid ones; nothing of it is published. */
export class InvalidLabelsError extends FlywheelError {
  constructor(
    message: string,
    readonly problems: { index: number; problems: string[] }[],
  ) {
    super('FW_INVALID_LABELS', message);
  }
}

/** The labeling queue refuses a labeler's action on a task. */
export class QueueError extends FlywheelError {
  constructor(
    code: 'FW_UNKNOWN_TASK' | 'FW_LEASE_EXPIRED' | 'FW_ALREADY_LABELED',
    message: string,
    readonly taskId: string,
  ) {
    super(code, message);
  }
}

/** Whether the record is at fault (dead-letter it) rather than the service (retry). */
export function isRecordFault(error: unknown): error is RecordError {
  return error instanceof RecordError;
}

export function isRetriable(error: unknown): boolean {
  if (error instanceof FlywheelError) return error.retriable;
  // KafkaJS marks its transient failures the same way.
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

/** The code of a failure: a Flywheel error's own, Kafka's or Redis's, else the generic one. */
export function errorCode(error: unknown): ErrorCode {
  if (error instanceof FlywheelError) return error.code;
  const name = error instanceof Error ? error.name : '';
  if (name.startsWith('KafkaJS')) return 'FW_KAFKA_UNAVAILABLE';
  // ioredis: a reply error, retries used up, or a closed connection.
  if (
    name === 'ReplyError' ||
    name === 'MaxRetriesPerRequestError' ||
    /Connection is closed/.test(errorMessage(error))
  )
    return 'FW_REDIS_UNAVAILABLE';
  return 'FW_SERVICE_FAILURE';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
