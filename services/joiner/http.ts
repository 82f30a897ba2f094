// The joiner's HTTP API: health (with each partition's watermark and progress), readiness, metrics.
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import type { Readiness } from '../common/consumer.js';
import { installErrorHandler } from '../common/http-errors.js';

export function buildJoinerApp(options: {
  metrics: Registry;
  health: () => Record<string, unknown>;
  readiness: () => Readiness;
}): FastifyInstance {
  const app = Fastify({ bodyLimit: 1024 });
  installErrorHandler(app);
  app.get('/healthz', () => options.health());
  app.get('/readyz', (_request, reply) => {
    const readiness = options.readiness();
    return readiness.ready ? readiness : reply.status(503).send(readiness);
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(options.metrics.contentType).send(await options.metrics.metrics()),
  );
  return app;
}
