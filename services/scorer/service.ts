// `flywheel scorer`: consumes clicks in a consumer group, scores them with the routed models,
// publishes predictions (offsets commit only after Kafka acknowledged them), hands uncertain
// cases to the review sink, follows model updates and hot-swaps between slices of a batch, and
// serves the predict API from the same versions. The batches are scored in a worker thread
// (scoring-worker.ts); this thread moves their bytes between Kafka and it.
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { ModelUpdate } from '../common/contracts.js';
import { RecordConsumer, groupTimeouts, readinessOf, type Readiness } from '../common/consumer.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { createProducer } from '../common/kafka.js';
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
import { scorerMetrics, watchModels, type ScorerMetrics } from './metrics.js';
import { ScoringPipeline } from './pipeline.js';
import { publishingHandler } from './publish.js';
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
    await initBackend(runtime.logger);
    this.redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await this.redis.connect();
    const sessionOptions: SessionStoreOptions = {
      idleSeconds: this.config.FW_SESSION_IDLE_SECONDS,
      maxClicksPerSession: 500,
      maxSessions: this.config.FW_SCORER_SESSION_CACHE,
    };
    // This thread's sessions: the predict API's reads, and the stream's when scoring inline.
    const sessions = new RedisSessionStore(this.redis, sessionOptions);
    const scoring = await this.startScoring(sessions, sessionOptions);
    const metrics = scorerMetrics(runtime.metrics);
    watchModels(this.manager, metrics, runtime.logger, {
      started: () => this.ready,
      newestScoredTime: () => this.newestScoredTime,
    });
    await this.followModels(scoring, metrics);
    this.ready = true;
    await this.consumeClicks(scoring, metrics);
    if (this.options.http !== false) await this.listen(sessions);
    runtime.logger.info(
      { group: this.config.FW_SCORER_GROUP, port: this.port, routing: this.manager.current.routing },
      'scorer started',
    );
  }

  private get limits() {
    const { config } = this.options.runtime;
    return { maxMessageBytes: config.FW_MAX_MESSAGE_BYTES, maxClockSkewMs: config.FW_MAX_CLOCK_SKEW_MS };
  }

  /** The stream's scoring: in a worker thread, or inline on this one (FW_SCORER_WORKER off). */
  private async startScoring(
    sessions: RedisSessionStore,
    sessionOptions: SessionStoreOptions,
  ): Promise<BatchScorer> {
    const { runtime } = this.options;
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
            limits: this.limits,
          },
          runtime.logger,
        )
      : inlineScorer(
          new ScoringPipeline({
            codecs: runtime.codecs,
            spec: this.spec,
            manager: this.manager,
            sessions,
            policy: this.policy,
            limits: this.limits,
          }),
        );
    return this.scoring;
  }

  /** Follows fw.models.updates and returns once caught up with what it held at start. */
  private async followModels(scoring: BatchScorer, metrics: ScorerMetrics): Promise<void> {
    const { runtime } = this.options;
    // With the worker, both model sets take each update: this thread's (predict API) and the
    // stream's. Inline, the stream scores with this thread's.
    const paired = this.config.FW_SCORER_WORKER
      ? new PairedModels(this.manager, scoring, runtime.logger)
      : null;
    const models = {
      apply: async (update: ModelUpdate) => {
        if (!paired) return this.manager.apply(update);
        const { served, streamed } = await paired.apply(update);
        // This thread's failures are counted as its manager reports them; the worker's here.
        if (served && !streamed) metrics.loadFailures.inc();
        return served && streamed;
      },
    };
    this.follower = new ModelUpdatesFollower(
      runtime.kafka,
      runtime.codecs,
      models,
      runtime.logger,
      this.topics.modelUpdates,
    );
    await this.follower.start();
    await this.follower.caughtUp;
  }

  private async consumeClicks(scoring: BatchScorer, metrics: ScorerMetrics): Promise<void> {
    const { runtime } = this.options;
    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();
    const producer = this.producer;
    this.consumer = new RecordConsumer({
      kafka: runtime.kafka,
      groupId: this.config.FW_SCORER_GROUP,
      service: 'scorer',
      subscriptions: { [this.topics.clicks]: 'click' },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, this.topics.deadLetters),
      logger: runtime.logger,
      metrics: runtime.metrics,
      ...this.limits,
      consumerConfig: groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      partitionsConsumedConcurrently: this.config.FW_SCORER_CONCURRENCY,
      onCrash: (error) => runtime.lifecycle.fail('click consumer', error),
      commitProgress: { commitIntervalMs: 200 },
      maxRetryDelayMs: runtime.config.FW_RETRY_MAX_BACKOFF_MS,
      // Decoded and validated by the pipeline, off this thread: it returns the messages it refuses.
      handleRaw: publishingHandler({
        scoring,
        producer,
        predictionsTopic: this.topics.predictions,
        reviewSink: this.reviewSink,
        metrics,
        slice: this.config.FW_SCORER_SESSION_SLICE,
        onScored: (maxEventTime) => {
          if (maxEventTime > this.newestScoredTime) this.newestScoredTime = maxEventTime;
        },
      }),
    });
    // Another scorer may have scored (and written) this one's sessions while they were its own.
    const kafkaConsumer = this.consumer.consumer;
    kafkaConsumer.on(kafkaConsumer.events.GROUP_JOIN, () => scoring.clearSessions());
    await this.consumer.start();
  }

  private async listen(sessions: RedisSessionStore): Promise<void> {
    const { runtime } = this.options;
    this.app = buildPredictApp({
      manager: this.manager,
      spec: this.spec,
      sessions,
      policy: this.policy,
      metrics: runtime.metrics,
      readiness: () => this.readiness(),
      logger: runtime.logger,
      bodyLimit: this.config.FW_PREDICT_BODY_LIMIT,
      maxEvents: this.config.FW_PREDICT_MAX_EVENTS,
      debugFeatures: this.config.FW_DEBUG_FEATURES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
    });
    await this.app.listen({ host: '0.0.0.0', port: this.config.FW_HTTP_PORT });
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
