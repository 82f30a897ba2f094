// The operator console's HTTP app: the page (public; every call it makes carries the admin
// token) and its JSON, one route per page. Models and experiments are read from the registry
// folder; monitoring and labeling are asked of their services over HTTP (the console imports no
// other service's code), and a service that does not answer is shown as such, not as an error.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { requireRole, type TokenTable } from '../common/auth.js';
import { installErrorHandler } from '../common/http-errors.js';
import { addServiceRoutes } from '../common/service-routes.js';
import type { ExperimentStore } from '../registry/experiments.js';
import type { FileModelRegistry } from '../registry/store.js';
import { consolePage } from './page.js';

export interface ConsoleOptions {
  registry: FileModelRegistry;
  experiments: ExperimentStore;
  tokens: TokenTable;
  /** Sent to the labeling API's admin routes. */
  adminToken: string;
  monitorUrl: string;
  labelingUrl: string;
  upstreamTimeoutMs: number;
  metrics: Registry;
  logger?: FastifyBaseLogger;
}

type Upstream = { available: true; body: unknown } | { available: false; error: string };

async function ask(url: string, timeoutMs: number, token?: string): Promise<Upstream> {
  try {
    const response = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    });
    if (!response.ok) return { available: false, error: `${url} answered ${response.status}` };
    return { available: true, body: await response.json() };
  } catch (error) {
    return { available: false, error: `${url}: ${(error as Error).message}` };
  }
}

export async function buildConsoleApp(options: ConsoleOptions): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: options.logger, bodyLimit: 4096 });
  installErrorHandler(app);
  addServiceRoutes(app, {
    metrics: options.metrics,
    health: () => ({ ok: true, service: 'console' }),
    readiness: () => ({ ready: true }),
  });
  const page = await consolePage();
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));
  const admins = requireRole(options.tokens, 'admin');
  const { upstreamTimeoutMs: timeout } = options;

  app.get('/v1/console/models', { preHandler: admins }, async () => {
    const [versions, routing, history] = await Promise.all([
      options.registry.list(),
      options.registry.routing(),
      options.registry.history(),
    ]);
    // The references are large and only the monitor reads them.
    return { versions: versions.map(({ reference: _reference, ...v }) => v), routing, history };
  });
  app.get('/v1/console/experiments', { preHandler: admins }, async () => ({
    experiments: await options.experiments.list(),
  }));
  app.get('/v1/console/monitoring', { preHandler: admins }, async () => {
    const base = options.monitorUrl.replace(/\/$/, '');
    const [look, series, alerts] = await Promise.all([
      ask(`${base}/v1/monitor`, timeout),
      ask(`${base}/v1/monitor/series?maxPoints=300`, timeout),
      ask(`${base}/v1/monitor/alerts`, timeout),
    ]);
    return { look, series, alerts };
  });
  app.get('/v1/console/labeling', { preHandler: admins }, async () => ({
    queue: await ask(`${options.labelingUrl.replace(/\/$/, '')}/v1/admin/queue`, timeout, options.adminToken),
  }));
  return app;
}
