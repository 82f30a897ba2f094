// Every error Flywheel raises on purpose. `code` is stable (it lands in dead-letter records and
// HTTP responses); `retriable` tells the consumer helper whether to retry or dead-letter.

export interface FlywheelErrorOptions {
  cause?: unknown;
  retriable?: boolean;
}

export class FlywheelError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, options: FlywheelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retriable = options.retriable ?? false;
  }
}

/** Environment configuration is missing or invalid; the message names each variable. */
export class ConfigError extends FlywheelError {
  constructor(message: string) {
    super('FW_CONFIG_INVALID', message);
  }
}

/** Bytes that are not a Confluent-framed Avro record we can read. */
export class DecodeError extends FlywheelError {
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
export class OversizedMessageError extends FlywheelError {
  constructor(size: number, limit: number) {
    super('FW_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** A decoded record whose values break the contract (missing ids, negative price, ...). */
export class ValidationError extends FlywheelError {
  readonly problems: string[];

  constructor(problems: string[]) {
    super('FW_INVALID_RECORD', problems.join('; '));
    this.problems = problems;
  }
}

/** The schema registry could not be reached or answered with an error; worth retrying. */
export class SchemaRegistryError extends FlywheelError {
  constructor(message: string, options: FlywheelErrorOptions = {}) {
    super('FW_SCHEMA_REGISTRY_UNAVAILABLE', message, { retriable: true, ...options });
  }
}

/** Stable, documented codes of every dead-letter reason (the README lists them). */
export const DEAD_LETTER_CODES = [
  'FW_EMPTY_MESSAGE',
  'FW_BAD_MAGIC_BYTE',
  'FW_UNKNOWN_SCHEMA_ID',
  'FW_SCHEMA_MISMATCH',
  'FW_MALFORMED_AVRO',
  'FW_MESSAGE_TOO_LARGE',
  'FW_INVALID_RECORD',
  'FW_HANDLER_REJECTED',
] as const;
export type DeadLetterCode = (typeof DEAD_LETTER_CODES)[number];

export function isRetriable(error: unknown): boolean {
  if (error instanceof FlywheelError) return error.retriable;
  // KafkaJS marks its transient failures the same way.
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

export function errorCode(error: unknown): string {
  return error instanceof FlywheelError ? error.code : 'FW_HANDLER_REJECTED';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
