// Every error code Flywheel uses, in one table: what kind of failure it is, the HTTP status an
// API answers with, whether the same request or batch may succeed later, and what it means.
// Error classes (errors.ts) take their code from here; the README's tables are held to it by a
// test, and an HTTP answer's status is read from it.
//
// - record: the record is at fault; a consumer dead-letters it with this code.
// - service: the service's own failure; a consumer retries the batch with backoff and /readyz
//   shows it while it lasts; the CLI exits non-zero.
// - request: an HTTP API refuses the request.

export type ErrorKind = 'record' | 'service' | 'request';

export interface ErrorSpec {
  kind: ErrorKind;
  status: number;
  retriable: boolean;
  meaning: string;
}

const record = (meaning: string): ErrorSpec => ({ kind: 'record', status: 400, retriable: false, meaning });
const service = (meaning: string, retriable = true, status = 503): ErrorSpec => ({
  kind: 'service',
  status: retriable ? status : 500,
  retriable,
  meaning,
});
const request = (status: number, meaning: string, retriable = false): ErrorSpec => ({
  kind: 'request',
  status,
  retriable,
  meaning,
});

export const ERROR_CODES = {
  // Dead-letter codes.
  FW_EMPTY_MESSAGE: record('the message has no value'),
  FW_BAD_MAGIC_BYTE: record('not Confluent-framed (first byte is not 0)'),
  FW_UNKNOWN_SCHEMA_ID: record('the schema id is not in the registry'),
  FW_SCHEMA_MISMATCH: record("the writer schema cannot be read as this topic's record type"),
  FW_MALFORMED_AVRO: record('the Avro body is cut short, has trailing bytes or does not decode'),
  FW_MESSAGE_TOO_LARGE: record('larger than FW_MAX_MESSAGE_BYTES (never decoded)'),
  FW_INVALID_RECORD: record('decoded but breaks the contract'),
  FW_HANDLER_REJECTED: record("the service's own rule refused this record (reason attached)"),

  // The services' own failures.
  FW_SCHEMA_REGISTRY_UNAVAILABLE: service('the schema registry did not answer (no connection, timeout)'),
  FW_SCHEMA_REGISTRY_REFUSED: service(
    'the schema registry answered with an error (its status and text attached)',
  ),
  FW_SESSION_STATE_UNAVAILABLE: service('the scorer could not read or write session state in Redis'),
  FW_SCORING_WORKER_EXITED: service("the scorer's worker thread exited; a new one starts"),
  FW_SCORING_FAILED: service('the scoring worker failed on a batch for a reason of its own', false),
  FW_KAFKA_UNAVAILABLE: service(
    'a call to Kafka failed or did not finish in time (a send, a transaction, an offset fetch)',
  ),
  FW_KAFKA_CLIENT: service(
    'the Kafka client library lacks what Flywheel relies on (an upgrade moved an internal); the service does not start',
    false,
  ),
  FW_REDIS_UNAVAILABLE: service('a Redis command failed or its connection is closed'),
  FW_UPSTREAM_UNAVAILABLE: service(
    "the console could not reach the registry's admin API to forward an action",
  ),
  FW_SERVICE_FAILURE: service('any other failure (its message in the log)', false),
  FW_STALE_OWNER: service(
    "the joiner's state of a partition was taken over by another owner; the partition is reloaded",
  ),
  FW_JOIN_STATE_MISSING: service(
    "the joiner's Redis state lacks a record it holds an index entry for (Redis lost writes); the batch is retried",
  ),
  FW_TOPIC_LAYOUT: service(
    'the topics do not fit together (the joiner needs as many partitions in fw.predictions as in fw.purchases.repartitioned)',
    false,
  ),
  FW_CHECKPOINT_CORRUPT: service("the trainer's checkpoint is torn or edited; it is not trained on", false),
  FW_CHECKPOINT_MISMATCH: service(
    "the trainer's checkpoint was made with another feature spec; it is not trained on",
    false,
  ),
  FW_CONFIG_INVALID: service('a setting is invalid; the process exits with status 2 before it starts', false),
  FW_USAGE: service(
    'a flywheel command line is wrong (unknown flag, missing value); it exits with status 2',
    false,
  ),
  FW_TIMED_OUT: service(
    'a command waited longer than its time limit for the pipeline (the message says what lagged)',
  ),
  FW_INTERNAL: service(
    'a bug: a condition the code relies on does not hold (the log has the details)',
    false,
  ),

  // Refused HTTP requests.
  FW_BAD_REQUEST: request(400, 'the request is malformed or a value is out of range'),
  FW_UNAUTHORIZED: request(401, 'no bearer token, or an unknown one'),
  FW_FORBIDDEN: request(403, 'the token is valid but its role may not do this'),
  FW_NOT_FOUND: request(404, 'no such route'),
  FW_UNKNOWN_VERSION: request(404, 'no model version with that id'),
  FW_VERSION_REJECTED: request(
    409,
    'the version was rejected by the promotion gate and cannot take an alias',
  ),
  FW_NOTHING_TO_ROLL_BACK: request(409, 'the alias has no earlier version'),
  FW_UNKNOWN_TASK: request(404, 'no labeling task with that id'),
  FW_LEASE_EXPIRED: request(409, 'the labeler holds no lease on the task (it expired, or was never taken)'),
  FW_ALREADY_LABELED: request(409, 'this labeler already labeled the task (nothing changed)'),
  FW_BODY_TOO_LARGE: request(413, 'the request body exceeds the limit'),
  FW_UNSUPPORTED_MEDIA_TYPE: request(415, 'the body is not JSON (or, where accepted, NDJSON)'),
  FW_ARTIFACT_INVALID: request(422, 'an uploaded model is not a valid Flywheel artifact'),
  FW_FEATURE_SPEC_MISMATCH: request(422, 'an uploaded model was built for another feature spec'),
  FW_ARTIFACT_CORRUPT: request(500, 'a stored or uploaded artifact fails its size or sha256 check'),
  FW_INVALID_LABELS: request(
    422,
    'an upload of labeled examples has invalid examples (the message lists them); nothing was published',
  ),
  FW_UNKNOWN_EXPERIMENT: request(404, 'no experiment with that id'),
  FW_EXPERIMENT_CONFLICT: request(
    409,
    'the experiment cannot do that in its state, or its candidate is already in an open one',
  ),
  FW_RETRAIN_UNSUPPORTED: request(422, "the version's training data cannot be replayed"),
  FW_REGISTRY_BUSY: request(503, 'another process holds the registry lock; retry', true),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
type CodesOf<K extends ErrorKind> = {
  [C in ErrorCode]: (typeof ERROR_CODES)[C]['kind'] extends K ? C : never;
}[ErrorCode];
export type DeadLetterCode = CodesOf<'record'>;
export type ServiceFailureCode = CodesOf<'service'>;

export function codesOf<K extends ErrorKind>(kind: K): CodesOf<K>[] {
  return (Object.keys(ERROR_CODES) as ErrorCode[]).filter(
    (code): code is CodesOf<K> => ERROR_CODES[code].kind === kind,
  );
}

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** Stable, documented codes of every dead-letter reason. */
export const DEAD_LETTER_CODES: readonly DeadLetterCode[] = codesOf('record');

/**
 * Codes of the services' own failures: never dead-lettered, retried with backoff, shown in the
 * log and in /readyz while they last.
 */
export const SERVICE_FAILURE_CODES: readonly ServiceFailureCode[] = codesOf('service');
