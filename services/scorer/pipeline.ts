// The scorer's own work on a batch of click messages as fetched: decode and validate each, work
// out its session context, score it with the routed models, and encode the predictions into one
// allocation. It runs in the scoring worker (worker.ts) or, with FW_SCORER_WORKER off, on the
// thread that talks to Kafka; either way the caller gets bytes to send and the messages refused.
import type { ClickEvent, Codecs, Prediction } from '../common/contracts.js';
import { classifyAll } from '../common/classify.js';
import type { RawRejection } from '../common/consumer.js';
import { Random } from '../common/random.js';
import type { FeatureSpec } from '../model/features.js';
import type { ModelManager } from './model-manager.js';
import type { ReviewPolicyConfig, ReviewTask } from './review.js';
import { scoreBatch, type ScoredBatch } from './scoring.js';
import type { RedisSessionStore } from './session-store.js';

export interface PipelineLimits {
  maxMessageBytes: number;
  maxClockSkewMs: number;
}

/** The predictions of a batch, ready to send: value k is bytes[ends[k-1] ?? 0, ends[k]). */
export interface ScoredBatchBytes {
  bytes: Uint8Array;
  ends: Uint32Array;
  /** Kafka key (user id) of each prediction. */
  keys: string[];
  /** Messages refused (undecodable or invalid), by index in the batch. */
  rejected: RawRejection[];
  reviews: ReviewTask[];
  /** Predictions per arm. */
  perArm: Record<string, number>;
  sessionsHeld: number;
  /** Newest event time among the clicks scored (-Infinity when none): the scorer's progress. */
  maxEventTime: number;
}

export interface PipelineOptions {
  codecs: Codecs;
  spec: FeatureSpec;
  manager: ModelManager;
  sessions: RedisSessionStore;
  policy: ReviewPolicyConfig;
  limits: PipelineLimits;
}

export class ScoringPipeline {
  private readonly random = new Random(Date.now() >>> 0);
  private predictionSchema: number | undefined;

  constructor(private readonly options: PipelineOptions) {}

  get sessions(): RedisSessionStore {
    return this.options.sessions;
  }

  /**
   * Score a batch, with one session load and one write in Redis (the scorer passes
   * FW_SCORER_SESSION_SLICE messages at a time). `recorded` resolves once Redis has the batch's new
   * clicks: the caller awaits it with the Kafka send, before the offsets commit. Failures of Redis
   * reject as retriable.
   */
  async score(
    values: readonly (Buffer | null)[],
  ): Promise<{ scored: ScoredBatchBytes; recorded: Promise<void> }> {
    const { codecs, sessions, manager, spec, policy } = this.options;
    this.predictionSchema ??= await codecs.prediction.schemaId();
    const schema = this.predictionSchema;
    const { clicks, rejected, maxEventTime } = await this.decode(values);
    await sessions.load(clicks);
    const observed = await sessions.observe(clicks);
    // Awaited by the caller with its Kafka send; a failure before then must not go unhandled.
    observed.recorded.catch(() => undefined);
    // All of these clicks are scored with the model set current now, even if a swap comes meanwhile.
    const set = manager.acquire();
    let scoredClicks: ScoredBatch;
    try {
      scoredClicks = scoreBatch(clicks, observed.contexts, {
        spec,
        set,
        policy,
        now: Date.now(),
        draw: () => this.random.next(),
      });
    } finally {
      manager.release(set);
    }
    const { predictions, reviews } = scoredClicks;

    const { slab, ends } = codecs.prediction.encodeAll(schema, predictions);
    const keys = new Array<string>(predictions.length);
    const perArm: Record<string, number> = {};
    for (let k = 0; k < predictions.length; k++) {
      const p = predictions[k] as Prediction;
      keys[k] = p.userId;
      perArm[p.arm] = (perArm[p.arm] ?? 0) + 1;
    }
    return {
      scored: {
        bytes: slab,
        ends: Uint32Array.from(ends),
        keys,
        rejected,
        reviews,
        perArm,
        sessionsHeld: sessions.cachedSessions,
        maxEventTime,
      },
      recorded: observed.recorded,
    };
  }
  /** The clicks that decode and validate, the messages refused, and the newest click time. */
  private async decode(
    values: readonly (Buffer | null)[],
  ): Promise<{ clicks: ClickEvent[]; rejected: RawRejection[]; maxEventTime: number }> {
    const limits = { ...this.options.limits, now: Date.now() };
    const results = await classifyAll(
      values.map((value) => ({ value })),
      'click',
      this.options.codecs,
      limits,
    );
    const clicks: ClickEvent[] = [];
    const rejected: RawRejection[] = [];
    let maxEventTime = -Infinity;
    results.forEach((result, index) => {
      if (result.ok) {
        clicks.push(result.value);
        if (result.value.eventTime > maxEventTime) maxEventTime = result.value.eventTime;
      } else rejected.push({ index, code: result.code, reason: result.reason });
    });
    return { clicks, rejected, maxEventTime };
  }
}

/** The Kafka messages of a scored batch: views of its bytes, no copies. */
export function predictionMessages(scored: ScoredBatchBytes): { key: string; value: Buffer }[] {
  const { bytes, ends, keys } = scored;
  const messages = new Array<{ key: string; value: Buffer }>(keys.length);
  let from = 0;
  for (let k = 0; k < keys.length; k++) {
    const end = ends[k] as number;
    messages[k] = {
      key: keys[k] as string,
      value: Buffer.from(bytes.buffer, bytes.byteOffset + from, end - from),
    };
    from = end;
  }
  return messages;
}
