// `flywheel rollout controller`: reads fw.feedback.labeled into each active experiment's arms
// (outcomes.ts) and, every FW_ROLLOUT_TICK_MS, decides them (controller.ts) and moves the aliases
// (the routing every scorer follows in fw.models.updates), holding the experiments lock.
// The arms' summaries are stored in the experiments file with the offsets they reach; on start
// every partition is sought to its stored offset (the group's commits run ahead of them), so an
// outcome is counted once across restarts, as the trainer does with its checkpoint.
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Producer } from 'kafkajs';
import { RecordConsumer, groupTimeouts, readinessOf } from '../common/consumer.js';
import { seekToStoredOffsets } from '../common/stored-offsets.js';
import type { LabeledExample } from '../common/contracts.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { installErrorHandler } from '../common/http-errors.js';
import { createProducer } from '../common/kafka.js';
import type { Logger } from '../common/logger.js';
import { RegistryError } from '../common/errors.js';
import type { Runtime } from '../common/runtime.js';
import { addServiceRoutes } from '../common/service-routes.js';
import { TOPICS } from '../common/topics.js';
import { FeatureSpec } from '../model/features.js';
import { RegistryAdmin } from '../registry/admin.js';
import { loadRegistryConfig } from '../registry/config.js';
import { ExperimentAdmin } from '../registry/experiment-admin.js';
import {
  ACTIVE_STATES,
  ExperimentStore,
  type ExperimentRecord,
  type ExperimentsFile,
} from '../registry/experiments.js';
import { FileModelRegistry } from '../registry/store.js';
import { loadRolloutConfig, type RolloutConfig } from './config.js';
import { CONTROLLER_ACTOR, tick, type TickResult } from './controller.js';
import { rolloutMetrics } from './metrics.js';
import { ExperimentOutcomes } from './outcomes.js';

type Subscriptions = Record<string, 'labeledExample'>;

/** Routing errors that mean the candidate cannot serve (the experiment ends), not a retry. */
const CANNOT_SERVE: readonly string[] = ['FW_VERSION_REJECTED', 'FW_UNKNOWN_VERSION'];

export interface RolloutOptions {
  runtime: Runtime;
  config?: RolloutConfig;
  registryDir?: string;
  topics?: { feedback?: string; modelUpdates?: string; deadLetters?: string };
  http?: boolean;
  /** Told after every look at the experiments (tests wait on it). */
  onTick?: (result: TickResult) => void;
  /** Told after each batch of feedback is taken in, with its size. */
  onTaken?: (records: number) => void;
}

export class RolloutController {
  readonly config: RolloutConfig;
  private readonly log: Logger;
  private readonly store: ExperimentStore;
  private readonly registry: FileModelRegistry;
  private readonly metrics: ReturnType<typeof rolloutMetrics>;
  private readonly feedbackTopic: string;
  /** The arms of each active experiment, as far as `offsets` reach. */
  private readonly arms = new Map<string, ExperimentOutcomes>();
  private offsets: Record<string, string> = {};
  private producer: Producer | undefined;
  private consumer: RecordConsumer<Subscriptions> | undefined;
  private experiments: ExperimentAdmin | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private looking: Promise<void> = Promise.resolve();
  /** Why queued experiments wait, as last logged. */
  private waiting: string | null = null;

  constructor(private readonly options: RolloutOptions) {
    this.config = options.config ?? loadRolloutConfig();
    this.log = options.runtime.logger.child({ component: 'rollout' });
    const dir = options.registryDir ?? loadRegistryConfig().FW_REGISTRY_DIR;
    this.store = new ExperimentStore(dir);
    this.registry = new FileModelRegistry(dir);
    this.metrics = rolloutMetrics(options.runtime.metrics);
    this.feedbackTopic = options.topics?.feedback ?? TOPICS.feedback;
  }

  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  async start(): Promise<void> {
    const { runtime } = this.options;
    const file = await this.store.read();
    this.offsets = { ...file.offsets };
    this.follow(file);
    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();
    const spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
    const admin = new RegistryAdmin(
      this.registry,
      spec,
      { producer: this.producer, codecs: runtime.codecs, topic: this.options.topics?.modelUpdates },
      runtime.logger,
    );
    this.experiments = new ExperimentAdmin(this.store, admin);
    this.consumer = this.createConsumer(this.producer);
    await this.consumer.start();
    this.log.info(
      { following: [...this.arms.keys()], offsets: this.offsets, tickMs: this.config.FW_ROLLOUT_TICK_MS },
      'rollout controller started',
    );
    this.ticker = setInterval(() => void this.lookNow(), this.config.FW_ROLLOUT_TICK_MS);
    if (this.options.http !== false) await this.listen();
  }

  /** One look at the experiments now (after any look under way); the timer calls it too. */
  lookNow(): Promise<void> {
    this.looking = this.looking
      .then(() => this.look())
      .catch((err: unknown) => this.log.error({ err }, 'look at the experiments failed; next tick retries'));
    return this.looking;
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    await this.looking;
    await this.consumer?.stop();
    await this.app?.close();
    await this.producer?.disconnect();
  }

  /** Arms for every active experiment of the file not followed yet; ended ones are dropped. */
  private follow(file: ExperimentsFile): void {
    const active = new Set<string>();
    for (const e of file.experiments) {
      if (!ACTIVE_STATES.includes(e.state) || e.control === null || e.startedAt === null) continue;
      active.add(e.id);
      const existing = this.arms.get(e.id);
      if (existing) existing.setControls(e.controls ?? [e.control]);
      else
        this.arms.set(
          e.id,
          new ExperimentOutcomes(
            {
              control: e.controls ?? [e.control],
              candidate: e.candidate,
              ...(e.mode === 'shadow' ? { shadow: true } : {}),
            },
            {
              since: e.startedAt,
              ...(e.segments ? { segments: e.segments } : {}),
              ...(e.baselineShare ? { baselineShare: e.baselineShare } : {}),
            },
            {
              stats: e.stats,
              strata: e.strata ?? {},
              ...(e.calibration ? { calibration: e.calibration } : {}),
              ...(e.baseline ? { baseline: e.baseline } : {}),
              ...(e.pending ? { pending: e.pending } : {}),
              ...(e.closedUntil !== undefined ? { closedUntil: e.closedUntil } : {}),
            },
          ),
        );
    }
    for (const id of [...this.arms.keys()]) if (!active.has(id)) this.arms.delete(id);
  }

  private async look(): Promise<void> {
    const experiments = this.experiments;
    if (!experiments) return;
    let result: TickResult;
    try {
      result = await this.store.transact(async (file) => {
        // The routing as it stands under the lock (an operator's promote cannot slip in between).
        const { champion, challenger } = await this.registry.routing();
        const continues = await this.baselineRefresh(champion);
        const owner = (await this.registry.history()).filter((m) => m.alias === 'challenger').at(-1)?.actor;
        // Summaries and offsets taken together, with no await between: they stay consistent.
        file.offsets = { ...file.offsets, ...this.offsets };
        const summaries = new Map([...this.arms].map(([id, arms]) => [id, arms.snapshot()]));
        const result = tick(file, {
          champion,
          // A challenger the controller did not place is an operator's: it is not overwritten.
          challenger: owner === CONTROLLER_ACTOR ? null : challenger,
          continues,
          now: Date.now(),
          summaries,
        });
        // Arms for an experiment started now, before any await: no outcome of it slips past.
        this.follow(file);
        for (const experiment of result.changed) await this.route(experiments, result, file, experiment);
        this.follow(file);
        this.metrics.showAll(file.experiments);
        return result;
      });
    } catch (err) {
      // Nothing was written: the arms follow the stored file again; the next look retries.
      this.follow(await this.store.read());
      throw err;
    }
    for (const { experiment, decision } of result.decisions) {
      this.metrics.decisions.inc({ action: decision.action });
      this.log.info(
        { experiment: experiment.id, candidate: experiment.candidate, ...decision },
        `experiment ${experiment.id}: ${decision.action}`,
      );
    }
    if (result.waiting !== this.waiting && result.waiting !== null)
      this.log.warn({ reason: result.waiting }, `queued experiments wait: ${result.waiting}`);
    this.waiting = result.waiting;
    if (result.started)
      this.log.info(
        {
          experiment: result.started.id,
          candidate: result.started.candidate,
          control: result.started.control,
        },
        `experiment ${result.started.id} started`,
      );
    this.options.onTick?.(result);
  }

  /** Moves the aliases as the experiment says; one whose candidate cannot serve any more ends. */
  private async route(
    experiments: ExperimentAdmin,
    result: TickResult,
    file: ExperimentsFile,
    experiment: ExperimentRecord,
  ) {
    try {
      await experiments.route(file, experiment, CONTROLLER_ACTOR, routeReason(result, experiment.id));
    } catch (err) {
      // Rejected or gone since it was queued: the experiment is over. Anything else (a busy
      // registry, Kafka) leaves the file unwritten, and the next look tries again.
      if (!(err instanceof RegistryError) || !CANNOT_SERVE.includes(err.code)) throw err;
      experiment.state = 'aborted';
      experiment.endedAt = Date.now();
      experiment.endReason = `routing failed: ${err.message}`;
      await experiments.route(file, experiment, CONTROLLER_ACTOR, experiment.endReason);
    }
  }

  /**
   * Whether `champion` is a refresh of the serving baseline `from`: both baselines, `from` among
   * its baseline ancestors (the trainer publishes each refresh with the one before as parent).
   */
  private async baselineRefresh(champion: string | null): Promise<(from: string, to: string) => boolean> {
    const ancestors = new Set<string>();
    let version = champion;
    for (let depth = 0; version !== null && depth < 50; depth++) {
      const metadata = await this.registry.get(version).catch(() => null);
      if (metadata?.kind !== 'baseline') break;
      if (version !== champion) ancestors.add(version);
      version = metadata.parent;
    }
    return (from, to) => to === champion && ancestors.has(from);
  }

  private take(records: { partition: number; offset: string; value: LabeledExample }[]): void {
    for (const record of records) {
      const key = `${this.feedbackTopic}:${record.partition}`;
      const taken = this.offsets[key];
      // A batch tried again (its dead letters failed to send) or fetched again: counted once.
      if (taken !== undefined && BigInt(record.offset) < BigInt(taken)) continue;
      for (const arms of this.arms.values()) arms.take(record.value);
      this.offsets[key] = (BigInt(record.offset) + 1n).toString();
    }
  }

  private createConsumer(producer: Producer): RecordConsumer<Subscriptions> {
    const { runtime } = this.options;
    const consumer = new RecordConsumer<Subscriptions>({
      kafka: runtime.kafka,
      groupId: this.config.FW_ROLLOUT_GROUP,
      service: 'rollout',
      subscriptions: { [this.feedbackTopic]: 'labeledExample' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(
        producer,
        runtime.codecs.deadLetter,
        this.options.topics?.deadLetters ?? TOPICS.deadLetters,
      ),
      logger: runtime.logger,
      metrics: runtime.metrics,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      maxRetryDelayMs: runtime.config.FW_RETRY_MAX_BACKOFF_MS,
      onCrash: (error) => runtime.lifecycle.fail('rollout consumer', error),
      consumerConfig: groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      handle: (records) => {
        this.take(records);
        this.options.onTaken?.(records.length);
        return Promise.resolve();
      },
    });
    // The stored offsets say where the arms' summaries end; a partition they do not name is read
    // from where the group left it (or the end: an experiment counts only what follows it).
    seekToStoredOffsets(consumer.consumer, () => this.offsets);
    return consumer;
  }

  private async listen(): Promise<void> {
    const app = Fastify({ bodyLimit: 4096 });
    installErrorHandler(app);
    addServiceRoutes(app, {
      metrics: this.options.runtime.metrics,
      health: () => ({ ok: true, service: 'rollout', following: [...this.arms.keys()] }),
      readiness: () =>
        this.consumer
          ? readinessOf(this.consumer.health(), this.feedbackTopic)
          : { ready: false, reason: 'starting' },
    });
    await app.listen({ host: '0.0.0.0', port: this.config.FW_ROLLOUT_HTTP_PORT });
    this.app = app;
  }
}

function routeReason(result: TickResult, id: string): string {
  const decided = result.decisions.find((d) => d.experiment.id === id);
  if (decided) return `${id} ${decided.decision.action}: ${decided.decision.reasons.join('; ')}`;
  if (result.started?.id === id) return `${id} start: against the champion ${result.started.control}`;
  const experiment = [...result.changed].find((e) => e.id === id);
  return `${id} ${experiment?.state ?? 'changed'}: ${experiment?.endReason ?? ''}`;
}

export async function runRollout(runtime: Runtime): Promise<number> {
  const controller = new RolloutController({ runtime });
  runtime.lifecycle.add('rollout', () => controller.stop());
  runtime.lifecycle.installSignalHandlers();
  await controller.start();
  process.send?.({ ready: true });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
