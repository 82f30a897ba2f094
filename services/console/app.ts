// The operator console's HTTP app: the page (public; every call it makes carries the admin
// token) and its JSON, one route per page. Models and experiments are read from the registry
// folder; monitoring and labeling are asked of their services over HTTP (the console imports no
// other service's code), and a service that does not answer is shown as such, not as an error.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type preHandlerHookHandler } from 'fastify';
import type { Registry } from 'prom-client';
import { requireRole, type TokenTable } from '../common/auth.js';
import { FlywheelError } from '../common/errors.js';
import { installErrorHandler } from '../common/http-errors.js';
import { addServiceRoutes } from '../common/service-routes.js';
import type { ExperimentStore } from '../registry/experiments.js';
import type { FileModelRegistry } from '../registry/store.js';
import { consolePage } from './page.js';
import { serviceState } from './pipeline.js';

export interface ConsoleOptions {
  registry: FileModelRegistry;
  experiments: ExperimentStore;
  tokens: TokenTable;
  /** Sent to the labeling API's admin routes. */
  adminToken: string;
  monitorUrl: string;
  labelingUrl: string;
  /** The trainer's API: its labelers measured against outcomes. */
  trainerUrl: string;
  /** The registry's admin API: promotions and rollbacks are forwarded to it with the caller's token. */
  registryUrl: string;
  /** The services of the pipeline view: their /readyz and /metrics. */
  services?: { name: string; url: string }[];
  upstreamTimeoutMs: number;
  metrics: Registry;
  logger?: FastifyBaseLogger;
}

/** Alias moves sent to the page (newest), and experiments whose timelines it draws. */
const HISTORY_SHOWN = 200;
const TIMELINES_DRAWN = 4;

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

/**
 * Promote and roll back: forwarded to the registry's admin API with the operator's own token, so
 * the alias history names who did it, and the registry (the one writer) publishes the change.
 */
async function forward(
  options: ConsoleOptions,
  path: string,
  body: unknown,
  authorization: string | undefined,
): Promise<{ status: number; body: unknown }> {
  const response = await fetch(new URL(path, options.registryUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: authorization ?? '' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(Math.max(options.upstreamTimeoutMs, 10_000)),
  }).catch((error: unknown) => {
    throw new FlywheelError(
      'FW_UPSTREAM_UNAVAILABLE',
      `the registry's admin API at ${options.registryUrl} does not answer (${(error as Error).message}): ` +
        'is `flywheel registry` running, and FW_CONSOLE_REGISTRY_URL its address?',
    );
  });
  const answer: unknown = await response.json().catch(() => null);
  return { status: response.status, body: answer };
}

function aliasActions(app: FastifyInstance, admins: preHandlerHookHandler, options: ConsoleOptions): void {
  const reason = { type: 'string', minLength: 1, maxLength: 1000 } as const;
  app.post<{ Params: { version: string }; Body: { alias: string; reason: string } }>(
    '/v1/console/models/:version/promote',
    {
      preHandler: admins,
      schema: {
        params: {
          type: 'object',
          required: ['version'],
          properties: { version: { type: 'string', pattern: '^v\\d{6}$' } },
        },
        body: {
          type: 'object',
          required: ['alias', 'reason'],
          additionalProperties: false,
          properties: { alias: { type: 'string', enum: ['champion', 'challenger', 'shadow'] }, reason },
        },
      },
    },
    async (request, reply) => {
      const answer = await forward(
        options,
        `/v1/models/${request.params.version}/promote`,
        request.body,
        request.headers.authorization,
      );
      return reply.status(answer.status).send(answer.body);
    },
  );
  app.post<{ Params: { alias: string }; Body: { reason: string } }>(
    '/v1/console/aliases/:alias/rollback',
    {
      preHandler: admins,
      schema: {
        params: {
          type: 'object',
          required: ['alias'],
          properties: { alias: { type: 'string', enum: ['champion', 'challenger', 'shadow'] } },
        },
        body: { type: 'object', required: ['reason'], additionalProperties: false, properties: { reason } },
      },
    },
    async (request, reply) => {
      const answer = await forward(
        options,
        `/v1/aliases/${request.params.alias}/rollback`,
        request.body,
        request.headers.authorization,
      );
      return reply.status(answer.status).send(answer.body);
    },
  );
}

/** Models and experiments, read from the registry folder. */
function registryRoutes(app: FastifyInstance, admins: preHandlerHookHandler, options: ConsoleOptions): void {
  app.get('/v1/console/models', { preHandler: admins }, async () => {
    const [versions, routing, history] = await Promise.all([
      options.registry.list(),
      options.registry.routing(),
      options.registry.history(),
    ]);
    // The references are large and only the monitor reads them; the page shows the newest moves.
    return {
      versions: versions.map(({ reference: _reference, ...v }) => v),
      routing,
      history: history.slice(-HISTORY_SHOWN),
      historyTotal: history.length,
    };
  });
  // The page draws the newest experiments' timelines: the others are sent without theirs.
  app.get('/v1/console/experiments', { preHandler: admins }, async () => {
    const experiments = await options.experiments.list();
    const drawn = new Set(
      experiments
        .filter((e) => e.timeline.length > 1)
        .slice(-TIMELINES_DRAWN)
        .map((e) => e.id),
    );
    return {
      experiments: experiments.map(({ stats: _stats, timeline, ...e }) => ({
        ...e,
        looks: timeline.length,
        timeline: drawn.has(e.id) ? timeline : [],
      })),
    };
  });
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

  registryRoutes(app, admins, options);
  app.get('/v1/console/monitoring', { preHandler: admins }, async () => {
    const base = options.monitorUrl.replace(/\/$/, '');
    const [look, series, alerts] = await Promise.all([
      ask(`${base}/v1/monitor`, timeout, options.adminToken),
      ask(`${base}/v1/monitor/series?maxPoints=300`, timeout, options.adminToken),
      ask(`${base}/v1/monitor/alerts`, timeout, options.adminToken),
    ]);
    return { look, series, alerts };
  });
  app.get('/v1/console/labeling', { preHandler: admins }, async () => {
    const [queue, reliability] = await Promise.all([
      ask(`${options.labelingUrl.replace(/\/$/, '')}/v1/admin/queue`, timeout, options.adminToken),
      ask(`${options.trainerUrl.replace(/\/$/, '')}/v1/trainer/labelers`, timeout, options.adminToken),
    ]);
    return { queue, reliability };
  });
  app.get('/v1/console/dead-letters', { preHandler: admins }, async () => ({
    report: await ask(
      `${options.monitorUrl.replace(/\/$/, '')}/v1/monitor/dead-letters`,
      timeout,
      options.adminToken,
    ),
  }));
  app.get('/v1/console/pipeline', { preHandler: admins }, async () => ({
    services: await Promise.all((options.services ?? []).map((s) => serviceState(s, timeout))),
  }));
  aliasActions(app, admins, options);
  return app;
}
