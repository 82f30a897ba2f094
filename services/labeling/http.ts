// Labeler HTTP API: labelers pull the next task under a lease, answer it (label, skip,
// unclear); each label goes to fw.labels.human. Admins see queue statistics. Bearer tokens
// carry the labeler's identity and role.
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type preHandlerHookHandler } from 'fastify';
import type { Registry } from 'prom-client';
import { requireRole, type TokenTable } from '../common/auth.js';
import type { HumanLabel } from '../common/contracts.js';
import { installErrorHandler } from '../common/http-errors.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { addServiceRoutes } from '../common/service-routes.js';
import { DEFAULT_FLAGS, DEFAULT_QUESTION, type ValidityFlag } from './config.js';
import { labelingMetrics, type LabelingMetrics } from './metrics.js';
import { labelerPage } from './page.js';
import type { LabelingQueue } from './queue.js';

/** What a review task carries (set by the scorer's review hook). */
export interface ReviewPayload {
  predictionId: string;
  eventId: string;
  userId: string;
  itemId: string;
  category: string;
  price: number;
  sessionId: string;
  eventTime: number;
  score: number;
  modelVersion: string;
  reason: string;
  /** The click's context (absent in tasks queued before they were sent). */
  device?: string;
  country?: string;
  referrer?: string;
  pageType?: string;
  /** The session's earlier clicks, oldest first (item and price unknown for old sessions). */
  session?: { itemId: string | null; category: string; price: number | null; eventTime: number }[];
}

export interface LabelingAppOptions {
  queue: LabelingQueue<ReviewPayload>;
  tokens: TokenTable;
  guidelines: string;
  /**
   * Publishes a label (fw.labels.human); resolves once Kafka acknowledged it, rejects with
   * FW_KAFKA_UNAVAILABLE (503) when it could not within its time limit.
   */
  publish: (label: HumanLabel) => Promise<void>;
  logger?: FastifyBaseLogger;
  now?: () => number;
  /** Where /metrics reads from (a registry of its own by default). */
  metrics?: Registry;
  /** Blind review (the default): the model's score is not sent with a task, only after its answer. */
  blind?: boolean;
  /** The review question (FW_LABELING_QUESTION); `guidelines` is its guideline. */
  question?: string;
  /** Validity flags a labeler can raise with an answer (FW_LABELING_FLAGS). */
  flags?: readonly ValidityFlag[];
}

const taskParam = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;

export function buildLabelingApp(options: LabelingAppOptions): FastifyInstance {
  const app = Fastify({ loggerInstance: options.logger, bodyLimit: 16 * 1024 });
  installErrorHandler(app);
  const labelers = requireRole(options.tokens, 'labeler');
  const anyone = requireRole(options.tokens, 'labeler', 'admin');
  // Queue errors (unknown task, expired lease, already labeled) carry codes of the HTTP registry.

  const registry = options.metrics ?? createMetricsRegistry('labeling');
  const metrics = labelingMetrics(registry, options.queue);
  addServiceRoutes(app, {
    metrics: registry,
    health: () => ({ ok: true }),
    readiness: () => ({ ready: true }),
  });
  // The page itself is public; every call it makes carries the labeler's token.
  const question = options.question ?? DEFAULT_QUESTION;
  const flags = options.flags ?? DEFAULT_FLAGS;
  const page = labelerPage({ guidelines: options.guidelines, question, flags });
  app.get('/', (_request, reply) => reply.type('text/html; charset=utf-8').send(page));

  leaseRoutes(app, { ...options, question, flags }, labelers);

  app.post<{ Params: { id: string }; Body: { label: 0 | 1; note?: string; flags?: string[] } }>(
    '/v1/tasks/:id/label',
    {
      preHandler: labelers,
      schema: {
        params: taskParam,
        body: {
          type: 'object',
          required: ['label'],
          additionalProperties: false,
          properties: {
            label: { type: 'integer', enum: [0, 1] },
            note: { type: 'string', maxLength: 2000 },
            // Only the configured flags, each once.
            flags: flags.length
              ? { type: 'array', uniqueItems: true, items: { type: 'string', enum: flags.map((f) => f.id) } }
              : { type: 'array', maxItems: 0 },
          },
        },
      },
    },
    (request) => answer(options, metrics, request.params.id, who(request), request.body),
  );

  releaseRoutes(app, options.queue, metrics, labelers);
  app.get('/v1/queue/stats', { preHandler: anyone }, () => options.queue.stats());
  adminRoutes(app, options);
  return app;
}

const who = (request: { principal?: { id: string } }) => request.principal?.id ?? 'unknown';

/** A task to work on (new, or the one held already), and the labeler's own state. */
function leaseRoutes(
  app: FastifyInstance,
  options: LabelingAppOptions & { question: string; flags: readonly ValidityFlag[] },
  labelers: preHandlerHookHandler,
): void {
  const blind = options.blind ?? true;
  // `current`: the task the labeler holds already (a reloaded page), else 204; `next`: a new lease.
  for (const which of ['next', 'current'] as const)
    app.get(`/v1/tasks/${which}`, { preHandler: labelers }, async (request, reply) => {
      const task = await (which === 'next'
        ? options.queue.next(who(request))
        : options.queue.held(who(request)));
      if (!task) return reply.status(204).send();
      // Blind: a labeler who sees the model's score first tends to agree with it (anchoring).
      const { score, ...shown } = task.payload;
      return {
        task: { id: task.id, leaseExpiresAt: task.leaseExpiresAt, ...shown, ...(blind ? {} : { score }) },
        blind,
        guidelines: options.guidelines,
        question: options.question,
        flags: options.flags,
      };
    });
  // The labeler's own page state: who, how many labeled so far, and why no task may come.
  app.get('/v1/me', { preHandler: labelers }, async (request) => {
    const id = who(request);
    const [labeled, budget, stats] = await Promise.all([
      options.queue.labeledBy(id),
      options.queue.budget(),
      options.queue.stats(),
    ]);
    return { id, labeled, ready: stats.ready, budget };
  });
}

/** Skip and unclear give a task back to the queue for others. */
function releaseRoutes(
  app: FastifyInstance,
  queue: LabelingQueue<ReviewPayload>,
  metrics: LabelingMetrics,
  labelers: preHandlerHookHandler,
): void {
  for (const reason of ['skip', 'unclear'] as const) {
    app.post<{ Params: { id: string } }>(
      `/v1/tasks/:id/${reason}`,
      { preHandler: labelers, schema: { params: taskParam } },
      async (request) => {
        await queue.release(
          request.params.id,
          request.principal?.id ?? 'unknown',
          reason === 'skip' ? 'skipped' : 'unclear',
        );
        metrics.answers.inc({ answer: reason });
        return { released: true };
      },
    );
  }
}

function adminRoutes(app: FastifyInstance, options: LabelingAppOptions): void {
  const admins = requireRole(options.tokens, 'admin');
  app.get('/v1/admin/queue', { preHandler: admins }, () => options.queue.adminView());
  app.get('/v1/admin/labels.ndjson', { preHandler: admins }, async (_request, reply) => {
    const lines: string[] = [];
    for await (const task of options.queue.completedTasks()) lines.push(JSON.stringify(task));
    return reply.type('application/x-ndjson').send(lines.length > 0 ? `${lines.join('\n')}\n` : '');
  });
}

/**
 * A labeler's answer. Published before it is recorded: Kafka down means a retriable 503 and
 * nothing recorded, so the labeler's retry publishes it; a crash between the two publishes it
 * again with the same labelId, which the trainer takes once. Never recorded without being
 * published.
 */
async function answer(
  options: LabelingAppOptions,
  metrics: LabelingMetrics,
  id: string,
  labeler: string,
  body: { label: 0 | 1; note?: string; flags?: string[] },
) {
  const { queue } = options;
  const { label } = body;
  const { labels, required } = await queue.check(id, labeler);
  const payload = await queue.payloadOf(id);
  let agreement: number | null = null;
  if (required > 1 && labels + 1 >= required) {
    const given = [...Object.values(await queue.labelsOf(id)), label];
    const ones = given.filter((l) => l === 1).length;
    agreement = Math.max(ones, given.length - ones) / given.length;
  }
  if (payload) {
    await options.publish({
      labelId: `${id}|${labeler}`,
      taskId: id,
      predictionId: payload.predictionId,
      eventId: payload.eventId,
      userId: payload.userId,
      itemId: payload.itemId,
      label,
      labelerId: labeler,
      labelTime: (options.now ?? Date.now)(),
      agreement,
      note: body.note ?? null,
      flags: body.flags ?? [],
    });
  }
  const result = await queue.submit(id, labeler, label);
  metrics.answers.inc({ answer: 'label' });
  if (payload)
    metrics.labelLatency.observe(Math.max(0, ((options.now ?? Date.now)() - payload.eventTime) / 1000));
  // The model's score, now that the answer is in (blind review shows it only here).
  return { ...result, agreement, score: payload?.score ?? null };
}
