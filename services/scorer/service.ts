// `flywheel scorer`: consumes clicks in a consumer group, scores them with the routed models,
// publishes predictions (offsets commit only after Kafka acknowledged them), hands uncertain
// cases to the review sink, follows model updates and hot-swaps between slices of a batch, and
// serves the predict API from the same versions. The batches are scored in a worker thread
// (scoring-worker.ts); this thread moves their bytes between Kafka and it.
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { ModelUpdate } from '../common/contracts.js';
import {
  RecordConsumer,
  groupTimeouts,
  readinessOf,
  type RawRejection,
  type Readiness,
} from '../common/consumer.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { createProducer, sendInChunks } from '../common/kafka.js';
import { counter, gauge, histogram } from '../common/metrics.js';
import { createRedis } from '../common/redis.js';
import { schemaRegistrySettings, type Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { initBackend } from '../model/backend.js';
import { FeatureSpec } from '../model/features.js';
import { loadRegistryConfig } from '../registry/config.js';
import { FileModelRegistry } from '../registry/store.js';
import { loadScorerConfig, type ScorerConfig } from './config.js';
import { buildPredictApp } from './http.js';
import { ModelManager } from './model-manager.js';
import { ScoringPipeline, predictionMessages, type ScoredBatchBytes } from './pipeline.js';
import { MemoryReviewSink, type ReviewPolicyConfig, type ReviewSink } from './review.js';
import { PairedModels } from './paired-models.js';
import { ScoringWorker, inlineScorer, type BatchScorer } from './scoring-worker.js';
import { RedisSessionStore, type SessionStoreOptions } from './session-store.js';
import { ModelUpdatesFollower } from './updates-follower.js';

export interface ScorerTopics {
  clicks: string;
  predictions: string;
  deadLetters: string;
  modelUpdates: string;
}

export interface ScorerOptions {
  runtime: Runtime;
  config?: ScorerConfig;
  topics?: Partial<ScorerTopics>;
  reviewSink?: ReviewSink;
  /** Listen for HTTP (the predict API); off in tests that only need the stream. */
  http?: boolean;
}

export class Scorer {
  readonly manager: ModelManager;
  readonly topics: ScorerTopics;
  private readonly config: ScorerConfig;
  private redis: Redis | undefined;
  private producer: Producer | undefined;
  private consumer: RecordConsumer<Record<string, 'click'>> | undefined;
  private follower: ModelUpdatesFollower | undefined;
  private scoring: BatchScorer | undefined;
  private app: FastifyInstance | undefined;
  private ready = false;
  /** The newest click event time scored (the stream's clock, for freshness in event time). */
  private newestScoredTime = -Infinity;
  readonly spec: FeatureSpec;
  private readonly registryDir: string;
  private readonly policy: ReviewPolicyConfig;
  private readonly reviewSink: ReviewSink;

  constructor(private readonly options: ScorerOptions) {
    const { runtime } = options;
    this.config = options.config ?? loadScorerConfig();
    const registryConfig = loadRegistryConfig();
    this.spec = new FeatureSpec({ hashBits: registryConfig.FW_FEATURE_HASH_BITS });
    this.registryDir = registryConfig.FW_REGISTRY_DIR;
    this.topics = {
      clicks: TOPICS.clicks,
      predictions: TOPICS.predictions,
      deadLetters: TOPICS.deadLetters,
      modelUpdates: TOPICS.modelUpdates,
      ...options.topics,
    };
    this.manager = new ModelManager(new FileModelRegistry(this.registryDir), this.spec, runtime.logger);
    this.policy = {
      band: { low: this.config.FW_REVIEW_BAND_LOW, high: this.config.FW_REVIEW_BAND_HIGH },
      disagreement: this.config.FW_REVIEW_DISAGREEMENT,
      auditRate: this.config.FW_REVIEW_AUDIT_RATE,
    };
    this.reviewSink = options.reviewSink ?? new MemoryReviewSink();
  }

  /** The KafkaJS consumer once start() created it (benchmarks time its batches). */
  get kafkaConsumer() {
    return this.consumer?.consumer;
  }

  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  async start(): Promise<void> {
    const { runtime } = this.options;
    const { logger, metrics } = runtime;
    await initBackend(logger);
    this.redis = createRedis(runtime.config.REDIS_URL, logger);
    await this.redis.connect();
    const sessionOptions: SessionStoreOptions = {
      idleSeconds: this.config.FW_SESSION_IDLE_SECONDS,
      maxClicksPerSession: 500,
      maxSessions: this.config.FW_SCORER_SESSION_CACHE,
    };
    // This thread's sessions: the predict API's reads, and the stream's when scoring inline.
    const sessions = new RedisSessionStore(this.redis, sessionOptions);
    const limits = {
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
    };
    this.scoring = this.config.FW_SCORER_WORKER
      ? await ScoringWorker.start(
          {
            service: runtime.service,
            logLevel: runtime.config.LOG_LEVEL,
            redisUrl: runtime.config.REDIS_URL,
            schemaRegistry: schemaRegistrySettings(runtime.config),
            registryDir: this.registryDir,
            hashBits: this.spec.hashBits,
            sessions: sessionOptions,
            policy: this.policy,
            limits,
          },
          logger,
        )
      : inlineScorer(
          new ScoringPipeline({
            codecs: runtime.codecs,
            spec: this.spec,
            manager: this.manager,
            sessions,
            policy: this.policy,
            limits,
          }),
        );
    const scoring = this.scoring;
    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();

    const predictionsPublished = counter(metrics, {
      name: 'flywheel_scorer_predictions_total',
      help: 'Predictions published, by arm',
      labelNames: ['arm'],
    });
    const batchSize = histogram(metrics, {
      name: 'flywheel_scorer_batch_size',
      help: 'Clicks per scored batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500],
    });
    const batchSeconds = histogram(metrics, {
      name: 'flywheel_scorer_batch_seconds',
      help: 'Time to score and publish one batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    const modelInUse = gauge(metrics, {
      name: 'flywheel_scorer_model_info',
      help: 'Model version per alias in use (value 1)',
      labelNames: ['alias', 'version'],
    });
    const loadFailures = counter(metrics, {
      name: 'flywheel_scorer_model_load_failures_total',
      help: 'Model versions that failed to load',
    });
    const sessionsHeld = gauge(metrics, {
      name: 'flywheel_scorer_sessions_held',
      help: 'Sessions held in memory (the rest are loaded from Redis when their clicks come)',
    });
    const reviews = counter(metrics, {
      name: 'flywheel_scorer_review_tasks_total',
      help: 'Predictions sent to human review, by reason',
      labelNames: ['reason'],
    });
    this.manager.on('swapped', (set) => {
      modelInUse.reset();
      for (const alias of ['champion', 'challenger', 'shadow'] as const) {
        const version = set.routing[alias];
        if (version) modelInUse.set({ alias, version }, 1);
      }
    });
    this.manager.on('loadFailed', () => loadFailures.inc());
    // Freshness: from the newest outcome a version learned from to that version serving here.
    const freshness = histogram(metrics, {
      name: 'flywheel_scorer_outcome_to_live_seconds',
      help: 'From the newest outcome a newly served version has seen to it serving in this scorer',
      buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 86400],
    });
    // The same on the stream's clock: to the newest click scored here, true in a replay of
    // history, whose events are months behind the wall clock.
    const freshnessEventTime = histogram(metrics, {
      name: 'flywheel_scorer_outcome_to_live_event_seconds',
      help: 'In event time: from the newest outcome a newly served version has seen to the newest click this scorer had scored',
      buckets: [1, 10, 60, 300, 1800, 3600, 6 * 3600, 86400, 7 * 86400],
    });
    this.manager.on('live', ({ version, outcomeAgeMs, learnedTime }) => {
      // The versions loaded at start-up were promoted before this scorer ran: not a measure of
      // how fast a new version reaches serving.
      if (outcomeAgeMs === null || !this.ready) return;
      freshness.observe(outcomeAgeMs / 1000);
      const eventSeconds =
        learnedTime !== null && Number.isFinite(this.newestScoredTime)
          ? Math.max(0, this.newestScoredTime - learnedTime) / 1000
          : null;
      if (eventSeconds !== null) freshnessEventTime.observe(eventSeconds);
      logger.info(
        { version, outcomeToLiveSeconds: outcomeAgeMs / 1000, outcomeToLiveEventSeconds: eventSeconds },
        'version live',
      );
    });

    // With the worker, both model sets take each update: this thread's (predict API) and the
    // stream's. Inline, the stream scores with this thread's.
    const paired = this.config.FW_SCORER_WORKER ? new PairedModels(this.manager, scoring, logger) : null;
    const models = {
      apply: async (update: ModelUpdate) => {
        if (!paired) return this.manager.apply(update);
        const { served, streamed } = await paired.apply(update);
        // This thread's failures are counted as its manager reports them; the worker's here.
        if (served && !streamed) loadFailures.inc();
        return served && streamed;
      },
    };
    this.follower = new ModelUpdatesFollower(
      runtime.kafka,
      runtime.codecs,
      models,
      logger,
      this.topics.modelUpdates,
    );
    await this.follower.start();
    await this.follower.caughtUp;
    this.ready = true;

    const producer = this.producer;
    this.consumer = new RecordConsumer({
      kafka: runtime.kafka,
      groupId: this.config.FW_SCORER_GROUP,
      service: 'scorer',
      subscriptions: { [this.topics.clicks]: 'click' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, this.topics.deadLetters),
      logger,
      metrics,
      ...limits,
      consumerConfig: groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      partitionsConsumedConcurrently: this.config.FW_SCORER_CONCURRENCY,
      onCrash: (error) => runtime.lifecycle.fail('click consumer', error),
      commitProgress: { commitIntervalMs: 200 },
      maxRetryDelayMs: runtime.config.FW_RETRY_MAX_BACKOFF_MS,
      // Decoded and validated by the pipeline, off this thread: it returns the messages it refuses.
      handleRaw: async (messages, { topic, partition }) => {
        const stop = batchSeconds.startTimer();
        // Queued a slice at a time and scored in order: a slice's predictions are sent while the
        // next is scored.
        const slice = this.config.FW_SCORER_SESSION_SLICE;
        const lane = `${topic}:${partition}`;
        const queued: { from: number; scoring: ReturnType<BatchScorer['score']> }[] = [];
        for (let from = 0; from < messages.length; from += slice) {
          const values = messages.slice(from, from + slice).map((m) => m.value);
          queued.push({ from, scoring: scoring.score(values, lane) });
        }
        // Each is awaited in turn below; one failing first must not go unhandled meanwhile.
        for (const { scoring } of queued) scoring.catch(() => undefined);
        const parts: ScoredBatchBytes[] = [];
        const rejected: RawRejection[] = [];
        let sent: Promise<void> = Promise.resolve();
        // The session writes: durable with the predictions, before the batch's offsets commit.
        const recorded: Promise<void>[] = [];
        try {
          for (const { from, scoring } of queued) {
            const part = await scoring;
            parts.push(part.scored);
            recorded.push(part.recorded);
            for (const r of part.scored.rejected) rejected.push({ ...r, index: from + r.index });
            const predictions = predictionMessages(part.scored);
            sent = sent.then(() => sendInChunks(producer, this.topics.predictions, predictions));
          }
        } finally {
          // Awaited below; a failure while later slices are scored must not go unhandled.
          sent.catch(() => undefined);
        }
        await Promise.all([sent, ...recorded]);
        for (const part of parts) {
          if (part.reviews.length > 0) {
            await this.reviewSink.submit(part.reviews);
            for (const task of part.reviews) reviews.inc({ reason: task.reason });
          }
          for (const [arm, count] of Object.entries(part.perArm)) predictionsPublished.inc({ arm }, count);
        }
        batchSize.observe(messages.length);
        sessionsHeld.set(parts.at(-1)?.sessionsHeld ?? 0);
        stop();
        // The joiner reads how far the clicks are scored from the committed offsets' metadata.
        const maxEventTime = Math.max(...parts.map((part) => part.maxEventTime));
        if (maxEventTime > this.newestScoredTime) this.newestScoredTime = maxEventTime;
        return { rejected, ...(Number.isFinite(maxEventTime) ? { maxEventTime } : {}) };
      },
    });
    // Another scorer may have scored (and written) this one's sessions while they were its own.
    const kafkaConsumer = this.consumer.consumer;
    kafkaConsumer.on(kafkaConsumer.events.GROUP_JOIN, () => scoring.clearSessions());
    await this.consumer.start();

    if (this.options.http !== false) {
      this.app = buildPredictApp({
        manager: this.manager,
        spec: this.spec,
        sessions,
        policy: this.policy,
        metrics,
        readiness: () => this.readiness(),
        logger,
        bodyLimit: this.config.FW_PREDICT_BODY_LIMIT,
        maxEvents: this.config.FW_PREDICT_MAX_EVENTS,
        debugFeatures: this.config.FW_DEBUG_FEATURES,
        maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      });
      await this.app.listen({ host: '0.0.0.0', port: this.config.FW_HTTP_PORT });
    }
    logger.info(
      { group: this.config.FW_SCORER_GROUP, port: this.port, routing: this.manager.current.routing },
      'scorer started',
    );
  }

  /** Ready once the model state is loaded and while the click stream makes progress. */
  readiness(): Readiness {
    if (!this.ready) return { ready: false, reason: 'model state not loaded yet' };
    return this.consumer ? readinessOf(this.consumer.health(), 'click stream') : { ready: true };
  }

  /** Stop taking traffic, finish the batch in flight, commit, then close connections. */
  async stop(): Promise<void> {
    await this.app?.close();
    await this.consumer?.stop();
    await this.follower?.stop();
    await this.producer?.disconnect();
    await this.scoring?.close();
    await this.redis?.quit();
  }
}

export async function runScorer(runtime: Runtime, reviewSink?: ReviewSink): Promise<number> {
  const scorer = new Scorer({ runtime, reviewSink });
  runtime.lifecycle.add('scorer', () => scorer.stop());
  runtime.lifecycle.installSignalHandlers();
  await scorer.start();
  process.send?.({ ready: true, port: scorer.port });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
