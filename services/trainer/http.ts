// The trainer's HTTP API: health, readiness, metrics, and a candidate on request (an operator's
// command or a monitoring alarm), with the admin token.
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import { TokenTable, requireRole } from '../common/auth.js';
import { installErrorHandler } from '../common/http-errors.js';
import { addServiceRoutes } from '../common/service-routes.js';
import type { Logger } from '../common/logger.js';
import type { CandidateResult } from './candidates.js';
import type { CandidateTrigger } from './triggers.js';

export function buildTrainerApp(options: {
  metrics: Registry;
  adminToken: string | undefined;
  logger: Logger;
  health: () => Record<string, unknown>;
  readiness: () => { ready: boolean; reason?: string };
  propose: (trigger: CandidateTrigger) => Promise<CandidateResult | null>;
}): FastifyInstance {
  const app = Fastify({ bodyLimit: 4096 });
  installErrorHandler(app);
  addServiceRoutes(app, options);
  const token = options.adminToken;
  app.post<{ Body: { reason: string; trigger?: 'operator' | 'alarm' } }>(
    '/v1/candidates',
    {
      preHandler: requireRole(
        token ? new TokenTable().add(token, { id: 'admin', role: 'admin' }) : new TokenTable(),
        'admin',
      ),
      schema: {
        body: {
          type: 'object',
          required: ['reason'],
          additionalProperties: false,
          properties: {
            reason: { type: 'string', minLength: 1, maxLength: 1000 },
            trigger: { type: 'string', enum: ['operator', 'alarm'] },
          },
        },
      },
    },
    async (request) => {
      const { reason, trigger = 'operator' } = request.body;
      options.logger.info({ reason, trigger, by: request.principal?.id }, 'candidate requested');
      const result = await options.propose(trigger);
      return result
        ? {
            version: result.version,
            alias: result.alias,
            accepted: result.decision.accept,
            reasons: result.decision.reasons,
            holdout: result.decision.holdout,
            reference: result.decision.reference,
            ...(result.held ? { held: result.held } : {}),
          }
        : { version: null, alias: null, accepted: false, reasons: ['not enough holdout examples yet'] };
    },
  );
  return app;
}
