// Admin HTTP API of the model registry (fastify): the CLI's operations over HTTP, admin token
// required. Schema-first routes; every error answers { error: { code, message } }.
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { requireRole, type TokenTable } from '../common/auth.js';
import { HttpError, installErrorHandler } from '../common/http-errors.js';
import type { RegistryAdmin } from './admin.js';
import { ExperimentAdmin } from './experiment-admin.js';
import { experimentRoutes } from './experiment-http.js';
import { ExperimentStore } from './experiments.js';
import { parseLabelsText } from './label-upload.js';
import { ALIASES, type Alias } from './store.js';

export const MAX_UPLOAD_BYTES = 64 * 1024 * 1024;

export interface RegistryAppOptions {
  admin: RegistryAdmin;
  tokens: TokenTable;
  logger?: FastifyServerOptions['loggerInstance'];
  bodyLimit?: number;
  /** Largest labeled-data upload (POST /v1/labels), in bytes. */
  labelsBodyLimit?: number;
  maxClockSkewMs?: number;
}

export const MAX_LABELS_UPLOAD_BYTES = 16 * 1024 * 1024;

const versionParam = {
  type: 'object',
  required: ['version'],
  properties: { version: { type: 'string', pattern: '^v\\d{6}$' } },
} as const;
const aliasParam = {
  type: 'object',
  required: ['alias'],
  properties: { alias: { type: 'string', enum: ALIASES } },
} as const;
const reasonBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
} as const;

export function buildRegistryApp(options: RegistryAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimit ?? MAX_UPLOAD_BYTES,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  installErrorHandler(app);
  const adminOnly = requireRole(options.tokens, 'admin');

  app.get('/healthz', () => ({ ok: true }));
  // NDJSON stays text here; POST /v1/labels parses it line by line.
  app.addContentTypeParser('application/x-ndjson', { parseAs: 'string' }, (_request, body, done) => {
    done(null, body);
  });

  app.register((api, _opts, done) => {
    api.addHook('preHandler', adminOnly);
    readRoutes(api, options.admin);
    aliasRoutes(api, options.admin);
    uploadRoutes(api, options);
    experimentRoutes(
      api,
      new ExperimentAdmin(new ExperimentStore(options.admin.registry.root), options.admin),
      actor,
    );
    done();
  });
  return app;
}

const actor = (request: FastifyRequest & { principal?: { id: string } }) =>
  request.principal?.id ?? 'unknown';

/** Versions, their differences and the alias history. */
function readRoutes(api: FastifyInstance, admin: RegistryAdmin): void {
  api.get('/v1/models', async () => ({
    routing: await admin.registry.routing(),
    versions: await admin.list(),
  }));

  api.get<{ Params: { version: string } }>(
    '/v1/models/:version',
    { schema: { params: versionParam } },
    (request) => admin.show(request.params.version),
  );

  api.get<{ Params: { a: string; b: string } }>(
    '/v1/models/:a/diff/:b',
    {
      schema: {
        params: {
          type: 'object',
          required: ['a', 'b'],
          properties: {
            a: { type: 'string', pattern: '^v\\d{6}$' },
            b: { type: 'string', pattern: '^v\\d{6}$' },
          },
        },
      },
    },
    (request) => admin.diff(request.params.a, request.params.b),
  );

  api.get('/v1/aliases/history', () => admin.registry.history());
}

/** Promotion, rollback and removal of aliases, each with its actor and reason. */
function aliasRoutes(api: FastifyInstance, admin: RegistryAdmin): void {
  api.post<{
    Params: { version: string };
    Body: { alias: Alias; reason: string; challengerWeight?: number };
  }>(
    '/v1/models/:version/promote',
    {
      schema: {
        params: versionParam,
        body: {
          type: 'object',
          required: ['alias', 'reason'],
          additionalProperties: false,
          properties: {
            alias: { type: 'string', enum: ALIASES },
            reason: { type: 'string', minLength: 1, maxLength: 1000 },
            challengerWeight: { type: 'number', minimum: 0, maximum: 1 },
          },
        },
      },
    },
    (request) =>
      admin.promote(request.params.version, request.body.alias, {
        actor: actor(request),
        reason: request.body.reason,
        challengerWeight: request.body.challengerWeight,
      }),
  );

  api.post<{ Params: { alias: Alias }; Body: { reason: string } }>(
    '/v1/aliases/:alias/rollback',
    { schema: { params: aliasParam, body: reasonBody } },
    (request) => admin.rollback(request.params.alias, { actor: actor(request), reason: request.body.reason }),
  );

  api.delete<{ Params: { alias: Alias }; Body: { reason: string } }>(
    '/v1/aliases/:alias',
    { schema: { params: aliasParam, body: reasonBody } },
    (request) =>
      admin.removeAlias(request.params.alias, { actor: actor(request), reason: request.body.reason }),
  );
}

/** A model built elsewhere, and labeled examples from elsewhere. */
function uploadRoutes(api: FastifyInstance, options: RegistryAppOptions): void {
  const { admin } = options;
  api.post<{ Body: { files: Record<string, string>; description: string } }>(
    '/v1/models',
    {
      schema: {
        body: {
          type: 'object',
          required: ['files', 'description'],
          additionalProperties: false,
          properties: {
            description: { type: 'string', minLength: 1, maxLength: 1000 },
            files: {
              type: 'object',
              minProperties: 1,
              maxProperties: 16,
              propertyNames: { pattern: '^[A-Za-z0-9._-]{1,64}$' },
              additionalProperties: { type: 'string', contentEncoding: 'base64' },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const files: Record<string, Buffer> = {};
      for (const [name, base64] of Object.entries(request.body.files)) {
        if (name === 'metadata.json')
          throw new HttpError('FW_BAD_REQUEST', 'metadata.json belongs to the registry; leave it out');
        if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64))
          throw new HttpError('FW_BAD_REQUEST', `file ${name} is not base64`);
        files[name] = Buffer.from(base64, 'base64');
      }
      const metadata = await admin.upload(files, {
        actor: actor(request),
        description: request.body.description,
      });
      return reply.status(201).send(metadata);
    },
  );

  api.post<{ Body: unknown }>(
    '/v1/labels',
    { bodyLimit: options.labelsBodyLimit ?? MAX_LABELS_UPLOAD_BYTES },
    async (request, reply) => {
      const body = request.body;
      const inputs = typeof body === 'string' ? parseLabelsText(body) : body;
      if (!Array.isArray(inputs))
        throw new HttpError(
          'FW_BAD_REQUEST',
          'send a JSON array of examples (application/json) or one example per line (application/x-ndjson)',
        );
      const result = await admin.importLabels(inputs as unknown[], {
        actor: actor(request),
        maxClockSkewMs: options.maxClockSkewMs ?? 5 * 60_000,
      });
      return reply.status(202).send(result);
    },
  );
}
