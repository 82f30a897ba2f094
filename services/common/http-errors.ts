// Every error code an HTTP API of Flywheel answers with, its status and what it means. One
// registry, so the README's table and the responses cannot drift apart (a test checks both).
import type { FastifyError, FastifyInstance } from 'fastify';
import { FlywheelError } from './errors.js';

export const HTTP_ERRORS = {
  FW_BAD_REQUEST: { status: 400, meaning: 'the request is malformed or a value is out of range' },
  FW_UNAUTHORIZED: { status: 401, meaning: 'no bearer token, or an unknown one' },
  FW_FORBIDDEN: { status: 403, meaning: 'the token is valid but its role may not do this' },
  FW_NOT_FOUND: { status: 404, meaning: 'no such route' },
  FW_UNKNOWN_VERSION: { status: 404, meaning: 'no model version with that id' },
  FW_VERSION_REJECTED: {
    status: 409,
    meaning: 'the version was rejected by the promotion gate and cannot take an alias',
  },
  FW_NOTHING_TO_ROLL_BACK: { status: 409, meaning: 'the alias has no earlier version' },
  FW_UNKNOWN_TASK: { status: 404, meaning: 'no labeling task with that id' },
  FW_LEASE_EXPIRED: {
    status: 409,
    meaning: 'the labeler holds no lease on the task (it expired, or was never taken)',
  },
  FW_ALREADY_LABELED: { status: 409, meaning: 'this labeler already labeled the task (nothing changed)' },
  FW_BODY_TOO_LARGE: { status: 413, meaning: 'the request body exceeds the limit' },
  FW_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'the body is not JSON (or, where accepted, NDJSON)' },
  FW_ARTIFACT_INVALID: { status: 422, meaning: 'an uploaded model is not a valid Flywheel artifact' },
  FW_FEATURE_SPEC_MISMATCH: { status: 422, meaning: 'an uploaded model was built for another feature spec' },
  FW_ARTIFACT_CORRUPT: {
    status: 500,
    meaning: 'a stored or uploaded artifact fails its size or sha256 check',
  },
  FW_INVALID_LABELS: {
    status: 422,
    meaning:
      'an upload of labeled examples has invalid examples (the message lists them); nothing was published',
  },
  FW_RETRAIN_UNSUPPORTED: { status: 422, meaning: "the version's training data cannot be replayed" },
  FW_REGISTRY_BUSY: { status: 503, meaning: 'another process holds the registry lock; retry' },
  FW_KAFKA_UNAVAILABLE: {
    status: 503,
    meaning: 'Kafka did not take the record in time; nothing was recorded, retry the same request',
  },
  FW_INTERNAL: { status: 500, meaning: 'an unexpected error; the server log has the details' },
} as const;
export type HttpErrorCode = keyof typeof HTTP_ERRORS;

export class HttpError extends FlywheelError {
  constructor(code: HttpErrorCode, message: string) {
    super(code, message);
  }
}

function statusOf(code: string): number {
  return (HTTP_ERRORS as Record<string, { status: number }>)[code]?.status ?? 500;
}

/** Answer every error as `{ error: { code, message } }` with the registry's status. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send({ error: { code: 'FW_NOT_FOUND', message: `no route ${request.method} ${request.url}` } });
  });
  app.setErrorHandler((error: FastifyError | FlywheelError, request, reply) => {
    let code: string;
    if (error instanceof FlywheelError) code = error.code in HTTP_ERRORS ? error.code : 'FW_INTERNAL';
    else if (error.validation) code = 'FW_BAD_REQUEST';
    else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') code = 'FW_BODY_TOO_LARGE';
    else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') code = 'FW_UNSUPPORTED_MEDIA_TYPE';
    else if (error.statusCode === 400) code = 'FW_BAD_REQUEST';
    else code = 'FW_INTERNAL';
    const status = statusOf(code);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    const message = code === 'FW_INTERNAL' ? 'internal error' : error.message;
    void reply.status(status).send({ error: { code, message } });
  });
}
