// The three routes every service answers, the same way: /healthz (the process is up, with what
// it wants to show), /readyz (503 with the reason while it cannot do its work), /metrics.
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

export interface ServiceRoutes {
  metrics: Registry;
  health: () => Record<string, unknown>;
  readiness: () => { ready: boolean; reason?: string };
}

export function addServiceRoutes(app: FastifyInstance, routes: ServiceRoutes): void {
  app.get('/healthz', () => routes.health());
  app.get('/readyz', (_request, reply) => {
    const readiness = routes.readiness();
    return readiness.ready ? readiness : reply.status(503).send(readiness);
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(routes.metrics.contentType).send(await routes.metrics.metrics()),
  );
}
