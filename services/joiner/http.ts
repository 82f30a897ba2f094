// The joiner's HTTP API: health (with each partition's watermark and progress), readiness, metrics.
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import type { Readiness } from '../common/consumer.js';
import { installErrorHandler } from '../common/http-errors.js';
import { addServiceRoutes } from '../common/service-routes.js';

export function buildJoinerApp(options: {
  metrics: Registry;
  health: () => Record<string, unknown>;
  readiness: () => Readiness;
}): FastifyInstance {
  const app = Fastify({ bodyLimit: 1024 });
  installErrorHandler(app);
  addServiceRoutes(app, options);
  return app;
}
