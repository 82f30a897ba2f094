// Every HTTP API of Flywheel answers an error as { error: { code, message } }, with the status
// its code has in ERROR_CODES (error-codes.ts), so the README's table and the answers agree.
import type { FastifyError, FastifyInstance } from 'fastify';
import { ERROR_CODES, type ErrorCode } from './error-codes.js';
import { FlywheelError } from './errors.js';

export { HttpError } from './errors.js';

/** The code a failed request is answered with. */
function codeOf(error: FastifyError | FlywheelError): ErrorCode {
  if (error instanceof FlywheelError) return error.code;
  if (error.validation) return 'FW_BAD_REQUEST';
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return 'FW_BODY_TOO_LARGE';
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return 'FW_UNSUPPORTED_MEDIA_TYPE';
  if (error.statusCode === 400) return 'FW_BAD_REQUEST';
  return 'FW_INTERNAL';
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send({ error: { code: 'FW_NOT_FOUND', message: `no route ${request.method} ${request.url}` } });
  });
  app.setErrorHandler((error: FastifyError | FlywheelError, request, reply) => {
    const code = codeOf(error);
    const { status } = ERROR_CODES[code];
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    // A bug's or an unknown failure's text stays in the log.
    const message =
      code === 'FW_INTERNAL' || code === 'FW_SERVICE_FAILURE' ? 'internal error' : error.message;
    void reply.status(status).send({ error: { code, message } });
  });
}
