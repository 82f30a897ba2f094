// The scoring-and-labeling half of the loop on a test's own topics: a scorer and a joiner (in
// this process, or as child processes a test can kill), a read_committed reader of the labels,
// and the brute-force labels the same events must get. Used by the tests that feed it from
// outside producers, replays and faults.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickEvent, LabeledExample, PurchaseEvent } from '../../services/common/contracts.js';
import type { Runtime } from '../../services/common/runtime.js';
import { loadJoinerConfig, joinConfigFrom, type JoinerConfig } from '../../services/joiner/config.js';
import { Joiner } from '../../services/joiner/service.js';
import { loadScorerConfig } from '../../services/scorer/config.js';
import { MemoryReviewSink } from '../../services/scorer/review.js';
import { Scorer } from '../../services/scorer/service.js';
import { ShopSimulation, type SimEvent } from '../../services/simulator/generator.js';
import { TopicCollector } from './collect.js';
import { reference, type Input } from './join-reference.js';
import { createTestTopics, type TestTopics } from './kafka.js';

export type PipelineRole =
  'clicks' | 'purchases' | 'repartitioned' | 'predictions' | 'feedback' | 'dlq' | 'updates';
const ROLES: PipelineRole[] = [
  'clicks',
  'purchases',
  'repartitioned',
  'predictions',
  'feedback',
  'dlq',
  'updates',
];

/** Simulated shop events in event-time order, from `hoursAgo` on. */
export function shopEvents(seed: number, count: number, startTime: number, trafficRate = 20): SimEvent[] {
  const sim = new ShopSimulation({ seed, startTime, trafficRate });
  const out: SimEvent[] = [];
  while (out.length < count) out.push(sim.next());
  return out;
}

/** The brute-force label of every click (by its event id) under the joiner's rules. */
export function expectedLabels(events: SimEvent[], config: JoinerConfig): Map<string, 0 | 1> {
  const inputs: Input[] = events.map((e) =>
    e.type === 'click'
      ? {
          kind: 'prediction',
          value: {
            predictionId: e.click.eventId,
            eventId: e.click.eventId,
            userId: e.click.userId,
            itemId: e.click.itemId,
            sessionId: e.click.sessionId,
            clickTime: e.click.eventTime,
          },
        }
      : { kind: 'purchase', value: { ...e.purchase } },
  );
  return reference(inputs, joinConfigFrom(config));
}

export interface PipelineOptions {
  windowMs?: number;
  latenessMs?: number;
  idleMs?: number;
  partitions?: number;
}

export class LabelPipeline {
  readonly children: ChildProcess[] = [];
  labels!: TopicCollector<LabeledExample>;
  private inProcess: { stop(): Promise<void> }[] = [];
  /** The scorer and joiner started in this process, if any. */
  joiner: Joiner | undefined;
  scorer: Scorer | undefined;

  private constructor(
    private readonly runtime: Runtime,
    readonly topics: TestTopics<PipelineRole>,
    readonly registryDir: string,
    readonly joinerConfig: JoinerConfig,
    readonly scorerGroup: string,
  ) {}

  static async create(runtime: Runtime, options: PipelineOptions = {}): Promise<LabelPipeline> {
    const topics = await createTestTopics(runtime, ROLES, options.partitions ?? 3);
    const registryDir = await mkdtemp(join(tmpdir(), 'flywheel-pipeline-'));
    const group = `test.pipeline.${topics.names.clicks}`;
    const joinerConfig: JoinerConfig = {
      ...loadJoinerConfig({}),
      FW_JOINER_GROUP: `${group}.joiner`,
      FW_JOINER_TRANSACTIONAL_ID: `${group}.joiner`,
      FW_SCORER_GROUP: `${group}.scorer`,
      FW_JOIN_WINDOW_MS: options.windowMs ?? 10 * 60_000,
      FW_JOIN_ALLOWED_LATENESS_MS: options.latenessMs ?? 5_000,
      FW_JOIN_IDLE_MS: options.idleMs ?? 1_000,
      FW_JOIN_IDLE_LAG_MS: 0,
      // The tests' shops are hours old: once everything is idle the clock closes the last windows.
      FW_JOIN_LIVE_LAG_MS: 7 * 24 * 3600_000,
      FW_JOIN_PROGRESS_POLL_MS: 100,
      FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
    };
    const pipeline = new LabelPipeline(runtime, topics, registryDir, joinerConfig, `${group}.scorer`);
    pipeline.labels = await new TopicCollector<LabeledExample>(runtime.kafka, topics.names.feedback, (b) =>
      runtime.codecs.labeledExample.decode(b),
    ).start();
    return pipeline;
  }

  /** Environment of a scorer or joiner child process on these topics. */
  env(): NodeJS.ProcessEnv {
    const n = this.topics.names;
    const c = this.joinerConfig;
    return {
      ...process.env,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      FW_REGISTRY_DIR: this.registryDir,
      FW_SCORER_GROUP: this.scorerGroup,
      FW_JOINER_GROUP: c.FW_JOINER_GROUP,
      FW_JOINER_TRANSACTIONAL_ID: c.FW_JOINER_TRANSACTIONAL_ID,
      FW_JOIN_WINDOW_MS: String(c.FW_JOIN_WINDOW_MS),
      FW_JOIN_ALLOWED_LATENESS_MS: String(c.FW_JOIN_ALLOWED_LATENESS_MS),
      FW_JOIN_IDLE_MS: String(c.FW_JOIN_IDLE_MS),
      FW_JOIN_IDLE_LAG_MS: '0',
      FW_JOIN_LIVE_LAG_MS: String(c.FW_JOIN_LIVE_LAG_MS),
      FW_JOIN_PROGRESS_POLL_MS: String(c.FW_JOIN_PROGRESS_POLL_MS),
      FW_CONSUMER_SESSION_TIMEOUT_MS: '6000',
      FW_RETRY_MAX_BACKOFF_MS: '1000',
      CLICK_TOPIC: n.clicks,
      PREDICTION_TOPIC: n.predictions,
      PURCHASE_TOPIC: n.purchases,
      REPARTITIONED_TOPIC: n.repartitioned,
      FEEDBACK_TOPIC: n.feedback,
      DLQ_TOPIC: n.dlq,
      UPDATES_TOPIC: n.updates,
    };
  }

  /** A scorer and a joiner in this process (the heuristic baseline scores: no model is registered). */
  async startInProcess(options: { http?: boolean } = {}): Promise<void> {
    const n = this.topics.names;
    process.env.FW_REGISTRY_DIR = this.registryDir;
    const scorer = new Scorer({
      runtime: this.runtime,
      http: options.http ?? false,
      reviewSink: new MemoryReviewSink(),
      config: {
        ...loadScorerConfig({}),
        FW_SCORER_GROUP: this.scorerGroup,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
        FW_HTTP_PORT: 0,
      },
      topics: { clicks: n.clicks, predictions: n.predictions, deadLetters: n.dlq, modelUpdates: n.updates },
    });
    const joiner = new Joiner({
      runtime: this.runtime,
      http: false,
      config: this.joinerConfig,
      topics: {
        clicks: n.clicks,
        predictions: n.predictions,
        purchases: n.purchases,
        repartitioned: n.repartitioned,
        feedback: n.feedback,
        deadLetters: n.dlq,
      },
    });
    await scorer.start();
    this.inProcess.push(scorer);
    this.scorer = scorer;
    await joiner.start();
    this.inProcess.push(joiner);
    this.joiner = joiner;
  }

  /** A scorer or joiner child process; resolves once it is ready. */
  startProcess(which: 'scorer' | 'joiner'): Promise<{ child: ChildProcess; exited: Promise<unknown> }> {
    return this.startProcessWith(which, {});
  }

  /** As startProcess, with more environment; `waitReady` false for one that is meant to die early. */
  async startProcessWith(
    which: 'scorer' | 'joiner',
    env: Record<string, string>,
    waitReady = true,
  ): Promise<{ child: ChildProcess; exited: Promise<unknown> }> {
    const child = fork(join(import.meta.dirname, '..', 'fixtures', `${which}-process.ts`), {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...this.env(), ...env },
    });
    this.children.push(child);
    const exited = once(child, 'exit');
    if (!waitReady) return { child, exited };
    await Promise.race([
      once(child, 'message'),
      exited.then(() => {
        throw new Error(`the ${which} exited before it was ready`);
      }),
    ]);
    return { child, exited };
  }

  /** The latest label of each click (by event id), once every click in `clicks` has one. */
  async labelsOf(clicks: readonly string[], timeoutMs = 120_000): Promise<Map<string, LabeledExample>> {
    const want = new Set(clicks);
    const latest = (records: { value: LabeledExample }[]) => {
      const out = new Map<string, LabeledExample>();
      for (const { value } of records) {
        if (!want.has(value.eventId)) continue;
        const seen = out.get(value.eventId);
        if (!seen || value.revision > seen.revision) out.set(value.eventId, value);
      }
      return out;
    };
    await this.labels
      .until((records) => latest(records).size >= want.size, `labels of ${want.size} clicks`, timeoutMs)
      .catch((error: unknown) => {
        // Where the join stands says why it waits.
        if (this.joiner) console.error('joiner partitions:', JSON.stringify(this.joiner.partitionStates()));
        throw error;
      });
    return latest(this.labels.records);
  }

  async close(): Promise<void> {
    for (const part of this.inProcess.reverse()) await part.stop();
    for (const child of this.children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.labels.stop();
    await this.topics.cleanup();
    await rm(this.registryDir, { recursive: true, force: true });
  }
}

export type { ClickEvent, PurchaseEvent };
