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
import type { MergeCounters } from './label-policy.js';
import type { LabelerReport } from './labeler-reliability.js';
import type { CandidateTrigger } from './triggers.js';

export function buildTrainerApp(options: {
  metrics: Registry;
  adminToken: string | undefined;
  logger: Logger;
  health: () => Record<string, unknown>;
  readiness: () => { ready: boolean; reason?: string };
  propose: (trigger: CandidateTrigger) => Promise<CandidateResult | null>;
  /** Each labeler measured against outcomes, and what the merger did with human labels. */
  labelers: () => { labelers: readonly LabelerReport[]; counters: MergeCounters };
}): FastifyInstance {
  const app = Fastify({ bodyLimit: 4096 });
  installErrorHandler(app);
  addServiceRoutes(app, options);
  const token = options.adminToken;
  const admins = token ? new TokenTable().add(token, { id: 'admin', role: 'admin' }) : new TokenTable();
  // Who labels how well: for admins (a labeler's record is about a person).
  app.get('/v1/trainer/labelers', { preHandler: requireRole(admins, 'admin') }, () => options.labelers());
  app.post<{ Body: { reason: string; trigger?: 'operator' | 'alarm' } }>(
    '/v1/candidates',
    {
      preHandler: requireRole(admins, 'admin'),
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
