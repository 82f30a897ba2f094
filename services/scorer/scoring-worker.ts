// How the scorer's stream path scores a batch: in a worker thread (the default), or on the
// thread that talks to Kafka (FW_SCORER_WORKER=false). The worker keeps Kafka's client, the
// predict API and the scoring work from waiting on each other; it needs a second core to gain.
import { Worker } from 'node:worker_threads';
import type { ModelUpdate } from '../common/contracts.js';
import { FlywheelError } from '../common/errors.js';
import { isErrorCode } from '../common/error-codes.js';
import type { Logger } from '../common/logger.js';
import type { ScoredBatchBytes, ScoringPipeline } from './pipeline.js';
import {
  packValues,
  type FromWorker,
  type SerializedError,
  type ToWorker,
  type WorkerSetup,
} from './worker-protocol.js';

export interface BatchScorer {
  /** Apply a model update to the models the stream path scores with; false if it failed. */
  apply(update: ModelUpdate): Promise<boolean>;
  /**
   * Score click messages as fetched (see ScoringPipeline.score). Calls with the same `lane` (a
   * partition) are scored one after another in call order, so a caller can queue a batch's
   * slices at once and send each one's predictions while the next is scored.
   */
  score(
    values: readonly (Buffer | null)[],
    lane: string,
  ): Promise<{ scored: ScoredBatchBytes; recorded: Promise<void> }>;
  /** Forget the sessions held in memory (another scorer may have written them). */
  clearSessions(): void;
  close(): Promise<void>;
}

/** Scores on the calling thread, with the models the predict API serves (already updated). */
export function inlineScorer(pipeline: ScoringPipeline): BatchScorer {
  const lanes = new Lanes();
  return {
    apply: () => Promise.resolve(true),
    score: (values, lane) => lanes.run(lane, () => pipeline.score(values)),
    clearSessions: () => pipeline.sessions.clear(),
    close: () => Promise.resolve(),
  };
}

/** Runs tasks of one lane one after another, in the order given; lanes run independently. */
export class Lanes {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(lane: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(lane) ?? Promise.resolve();
    // The next task waits for this one whether it succeeds or fails.
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(lane, tail);
    void tail.then(() => {
      if (this.tails.get(lane) === tail) this.tails.delete(lane);
    });
    return result;
  }
}

function exited(code: number): FlywheelError {
  return new FlywheelError('FW_SCORING_WORKER_EXITED', `the scoring worker exited (code ${code})`, {
    retriable: true,
  });
}

function deserialize(error: SerializedError): Error {
  const code = typeof error.code === 'string' && isErrorCode(error.code) ? error.code : 'FW_SCORING_FAILED';
  return new FlywheelError(code, error.message, { retriable: error.retriable });
}

interface Waiter<T> {
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

/** The scoring worker, restarted (with the models last applied) if it ever exits unasked. */
export class ScoringWorker implements BatchScorer {
  private worker!: Worker;
  private ready!: Promise<void>;
  private nextId = 1;
  private readonly replies = new Map<number, Waiter<FromWorker>>();
  private readonly recorded = new Map<number, Waiter<void>>();
  /** The last update the worker applied: a restarted worker applies it before scoring. */
  private lastApplied: ModelUpdate | null = null;
  private closing = false;
  /** A worker is up and has the models last applied. */
  private serving = false;
  /** Restarts in a row that did not get a worker ready: the next waits longer. */
  private failedRestarts = 0;

  private constructor(
    private readonly setup: WorkerSetup,
    private readonly logger: Logger,
    private readonly spawnThread: (setup: WorkerSetup) => Worker,
  ) {}

  /** `spawnThread` starts worker.ts (tests pass one that keeps the thread, to stop it). */
  static async start(
    setup: WorkerSetup,
    logger: Logger,
    spawnThread: (setup: WorkerSetup) => Worker = workerThread,
  ): Promise<ScoringWorker> {
    const host = new ScoringWorker(setup, logger, spawnThread);
    host.ready = host.spawn();
    try {
      await host.ready;
    } catch (error) {
      await host.close();
      throw error;
    }
    return host;
  }

  /** Start a worker thread; resolves once it is ready and has the models last applied. */
  private spawn(): Promise<void> {
    const worker = this.spawnThread(this.setup);
    this.worker = worker;
    const ready = new Promise<void>((resolve, reject) => {
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'startFailed') {
          reject(deserialize(message.error));
          void worker.terminate(); // a restart (if any) is scheduled when it has exited
        } else this.onReply(message);
      });
      worker.on('error', (error) => this.logger.error({ err: error }, 'the scoring worker failed'));
      worker.once('exit', (code) => {
        reject(exited(code));
        this.onExit(worker, code);
      });
    }).then(async () => {
      const update = this.lastApplied;
      if (update && !(await this.applyIn(worker, update)))
        throw new FlywheelError(
          'FW_SCORING_WORKER_EXITED',
          `a new scoring worker could not load ${update.updateId}`,
          {
            retriable: true,
          },
        );
      this.failedRestarts = 0;
      this.serving = true;
    });
    ready.catch(() => undefined);
    return ready;
  }

  private onReply(message: FromWorker): void {
    if (message.type === 'recorded') {
      const waiter = this.recorded.get(message.id);
      this.recorded.delete(message.id);
      if (message.error) waiter?.reject(deserialize(message.error));
      else waiter?.resolve();
      return;
    }
    if (!('id' in message)) return;
    const waiter = this.replies.get(message.id);
    this.replies.delete(message.id);
    if (message.type === 'failed') {
      this.recorded.delete(message.id);
      waiter?.reject(deserialize(message.error));
    } else waiter?.resolve(message);
  }

  private onExit(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.serving = false;
    // Batches in flight fail as retriable: they are fetched again and scored by the next worker.
    const error = exited(code);
    for (const waiter of [...this.replies.values(), ...this.recorded.values()]) waiter.reject(error);
    this.replies.clear();
    this.recorded.clear();
    if (this.closing) return;
    const delayMs = this.failedRestarts === 0 ? 0 : Math.min(30_000, 500 * 2 ** this.failedRestarts);
    this.failedRestarts++;
    this.logger.error({ code, restartInMs: delayMs }, 'the scoring worker exited; starting another');
    this.ready = new Promise<void>((resolve) => setTimeout(resolve, delayMs)).then(() =>
      this.closing ? Promise.reject(error) : this.spawn(),
    );
    this.ready.catch(() => undefined);
  }

  /** Post a request and wait for its reply (a `failed` reply rejects). */
  private request(
    message: Extract<ToWorker, { id: number }>,
    worker = this.worker,
    transfer: ArrayBuffer[] = [],
  ): Promise<FromWorker> {
    return new Promise<FromWorker>((resolve, reject) => {
      this.replies.set(message.id, { resolve, reject });
      worker.postMessage(message, transfer);
    });
  }

  /** Apply an update in `worker`; true when its models are in force there. */
  private async applyIn(worker: Worker, update: ModelUpdate): Promise<boolean> {
    const reply = await this.request({ type: 'apply', id: this.nextId++, update }, worker);
    return reply.type === 'applied' && reply.ok;
  }

  async apply(update: ModelUpdate): Promise<boolean> {
    await this.ready;
    const ok = await this.applyIn(this.worker, update);
    if (ok) this.lastApplied = update;
    return ok;
  }

  async score(
    values: readonly (Buffer | null)[],
    lane: string,
  ): Promise<{ scored: ScoredBatchBytes; recorded: Promise<void> }> {
    await this.ready;
    const { bytes, lengths } = packValues(values);
    const id = this.nextId++;
    const recorded = new Promise<void>((resolve, reject) => this.recorded.set(id, { resolve, reject }));
    // Awaited by the caller with the send; a failure before then must not go unhandled.
    recorded.catch(() => undefined);
    const reply = await this.request({ type: 'score', id, lane, bytes, lengths }, this.worker, [
      bytes.buffer,
      lengths.buffer,
    ]);
    if (reply.type !== 'scored')
      throw new FlywheelError('FW_SCORING_FAILED', `the scoring worker answered ${reply.type} to a score`);
    return { scored: reply.scored, recorded };
  }

  clearSessions(): void {
    this.worker.postMessage({ type: 'clearSessions' } satisfies ToWorker);
  }

  async close(): Promise<void> {
    this.closing = true;
    const worker = this.worker;
    // Its Redis connection quits cleanly if it is up; a worker starting or gone has none to close.
    if (this.serving) await this.request({ type: 'close', id: this.nextId++ }, worker).catch(() => undefined);
    await worker.terminate();
  }
}

/**
 * The worker thread. From the TypeScript sources (tsx, no build) a worker does not inherit the
 * loader the main thread registered, so a small bootstrap registers it before importing.
 */
export function workerThread(setup: WorkerSetup): Worker {
  const compiled = import.meta.url.endsWith('.js');
  const entry = new URL(compiled ? './worker.js' : './worker.ts', import.meta.url);
  if (compiled) return new Worker(entry, { workerData: setup });
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: setup });
}
