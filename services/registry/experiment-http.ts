// The experiments on the admin HTTP API (admin role, like the rest of it): list, show, start
// (queue) a candidate, or several as a group, with its ramp, the baseline's share and segments,
// and an operator's pause, resume, abort or promote. The
// rollout controller decides the rest; every action is in the experiment's decisions.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  MAX_CANDIDATES,
  OPERATOR_ACTIONS,
  rampFor,
  type ExperimentAdmin,
  type OperatorAction,
} from './experiment-admin.js';
import { METRIC_PRESETS, type PrimaryMetric } from './experiments.js';

const idParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^exp-\\d{6}$' } },
} as const;

const reason = { type: 'string', minLength: 1, maxLength: 1000 } as const;

const version = { type: 'string', pattern: '^v\\d{6}$' } as const;

const startBody = {
  type: 'object',
  required: ['reason'],
  // One candidate, or several started together as a group.
  oneOf: [{ required: ['candidate'] }, { required: ['candidates'] }],
  additionalProperties: false,
  properties: {
    candidate: version,
    candidates: { type: 'array', minItems: 1, maxItems: MAX_CANDIDATES, uniqueItems: true, items: version },
    baselineShare: { type: 'number', minimum: 0, maximum: 0.2 },
    mode: { type: 'string', enum: ['split', 'shadow'] },
    segments: {
      type: 'array',
      maxItems: 64,
      items: { type: 'string', pattern: '^[^/\\s]+/[^/\\s]+$', maxLength: 64 },
    },
    reason,
    primary: { type: 'string', enum: Object.keys(METRIC_PRESETS) },
    steps: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      items: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    },
    minOutcomes: { type: 'integer', minimum: 1 },
    minStepSeconds: { type: 'number', minimum: 0 },
    budget: { type: 'integer', minimum: 1 },
    alpha: { type: 'number', exclusiveMinimum: 0, maximum: 0.5 },
  },
} as const;

interface StartBody {
  candidate?: string;
  candidates?: string[];
  baselineShare?: number;
  mode?: 'split' | 'shadow';
  segments?: string[];
  reason: string;
  primary?: PrimaryMetric;
  steps?: number[];
  minOutcomes?: number;
  minStepSeconds?: number;
  budget?: number;
  alpha?: number;
}

export function experimentRoutes(
  api: FastifyInstance,
  experiments: ExperimentAdmin,
  actor: (request: FastifyRequest) => string,
): void {
  api.get('/v1/experiments', async () => ({ experiments: await experiments.list() }));

  api.get<{ Params: { id: string } }>('/v1/experiments/:id', { schema: { params: idParam } }, (request) =>
    experiments.get(request.params.id),
  );

  api.post<{ Body: StartBody }>(
    '/v1/experiments',
    { schema: { body: startBody } },
    async (request, reply) => {
      const { candidate, candidates, reason, minStepSeconds, baselineShare, segments, mode, ...ramp } =
        request.body;
      const records = await experiments.startGroup(candidates ?? [candidate as string], {
        actor: actor(request),
        reason,
        config: rampFor({
          ...ramp,
          minStepMs: minStepSeconds === undefined ? undefined : minStepSeconds * 1000,
        }),
        ...(baselineShare !== undefined ? { baselineShare } : {}),
        ...(mode === 'shadow' ? { mode } : {}),
        ...(segments !== undefined ? { segments } : {}),
      });
      return reply.code(201).send(candidates ? { experiments: records } : records[0]);
    },
  );

  api.post<{ Params: { id: string; action: OperatorAction }; Body: { reason: string } }>(
    '/v1/experiments/:id/:action',
    {
      schema: {
        params: {
          type: 'object',
          required: ['id', 'action'],
          properties: { ...idParam.properties, action: { type: 'string', enum: OPERATOR_ACTIONS } },
        },
        body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason } },
      },
    },
    (request) =>
      experiments.act(request.params.id, request.params.action, {
        actor: actor(request),
        reason: request.body.reason,
      }),
  );
}
