// `flywheel monitor`: reads fw.predictions and fw.feedback.labeled into the pure core (core.ts)
// and, every FW_MONITOR_LOOK_MS, judges the windows: Prometheus gauges, alerts (logged, counted,
// kept in a history), a candidate asked of the trainer on drift or poor performance (with a
// cooldown), and a checkpoint of the windows with the offsets they reach (checkpoint.ts). On
// start every partition is sought to its checkpointed offset, so a record is counted once across
// restarts. Each version's reference (feature profile, calibration) is read from the registry.
import type { FastifyInstance } from 'fastify';
import Fastify from 'fastify';
import type { Producer } from 'kafkajs';
import { TokenTable, requireRole } from '../common/auth.js';
import { RecordConsumer, groupTimeouts, readinessOf } from '../common/consumer.js';
import { seekToStoredOffsets } from '../common/stored-offsets.js';
import { DeadLetterPublisher } from '../common/dead-letters.js';
import { installErrorHandler } from '../common/http-errors.js';
import { createProducer } from '../common/kafka.js';
import type { DeadLetter, HumanLabel, LabeledExample, Prediction } from '../common/contracts.js';
import type { Logger } from '../common/logger.js';
import type { Runtime } from '../common/runtime.js';
import { addServiceRoutes } from '../common/service-routes.js';
import { TOPICS } from '../common/topics.js';
import { FeatureSpec } from '../model/features.js';
import { ProfileReader } from '../model/profile.js';
import { loadRegistryConfig } from '../registry/config.js';
import { FileModelRegistry } from '../registry/store.js';
import type { Alert } from './alerts.js';
import { HISTORY_SIZE, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { loadMonitorConfig, type MonitorConfig } from './config.js';
import { MonitorCore, type Look, type VersionReference } from './core.js';
import { monitorMetrics } from './metrics.js';
import { deadLetterReport, emptyDeadLetters } from './dead-letters.js';
import { seriesOf } from './series.js';

type Subscriptions = Record<string, 'prediction' | 'labeledExample' | 'deadLetter' | 'humanLabel'>;
/** A version whose metadata could not be read is asked again after this long. */
const REFERENCE_RETRY_MS = 30_000;

export interface MonitorOptions {
  runtime: Runtime;
  config?: MonitorConfig;
  registryDir?: string;
  adminToken?: string;
  topics?: { predictions?: string; feedback?: string; deadLetters?: string; humanLabels?: string };
  http?: boolean;
  /** Told after every look (tests wait on it). */
  onLook?: (look: Look) => void;
}

export class Monitor {
  readonly config: MonitorConfig;
  private readonly log: Logger;
  private readonly registry: FileModelRegistry;
  private readonly metrics: ReturnType<typeof monitorMetrics>;
  private readonly topics: {
    predictions: string;
    feedback: string;
    deadLetters: string;
    humanLabels: string;
  };
  private readonly references = new Map<string, { value: VersionReference | null; at: number }>();
  private core: MonitorCore | undefined;
  private offsets: Record<string, string> = {};
  private history: Alert[] = [];
  private last: Look | null = null;
  /** Newest serve, label and failure time read (wall clock, ms): how fresh each input is. */
  private readonly newest: Record<'predictions' | 'labels' | 'deadLetters', number | null> = {
    predictions: null,
    labels: null,
    deadLetters: null,
  };
  private producer: Producer | undefined;
  private consumer: RecordConsumer<Subscriptions> | undefined;
  private app: FastifyInstance | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private looking: Promise<void> = Promise.resolve();

  constructor(private readonly options: MonitorOptions) {
    this.config = options.config ?? loadMonitorConfig();
    this.log = options.runtime.logger.child({ component: 'monitor' });
    this.registry = new FileModelRegistry(options.registryDir ?? loadRegistryConfig().FW_REGISTRY_DIR);
    this.metrics = monitorMetrics(options.runtime.metrics);
    this.topics = {
      predictions: options.topics?.predictions ?? TOPICS.predictions,
      feedback: options.topics?.feedback ?? TOPICS.feedback,
      deadLetters: options.topics?.deadLetters ?? TOPICS.deadLetters,
      humanLabels: options.topics?.humanLabels ?? TOPICS.humanLabels,
    };
  }

  get port(): number | null {
    const address = this.app?.server.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  /** The newest look (null before the first). */
  get lastLook(): Look | null {
    return this.last;
  }

  get alertHistory(): readonly Alert[] {
    return this.history;
  }

  async start(): Promise<void> {
    const { runtime } = this.options;
    const c = this.config;
    const checkpoint = await readCheckpoint(c.FW_MONITOR_DIR);
    this.offsets = { ...(checkpoint?.offsets ?? {}) };
    this.history = checkpoint?.history ?? [];
    Object.assign(this.newest, checkpoint?.inputs ?? {});
    const spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
    this.core = new MonitorCore(
      {
        bucketMs: c.FW_MONITOR_BUCKET_MS,
        windowMs: c.FW_MONITOR_WINDOW_MS,
        labelLagMs: c.FW_MONITOR_LABEL_LAG_MS,
        retentionMs: c.FW_MONITOR_RETENTION_MS,
        historyMs: c.FW_MONITOR_HISTORY_MS,
        drift: {
          falseAlarmsPerDay: c.FW_MONITOR_FALSE_ALARMS_PER_DAY,
          looksPerDay: 86_400_000 / c.FW_MONITOR_LOOK_MS,
          minRecords: c.FW_MONITOR_MIN_RECORDS,
          minDistance: c.FW_MONITOR_MIN_DISTANCE,
          ignore: ['hourOfDay'],
        },
        alerts: {
          thresholds: {
            maxLogLoss: c.FW_MONITOR_MAX_LOG_LOSS ?? null,
            minAuc: c.FW_MONITOR_MIN_AUC ?? null,
            maxEce: c.FW_MONITOR_MAX_ECE ?? null,
            minLabels: c.FW_MONITOR_MIN_LABELS,
          },
          cooldownMs: c.FW_MONITOR_COOLDOWN_MS,
          retrainOn: ['drift', 'performance'],
        },
      },
      new ProfileReader(spec),
      (version) => this.referenceOf(version),
      checkpoint?.state,
    );
    this.producer = createProducer(runtime.kafka);
    await this.producer.connect();
    this.consumer = this.createConsumer(this.producer);
    await this.consumer.start();
    this.log.info(
      { offsets: this.offsets, lookMs: c.FW_MONITOR_LOOK_MS, trainer: c.FW_MONITOR_TRAINER_URL ?? null },
      'monitor started',
    );
    this.ticker = setInterval(() => void this.lookNow(), c.FW_MONITOR_LOOK_MS);
    if (this.options.http !== false) await this.listen();
  }

  /** One look now (after any look under way); the timer calls it too. */
  lookNow(): Promise<void> {
    this.looking = this.looking
      .then(() => this.look())
      .catch((err: unknown) => this.log.error({ err }, 'the look failed; the next one retries'));
    return this.looking;
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    await this.looking;
    await this.consumer?.stop();
    await this.app?.close();
    await this.producer?.disconnect();
  }

  private async look(): Promise<void> {
    const core = this.core;
    if (!core) return;
    const look = core.look(Date.now());
    this.last = look;
    this.metrics.show(look, core.windows.state.tooOld);
    for (const [input, { ageSeconds }] of Object.entries(this.inputs(look.at)))
      if (ageSeconds !== null) this.metrics.inputAge.set({ input }, ageSeconds);
    for (const alert of look.judgement.alerts) {
      this.metrics.alerts.inc({ kind: alert.kind });
      this.log.warn({ alert }, `alert: ${alert.message} (${alert.version}/${alert.arm})`);
    }
    this.history = [...this.history, ...look.judgement.alerts].slice(-HISTORY_SIZE);
    // State, offsets and history at one instant: nothing is taken in between (no await).
    const serialized = JSON.stringify({
      version: 1,
      writtenAt: Date.now(),
      offsets: this.offsets,
      state: core.snapshot(),
      history: this.history,
      inputs: this.newest,
    });
    await writeCheckpoint(this.config.FW_MONITOR_DIR, serialized);
    if (look.judgement.retrain) await this.askForCandidate(look.judgement.retrain.reason);
    this.options.onLook?.(look);
  }

  /** Asks the trainer for a candidate (its POST /v1/candidates, as an alarm). */
  private async askForCandidate(reason: string): Promise<void> {
    const url = this.config.FW_MONITOR_TRAINER_URL;
    if (!url) {
      this.metrics.retrains.inc({ outcome: 'no_trainer_url' });
      this.log.warn({ reason }, 'a retrain is due, but FW_MONITOR_TRAINER_URL is not set');
      return;
    }
    const token = this.options.adminToken ?? loadRegistryConfig().FW_ADMIN_TOKEN;
    try {
      const response = await fetch(new URL('/v1/candidates', url), {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify({ reason: reason.slice(0, 1000), trigger: 'alarm' }),
        signal: AbortSignal.timeout(10_000),
      });
      if (response.ok) {
        this.metrics.retrains.inc({ outcome: 'sent' });
        this.log.info({ reason }, 'asked the trainer for a candidate');
        return;
      }
      this.metrics.retrains.inc({ outcome: 'failed' });
      this.log.error(
        { reason, status: response.status, answer: (await response.text()).slice(0, 500) },
        'the trainer refused the candidate request (the cooldown still runs)',
      );
    } catch (err) {
      this.metrics.retrains.inc({ outcome: 'failed' });
      this.log.error({ err, reason }, 'asking the trainer for a candidate failed (the cooldown still runs)');
    }
  }

  private took(core: MonitorCore, kind: string, value: unknown): void {
    const newer = (input: keyof Monitor['newest'], at: number) =>
      (this.newest[input] = Math.max(this.newest[input] ?? at, at));
    if (kind === 'deadLetter') {
      core.takeDeadLetters([value as DeadLetter]);
      newer('deadLetters', (value as DeadLetter).failedAt);
      return;
    }
    if (kind === 'humanLabel') {
      core.takeHumanLabels([value as HumanLabel]);
      return;
    }
    if (kind === 'prediction') {
      core.takePredictions([value as Prediction]);
      newer('predictions', (value as Prediction).serveTime);
    } else {
      core.takeLabels([value as LabeledExample]);
      newer('labels', (value as LabeledExample).labelTime);
    }
    this.referenceOf((value as { modelVersion: string | null }).modelVersion ?? '');
  }

  /** How long ago each input's newest record was served, labeled or refused (null: none read). */
  inputs(now = Date.now()) {
    return Object.fromEntries(
      Object.entries(this.newest).map(([input, at]) => [
        input,
        { newestAt: at, ageSeconds: at === null ? null : Math.max(0, (now - at) / 1000) },
      ]),
    );
  }

  /** The version's reference as last read; a first sight (or a stale miss) reads it again. */
  private referenceOf(version: string): VersionReference | null {
    const cached = this.references.get(version);
    if (!cached || (cached.value === null && Date.now() - cached.at > REFERENCE_RETRY_MS)) {
      this.references.set(version, { value: cached?.value ?? null, at: Date.now() });
      void this.registry
        .get(version)
        .then((m) => {
          const reference = m.reference
            ? { profile: m.reference.profile, calibration: m.reference.calibration }
            : null;
          this.references.set(version, { value: reference, at: Date.now() });
        })
        .catch(() => undefined);
    }
    return cached?.value ?? null;
  }

  private take(
    records: { topic: string; partition: number; offset: string; kind: string; value: unknown }[],
  ) {
    const core = this.core;
    if (!core) return;
    for (const record of records) {
      const key = `${record.topic}:${record.partition}`;
      const taken = this.offsets[key];
      // A batch tried again or fetched again after a restart: counted once.
      if (taken !== undefined && BigInt(record.offset) < BigInt(taken)) continue;
      this.took(core, record.kind, record.value);
      this.offsets[key] = (BigInt(record.offset) + 1n).toString();
    }
  }

  private createConsumer(producer: Producer): RecordConsumer<Subscriptions> {
    const { runtime } = this.options;
    const consumer = new RecordConsumer<Subscriptions>({
      kafka: runtime.kafka,
      groupId: this.config.FW_MONITOR_GROUP,
      service: 'monitor',
      // The dead letters too (the console's view of them); one that does not decode is logged
      // and skipped, never dead-lettered again (consumer.ts).
      subscriptions: {
        [this.topics.predictions]: 'prediction',
        [this.topics.feedback]: 'labeledExample',
        [this.topics.deadLetters]: 'deadLetter',
        // Validity flags: outcomes of predictions labelers flagged are left out (flags.ts).
        [this.topics.humanLabels]: 'humanLabel',
      },
      codecs: runtime.codecs,
      deadLetters: new DeadLetterPublisher(producer, runtime.codecs.deadLetter, this.topics.deadLetters),
      logger: runtime.logger,
      metrics: runtime.metrics,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
      maxRetryDelayMs: runtime.config.FW_RETRY_MAX_BACKOFF_MS,
      onCrash: (error) => runtime.lifecycle.fail('monitor consumer', error),
      consumerConfig: groupTimeouts(this.config.FW_CONSUMER_SESSION_TIMEOUT_MS),
      fromBeginning: true,
      handle: (records) => {
        this.take(records);
        return Promise.resolve();
      },
    });
    // The checkpoint says where the windows end; a partition it does not name is read from where
    // the group left it (from the beginning for a new group: the retention drops what is old).
    seekToStoredOffsets(consumer.consumer, () => this.offsets);
    return consumer;
  }

  private async listen(): Promise<void> {
    const app = Fastify({ bodyLimit: 4096 });
    installErrorHandler(app);
    addServiceRoutes(app, {
      metrics: this.options.runtime.metrics,
      health: () => ({ ok: true, service: 'monitor', lastLookAt: this.last?.at ?? null }),
      readiness: () =>
        this.consumer
          ? readinessOf(this.consumer.health(), 'monitor inputs')
          : { ready: false, reason: 'starting' },
    });
    // What the monitor knows (dead letters carry message bytes) is for admins where a token is set.
    const token = this.options.adminToken ?? loadRegistryConfig().FW_ADMIN_TOKEN;
    const admins = token
      ? { preHandler: requireRole(new TokenTable().add(token, { id: 'admin', role: 'admin' }), 'admin') }
      : {};
    app.get('/v1/monitor', admins, () => ({
      ...(this.last ?? { at: null, observations: [] }),
      inputs: this.inputs(),
    }));
    app.get('/v1/monitor/alerts', admins, () => ({ alerts: this.history }));
    app.get('/v1/monitor/dead-letters', admins, () =>
      this.core ? deadLetterReport(this.core.deadLetters) : deadLetterReport(emptyDeadLetters()),
    );
    app.get<{ Querystring: { maxPoints?: number } }>(
      '/v1/monitor/series',
      {
        ...admins,
        schema: {
          querystring: {
            type: 'object',
            properties: { maxPoints: { type: 'integer', minimum: 10, maximum: 2000 } },
          },
        },
      },
      (request) => ({
        series: this.core
          ? seriesOf(
              this.core.windows,
              request.query.maxPoints,
              this.core.history,
              this.config.FW_MONITOR_LABEL_LAG_MS,
            )
          : [],
      }),
    );
    await app.listen({ host: '0.0.0.0', port: this.config.FW_MONITOR_HTTP_PORT });
    this.app = app;
  }
}

export async function runMonitor(runtime: Runtime): Promise<number> {
  const monitor = new Monitor({ runtime });
  runtime.lifecycle.add('monitor', () => monitor.stop());
  runtime.lifecycle.installSignalHandlers();
  await monitor.start();
  process.send?.({ ready: true, port: monitor.port });
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
