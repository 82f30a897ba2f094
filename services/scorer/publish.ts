// What the scorer does with one fetched batch of clicks: score it a slice at a time, send each
// slice's predictions while the next is scored, wait until Kafka and Redis both hold the batch,
// then hand its review tasks on. Its result tells the consumer what it refused and how far the
// clicks are scored (the joiner reads that from the committed offsets' metadata).
import type { Producer } from 'kafkajs';
import type { RawBatchHandler, RawRejection } from '../common/consumer.js';
import { sendInChunks } from '../common/kafka.js';
import type { ScorerMetrics } from './metrics.js';
import { predictionMessages, type ScoredBatchBytes } from './pipeline.js';
import type { ReviewSink } from './review.js';
import type { BatchScorer } from './scoring-worker.js';

export interface PublishDeps {
  scoring: BatchScorer;
  producer: Producer;
  predictionsTopic: string;
  reviewSink: ReviewSink;
  metrics: ScorerMetrics;
  /** Messages per slice (FW_SCORER_SESSION_SLICE). */
  slice: number;
  /** Called with the newest click event time of each batch that had one. */
  onScored: (maxEventTime: number) => void;
}

export function publishingHandler(deps: PublishDeps): RawBatchHandler {
  return async (messages, { topic, partition }) => {
    const stop = deps.metrics.batchSeconds.startTimer();
    const { parts, rejected } = await scoreAndSend(deps, messages, `${topic}:${partition}`);
    for (const part of parts) {
      if (part.reviews.length > 0) {
        await deps.reviewSink.submit(part.reviews);
        for (const task of part.reviews) deps.metrics.reviews.inc({ reason: task.reason });
      }
      for (const [arm, count] of Object.entries(part.perArm)) {
        deps.metrics.predictionsPublished.inc({ arm }, count);
      }
    }
    deps.metrics.batchSize.observe(messages.length);
    deps.metrics.sessionsHeld.set(parts.at(-1)?.sessionsHeld ?? 0);
    stop();
    const maxEventTime = Math.max(...parts.map((part) => part.maxEventTime));
    if (!Number.isFinite(maxEventTime)) return { rejected };
    deps.onScored(maxEventTime);
    return { rejected, maxEventTime };
  };
}

/** Scored in order, a slice at a time: a slice's predictions are sent while the next is scored. */
async function scoreAndSend(
  deps: PublishDeps,
  messages: Parameters<RawBatchHandler>[0],
  lane: string,
): Promise<{ parts: ScoredBatchBytes[]; rejected: RawRejection[] }> {
  const queued: { from: number; scoring: ReturnType<BatchScorer['score']> }[] = [];
  for (let from = 0; from < messages.length; from += deps.slice) {
    const values = messages.slice(from, from + deps.slice).map((m) => m.value);
    queued.push({ from, scoring: deps.scoring.score(values, lane) });
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
      sent = sent.then(() => sendInChunks(deps.producer, deps.predictionsTopic, predictions));
    }
  } finally {
    // Awaited below; a failure while later slices are scored must not go unhandled.
    sent.catch(() => undefined);
  }
  await Promise.all([sent, ...recorded]);
  return { parts, rejected };
}
