// `flywheel scorer`: consumes clicks in a consumer group, scores them with the routed models,
// publishes predictions (offsets commit only after Kafka acknowledged them), hands uncertain
// cases to the review sink, follows model updates and hot-swaps between batches, and serves
// the predict API from the same models.
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { ClickEvent } from '../common/contracts.js';
import { RecordConsumer, groupTimeouts } from '../common/consumer.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { createProducer, sendInChunks } from '../common/kafka.js';
import { counter, gauge, histogram } from '../common/metrics.js';
import { createRedis } from '../common/redis.js';
import { Random } from '../common/random.js';
import type { Runtime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { initBackend } from '../model/backend.js';
import { FeatureSpec } from '../model/features.js';
import { loadRegistryConfig } from '../registry/config.js';
import { FileModelRegistry } from '../registry/store.js';
import { loadScorerConfig, type ScorerConfig } from './config.js';
import { buildPredictApp } from './http.js';
import { ModelManager } from './model-manager.js';
import { MemoryReviewSink, type ReviewPolicyConfig, type ReviewSink, type ReviewTask } from './review.js';
import { scoreBatch } from './scoring.js';
import { RedisSessionStore } from './session-store.js';
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
  private app: FastifyInstance | undefined;
  private ready = false;
  readonly spec: FeatureSpec;
  private readonly policy: ReviewPolicyConfig;
  private readonly reviewSink: ReviewSink;

  constructor(private readonly options: ScorerOptions) {
    const { runtime } = options;
    this.config = options.config ?? loadScorerConfig();
    const registryConfig = loadRegistryConfig();
    this.spec = new FeatureSpec({ hashBits: registryConfig.FW_FEATURE_HASH_BITS });
    this.topics = {
      clicks: TOPICS.clicks,
      predictions: TOPICS.predictions,
      deadLetters: TOPICS.deadLetters,
      modelUpdates: TOPICS.modelUpdates,
      ...options.topics,
    };
    this.manager = new ModelManager(
      new FileModelRegistry(registryConfig.FW_REGISTRY_DIR),
      this.spec,
      runtime.logger,
    );
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
    const sessions = new RedisSessionStore(this.redis, {
      idleSeconds: this.config.FW_SESSION_IDLE_SECONDS,
      maxClicksPerSession: 500,
      maxSessions: this.config.FW_SCORER_SESSION_CACHE,
    });
    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();

    const scored = counter(metrics, {
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
    this.manager.on('live', ({ version, outcomeAgeMs }) => {
      // The versions loaded at start-up were promoted before this scorer ran: not a measure of
      // how fast a new version reaches serving.
      if (outcomeAgeMs === null || !this.ready) return;
      freshness.observe(outcomeAgeMs / 1000);
      logger.info({ version, outcomeToLiveSeconds: outcomeAgeMs / 1000 }, 'version live');
    });

    this.follower = new ModelUpdatesFollower(
      runtime.kafka,
      runtime.codecs,
      this.manager,
      logger,
      this.topics.modelUpdates,
    );
    await this.follower.start();
    await this.follower.caughtUp;
    this.ready = true;

    const random = new Random(Date.now() >>> 0);
    const predictionSchema = await runtime.codecs.prediction.schemaId();
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
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      consumerConfig: groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      partitionsConsumedConcurrently: this.config.FW_SCORER_CONCURRENCY,
      handle: async (records) => {
        const stop = batchSeconds.startTimer();
        const clicks: ClickEvent[] = records.map((r) => r.value);
        // Sessions not held in memory are loaded a slice ahead, while this slice is scored.
        const slices: ClickEvent[][] = [];
        const slice = this.config.FW_SCORER_SESSION_SLICE;
        for (let i = 0; i < clicks.length; i += slice) slices.push(clicks.slice(i, i + slice));
        const messages: { key: string; value: Buffer }[] = [];
        const batchReviews: ReviewTask[] = [];
        const perArm = new Map<string, number>();
        // The whole batch is scored with the model set it began with.
        const set = this.manager.acquire();
        let loading: Promise<void> | null = sessions.load(slices[0] ?? []);
        // Redis writes of the batch's new clicks: durable before its offsets commit.
        const recorded: Promise<void>[] = [];
        try {
          for (let i = 0; i < slices.length; i++) {
            await loading;
            const observed = await sessions.observe(slices[i] as ClickEvent[]);
            recorded.push(observed.recorded);
            // Awaited with the send below; a failure before then must not go unhandled.
            observed.recorded.catch(() => undefined);
            // Issued after this slice's write, so it reads the clicks just recorded.
            loading = i + 1 < slices.length ? sessions.load(slices[i + 1] as ClickEvent[]) : null;
            const result = scoreBatch(slices[i] as ClickEvent[], observed.contexts, {
              spec: this.spec,
              set,
              policy: this.policy,
              now: Date.now(),
              draw: () => random.next(),
            });
            const encoded = runtime.codecs.prediction.encodeAllWith(predictionSchema, result.predictions);
            result.predictions.forEach((p, k) => {
              messages.push({ key: p.userId, value: encoded[k] as Buffer });
              perArm.set(p.arm, (perArm.get(p.arm) ?? 0) + 1);
            });
            batchReviews.push(...result.reviews);
          }
        } catch (error) {
          loading?.catch(() => undefined);
          throw error;
        } finally {
          this.manager.release(set);
        }
        await Promise.all([sendInChunks(producer, this.topics.predictions, messages), ...recorded]);
        if (batchReviews.length > 0) {
          await this.reviewSink.submit(batchReviews);
          for (const task of batchReviews) reviews.inc({ reason: task.reason });
        }
        for (const [arm, count] of perArm) scored.inc({ arm }, count);
        batchSize.observe(clicks.length);
        sessionsHeld.set(sessions.cachedSessions);
        stop();
      },
    });
    // Another scorer may have scored (and written) this one's sessions while they were its own.
    const kafkaConsumer = this.consumer.consumer;
    kafkaConsumer.on(kafkaConsumer.events.GROUP_JOIN, () => sessions.clear());
    await this.consumer.start();

    if (this.options.http !== false) {
      this.app = buildPredictApp({
        manager: this.manager,
        spec: this.spec,
        sessions,
        policy: this.policy,
        metrics,
        ready: () => this.ready,
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

  /** Stop taking traffic, finish the batch in flight, commit, then close connections. */
  async stop(): Promise<void> {
    await this.app?.close();
    await this.consumer?.stop();
    await this.follower?.stop();
    await this.producer?.disconnect();
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
