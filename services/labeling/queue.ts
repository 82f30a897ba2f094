// The human-labeling queue in Redis: priority order, one lease per labeler per task with a
// visibility timeout, N labels from different labelers per task, idempotent submit, skip, and
// expiry by age. Every state change is one Lua script (services/labeling/scripts.ts), so two
// labelers never get the same lease and no task is lost between them.
import type { Redis } from 'ioredis';
import { QueueError, InternalError } from '../common/errors.js';
import { QueueKeys } from './keys.js';
import { agreementReport, type AgreementReport } from './agreement.js';
import { ADD_TASK, CHECK_LABEL_1, NEXT_TASK_2, RELEASE_TASK_2, SUBMIT_LABEL_2 } from './scripts.js';

/** Negative return codes of the scripts. */
export enum QueueCode {
  UNKNOWN_TASK = -1,
  NO_LEASE = -2,
  ALREADY_LABELED = -3,
  OVER_BUDGET = -4,
}

function queueError(code: number, taskId: string, labelerId: string): QueueError {
  switch (code as QueueCode) {
    case QueueCode.UNKNOWN_TASK:
      return new QueueError('FW_UNKNOWN_TASK', `no task ${taskId}`, taskId);
    case QueueCode.NO_LEASE:
      return new QueueError(
        'FW_LEASE_EXPIRED',
        `${labelerId} holds no lease on task ${taskId} (expired, or never taken)`,
        taskId,
      );
    case QueueCode.ALREADY_LABELED:
      return new QueueError('FW_ALREADY_LABELED', `${labelerId} already labeled task ${taskId}`, taskId);
  }
  throw new InternalError(`unexpected queue code ${code}`);
}

export interface QueueOptions {
  leaseMs: number;
  maxAgeMs: number;
  labelsRequired: number;
  /**
   * Adaptive overlap: a task whose labels disagree (no answer two ahead, not all alike) asks for
   * one more label, up to this many (0 or at most labelsRequired: no growth).
   */
  maxLabels?: number;
  dedupeTtlSeconds: number;
  /** Most tasks added per clock hour; 0 = no limit (keeps the queue from flooding). */
  tasksPerHour?: number;
  /** Priority boost of tasks from rarely reviewed strata (see ADD_TASK); 0 = none. */
  rareBoost?: number;
}

/** Completed task ids kept for the admin export (the durable record is fw.labels.human). */
export const COMPLETED_KEPT = 100_000;

export interface BudgetState {
  /** New tasks allowed per clock hour (null: no limit). */
  perHour: number | null;
  usedThisHour: number;
  /** Tasks refused for the budget since the queue began. */
  refusedTotal: number;
  spent: boolean;
  /** When the next clock hour (and its budget) begins, ms. */
  resetsAt: number;
}

export interface AdminView {
  ready: number;
  leased: number;
  /** Age of the oldest task waiting (ms), or null when none waits. */
  oldestWaitingMs: number | null;
  counters: Record<string, number>;
  labelers: { id: string; labeled: number; judged: number; agreement: number | null }[];
  /** Labels recorded per hour over the last two days, oldest first (hours without labels left out). */
  labelsPerHour: { at: number; labels: number }[];
  budget: BudgetState;
  agreement: AgreementReport;
}

export const DEFAULT_QUEUE: QueueOptions = {
  leaseMs: 5 * 60_000,
  maxAgeMs: 7 * 24 * 3600_000,
  labelsRequired: 1,
  dedupeTtlSeconds: 3600,
};

export interface NewTask<T> {
  id: string;
  priority: number;
  payload: T;
  /**
   * De-duplication keys (a session's, an item's), each taken once per dedupe TTL: a task is
   * added only when all are free.
   */
  dedupeKeys?: readonly string[];
  labelsRequired?: number;
  /** The task's segment: tasks of rarely reviewed segments get a priority boost. */
  stratum?: string;
}

export interface LeasedTask<T> {
  id: string;
  payload: T;
  leaseExpiresAt: number;
}

export interface SubmitResult {
  complete: boolean;
  labels: number;
  required: number;
}

interface QueueCommands {
  fwAddTask(...args: (string | number)[]): Promise<number>;
  fwNextTask(...args: (string | number)[]): Promise<[string, string, string] | null>;
  fwSubmitLabel(...args: (string | number)[]): Promise<[number, number, number]>;
  fwCheckLabel(...args: (string | number)[]): Promise<[number, number, number]>;
  fwReleaseTask(...args: (string | number)[]): Promise<number>;
}

export class LabelingQueue<T> {
  readonly keys: QueueKeys;
  private readonly redis: Redis & QueueCommands;
  private agreementCache: { at: number; report: AgreementReport } | undefined;

  constructor(
    redis: Redis,
    queue: string,
    readonly options: QueueOptions = DEFAULT_QUEUE,
    private readonly now: () => number = Date.now,
  ) {
    this.keys = new QueueKeys(queue);
    // No fixed key count: the first argument says how many (a task has 0 to 3 dedupe markers).
    redis.defineCommand('fwAddTask', { lua: ADD_TASK });
    redis.defineCommand('fwNextTask', { numberOfKeys: 2, lua: NEXT_TASK_2 });
    redis.defineCommand('fwSubmitLabel', { numberOfKeys: 2, lua: SUBMIT_LABEL_2 });
    redis.defineCommand('fwCheckLabel', { numberOfKeys: 1, lua: CHECK_LABEL_1 });
    redis.defineCommand('fwReleaseTask', { numberOfKeys: 2, lua: RELEASE_TASK_2 });
    this.redis = redis as Redis & QueueCommands;
  }

  /** True when added; false when a duplicate (same id, or dedupe key taken) or over the hourly budget. */
  async add(task: NewTask<T>): Promise<boolean> {
    return (await this.offer(task)) === 'added';
  }

  /** Adds the task, or says why not. */
  async offer(task: NewTask<T>): Promise<'added' | 'duplicate' | 'over_budget'> {
    const k = this.keys;
    const markers = (task.dedupeKeys ?? []).map((key) => k.dedupe(key));
    const added = await this.redis.fwAddTask(
      2 + markers.length,
      k.ready,
      k.task(task.id),
      ...markers,
      k.prefix,
      task.id,
      task.priority,
      JSON.stringify(task.payload),
      task.labelsRequired ?? this.options.labelsRequired,
      this.now(),
      this.options.dedupeTtlSeconds,
      this.options.tasksPerHour ?? 0,
      task.stratum ?? '',
      this.options.rareBoost ?? 0,
    );
    return added === 1 ? 'added' : added === Number(QueueCode.OVER_BUDGET) ? 'over_budget' : 'duplicate';
  }

  /** Labels this labeler has given so far. */
  async labeledBy(labelerId: string): Promise<number> {
    return Number((await this.redis.hget(this.keys.labelers, `labeled:${labelerId}`)) ?? 0);
  }

  /** The hourly budget of new tasks (FW_LABELING_TASKS_PER_HOUR): used this clock hour, refused so far. */
  async budget(): Promise<BudgetState> {
    const perHour = this.options.tasksPerHour ?? 0;
    const now = this.now();
    const hour = Math.floor(now / 3_600_000);
    const [used, refused] = await Promise.all([
      this.redis.get(`${this.keys.prefix}budget:${hour}`),
      this.redis.hget(this.keys.stats, 'overBudget'),
    ]);
    return {
      perHour: perHour > 0 ? perHour : null,
      usedThisHour: Number(used ?? 0),
      refusedTotal: Number(refused ?? 0),
      spent: perHour > 0 && Number(used ?? 0) >= perHour,
      resetsAt: (hour + 1) * 3_600_000,
    };
  }

  async next(labelerId: string): Promise<LeasedTask<T> | null> {
    const k = this.keys;
    const reply = await this.redis.fwNextTask(
      k.ready,
      k.leases,
      k.prefix,
      labelerId,
      this.now(),
      this.options.leaseMs,
      this.options.maxAgeMs,
    );
    if (!reply) return null;
    const [id, payload, expires] = reply;
    return { id, payload: JSON.parse(payload) as T, leaseExpiresAt: Number(expires) };
  }

  /** A task this labeler holds a live lease on (a page reloaded mid-task gets it back), or null. */
  async held(labelerId: string): Promise<LeasedTask<T> | null> {
    const suffix = `|${labelerId}`;
    const live = await this.redis.zrangebyscore(this.keys.leases, this.now(), '+inf', 'WITHSCORES');
    for (let i = 0; i < live.length; i += 2) {
      const member = live[i]!;
      if (!member.endsWith(suffix)) continue;
      const id = member.slice(0, -suffix.length);
      const payload = await this.payloadOf(id);
      if (payload !== null) return { id, payload, leaseExpiresAt: Number(live[i + 1]) };
    }
    return null;
  }

  async submit(taskId: string, labelerId: string, label: unknown): Promise<SubmitResult> {
    const k = this.keys;
    const [code, labels, required] = await this.redis.fwSubmitLabel(
      k.ready,
      k.leases,
      k.prefix,
      taskId,
      labelerId,
      JSON.stringify(label),
      this.now(),
      COMPLETED_KEPT,
      this.options.maxLabels ?? 0,
    );
    if (code < 0) throw queueError(code, taskId, labelerId);
    return { complete: code === 2, labels, required };
  }

  /**
   * Throws what submit would (unknown task, no lease, already labeled) without changing anything;
   * else the labels the task has so far and how many it needs.
   */
  async check(taskId: string, labelerId: string): Promise<{ labels: number; required: number }> {
    const [code, labels, required] = await this.redis.fwCheckLabel(
      this.keys.leases,
      this.keys.prefix,
      taskId,
      labelerId,
      this.now(),
    );
    if (code < 0) throw queueError(code, taskId, labelerId);
    return { labels, required };
  }

  /** Skip (or "unclear"): the task goes back for others and is not offered to this labeler again. */
  async release(taskId: string, labelerId: string, reason: 'skipped' | 'unclear'): Promise<void> {
    const k = this.keys;
    const code = await this.redis.fwReleaseTask(
      k.ready,
      k.leases,
      k.prefix,
      taskId,
      labelerId,
      this.now(),
      reason,
    );
    if (code < 0) throw queueError(code, taskId, labelerId);
  }

  async payloadOf(taskId: string): Promise<T | null> {
    const raw = await this.redis.hget(this.keys.task(taskId), 'payload');
    return raw === null ? null : (JSON.parse(raw) as T);
  }

  async labelsOf(taskId: string): Promise<Record<string, unknown>> {
    const raw = await this.redis.hgetall(this.keys.labels(taskId));
    return Object.fromEntries(
      Object.entries(raw).map(([labeler, label]) => [labeler, JSON.parse(label) as unknown]),
    );
  }

  /**
   * Agreement beyond chance over the newest `limit` completed tasks with several labels (Cohen's
   * kappa per labeler pair, Fleiss' kappa overall); computed at most once a minute.
   */
  async agreement(limit = 2000): Promise<AgreementReport> {
    const now = this.now();
    if (this.agreementCache && now - this.agreementCache.at < 60_000) return this.agreementCache.report;
    const ids = await this.redis.lrange(this.keys.completed, 0, limit - 1);
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.labels(id));
    const replies = (await pipeline.exec()) ?? [];
    const tasks = replies.map(([, raw]) =>
      Object.fromEntries(
        Object.entries((raw ?? {}) as Record<string, string>).map(([labeler, text]) => {
          const value = JSON.parse(text) as unknown;
          const label = typeof value === 'object' && value !== null && 'label' in value ? value.label : value;
          return [labeler, String(label)];
        }),
      ),
    );
    const report = agreementReport(tasks);
    this.agreementCache = { at: now, report };
    return report;
  }

  /** Queue depth, age of the oldest waiting task, counters, and per-labeler throughput and agreement. */
  async adminView(): Promise<AdminView> {
    const { ready, leased, counters } = await this.stats();
    // Waiting tasks are ordered by priority, not age: look at up to 1,000 of them.
    const waiting = await this.redis.zrange(this.keys.ready, '0', '999');
    const created = await Promise.all(waiting.map((id) => this.redis.hget(this.keys.task(id), 'createdAt')));
    const oldest = Math.min(...created.filter((c): c is string => c !== null).map(Number));
    const raw = await this.redis.hgetall(this.keys.labelers);
    const labelerIds = new Set(Object.keys(raw).map((k) => k.slice(k.indexOf(':') + 1)));
    const labelers = [...labelerIds].sort().map((id) => {
      const judged = Number(raw[`judged:${id}`] ?? 0);
      return {
        id,
        labeled: Number(raw[`labeled:${id}`] ?? 0),
        judged,
        agreement: judged > 0 ? Number(raw[`agreed:${id}`] ?? 0) / judged : null,
      };
    });
    const since = this.now() - 48 * 3_600_000;
    const labelsPerHour = Object.entries(await this.redis.hgetall(this.keys.hourly))
      .map(([at, n]) => ({ at: Number(at), labels: Number(n) }))
      .filter((h) => h.at >= since)
      .sort((a, b) => a.at - b.at);
    return {
      ready,
      leased,
      oldestWaitingMs: Number.isFinite(oldest) ? this.now() - oldest : null,
      counters,
      labelers,
      labelsPerHour,
      budget: await this.budget(),
      agreement: await this.agreement(),
    };
  }

  /** Completed tasks with their labels, newest first, for the NDJSON export. */
  async *completedTasks(): AsyncGenerator<{
    taskId: string;
    payload: T | null;
    labels: Record<string, unknown>;
  }> {
    const total = await this.redis.llen(this.keys.completed);
    for (let start = 0; start < total; start += 500) {
      for (const taskId of await this.redis.lrange(this.keys.completed, start, start + 499)) {
        yield { taskId, payload: await this.payloadOf(taskId), labels: await this.labelsOf(taskId) };
      }
    }
  }

  async stats(): Promise<{ ready: number; leased: number; counters: Record<string, number> }> {
    const [ready, leased, counters] = await Promise.all([
      this.redis.zcard(this.keys.ready),
      this.redis.zcard(this.keys.leases),
      this.redis.hgetall(this.keys.stats),
    ]);
    return {
      ready,
      leased,
      counters: Object.fromEntries(Object.entries(counters).map(([k, v]) => [k, Number(v)])),
    };
  }
}
