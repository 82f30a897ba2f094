// Predict API: the scorer's models over HTTP. POST /v1/predict scores one click or a batch
// with the same feature and routing code as the stream (session context is read from Redis,
// not changed); GET /v1/models shows the routing in force; health, readiness and metrics.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Readiness } from '../common/consumer.js';
import type { ClickEvent } from '../common/contracts.js';
import { findProblems } from '../common/contracts.js';
import { HttpError, installErrorHandler } from '../common/http-errors.js';
import { addServiceRoutes } from '../common/service-routes.js';
import { histogram } from '../common/metrics.js';
import type { FeatureSpec } from '../model/features.js';
import type { ModelManager } from './model-manager.js';
import type { ReviewPolicyConfig } from './review.js';
import { scoreBatch } from './scoring.js';
import type { RedisSessionStore } from './session-store.js';

export interface PredictAppOptions {
  manager: ModelManager;
  spec: FeatureSpec;
  sessions: RedisSessionStore;
  policy: ReviewPolicyConfig;
  metrics: Registry;
  /** Whether the scorer can serve and make progress; the reason when not. */
  readiness: () => Readiness;
  logger?: FastifyBaseLogger;
  bodyLimit: number;
  maxEvents: number;
  debugFeatures: boolean;
  maxClockSkewMs: number;
}

const clickSchema = {
  type: 'object',
  required: [
    'eventId',
    'userId',
    'sessionId',
    'itemId',
    'category',
    'price',
    'device',
    'country',
    'referrer',
    'eventTime',
  ],
  additionalProperties: false,
  properties: {
    eventId: { type: 'string', minLength: 1, maxLength: 256 },
    userId: { type: 'string', minLength: 1, maxLength: 256 },
    sessionId: { type: 'string', minLength: 1, maxLength: 256 },
    itemId: { type: 'string', minLength: 1, maxLength: 256 },
    category: { type: 'string', minLength: 1, maxLength: 256 },
    price: { type: 'number', minimum: 0, maximum: 1_000_000 },
    device: { type: 'string', maxLength: 64 },
    country: { type: 'string', maxLength: 64 },
    referrer: { type: 'string', maxLength: 64 },
    pageType: { type: 'string', maxLength: 64 },
    eventTime: { type: 'integer', minimum: 946684800000 },
  },
} as const;

type ClickJson = Omit<ClickEvent, 'pageType'> & { pageType?: string };

export function buildPredictApp(options: PredictAppOptions): FastifyInstance {
  const app = Fastify({ loggerInstance: options.logger, bodyLimit: options.bodyLimit });
  installErrorHandler(app);
  observeLatency(app, options.metrics);
  addServiceRoutes(app, {
    metrics: options.metrics,
    health: () => ({ ok: true }),
    readiness: () => {
      const readiness = options.readiness();
      return readiness.ready ? { ready: true, generation: options.manager.current.generation } : readiness;
    },
  });

  app.get('/v1/models', () => {
    const set = options.manager.current;
    return {
      routing: set.routing,
      loaded: [...set.models.keys()],
      generation: set.generation,
      featureSpecHash: options.spec.hash,
    };
  });

  app.post<{ Body: { event?: ClickJson; events?: ClickJson[] }; Querystring: { debug?: boolean } }>(
    '/v1/predict',
    {
      schema: {
        querystring: { type: 'object', properties: { debug: { type: 'boolean' } } },
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            event: clickSchema,
            events: { type: 'array', minItems: 1, maxItems: options.maxEvents, items: clickSchema },
          },
          oneOf: [{ required: ['event'] }, { required: ['events'] }],
        },
      },
    },
    (request) => predict(options, request.body, request.query.debug === true),
  );
  return app;
}

export function httpLatency(metrics: Registry) {
  return histogram(metrics, {
    name: 'flywheel_http_request_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['route', 'status'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  });
}

function observeLatency(app: FastifyInstance, metrics: Registry): void {
  const latency = httpLatency(metrics);
  app.addHook('onResponse', (request, reply, done) => {
    latency.observe(
      { route: request.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
}

/** Scores the clicks as the stream would, reading their sessions without changing them. */
async function predict(
  options: PredictAppOptions,
  body: { event?: ClickJson; events?: ClickJson[] },
  debug: boolean,
) {
  if (debug && !options.debugFeatures)
    throw new HttpError('FW_FORBIDDEN', 'debug output is off (FW_DEBUG_FEATURES)');
  const raw = body.events ?? (body.event ? [body.event] : []);
  const now = Date.now();
  const clicks: ClickEvent[] = raw.map((e) => ({ ...e, pageType: e.pageType ?? 'product' }));
  clicks.forEach((click, i) => {
    const problems = findProblems('click', click, { now, maxClockSkewMs: options.maxClockSkewMs });
    if (problems.length > 0) throw new HttpError('FW_BAD_REQUEST', `events[${i}]: ${problems.join('; ')}`);
  });
  const sessions = await Promise.all(clicks.map((c) => options.sessions.peek(c)));
  const set = options.manager.acquire();
  try {
    const { predictions } = scoreBatch(clicks, sessions, {
      spec: options.spec,
      set,
      policy: options.policy,
      now,
      draw: () => 1,
    });
    return {
      predictions: predictions
        .filter((p) => p.arm !== 'shadow')
        .map((p) => ({
          eventId: p.eventId,
          predictionId: p.predictionId,
          score: p.score,
          confidence: p.confidence,
          modelVersion: p.modelVersion,
          arm: p.arm,
          ...(debug ? { features: p.features, featureSpecHash: p.featureSpecHash } : {}),
        })),
    };
  } finally {
    options.manager.release(set);
  }
}
