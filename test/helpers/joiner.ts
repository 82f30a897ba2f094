// Joiner test inputs as Kafka records, and a way to know a read_committed collector has seen
// everything the joiner committed.
import type { Producer } from 'kafkajs';
import type { Codecs, LabeledExample, Prediction, PurchaseEvent } from '../../services/common/contracts.js';
import { sendInChunks } from '../../services/common/kafka.js';
import type { JoinerConfig } from '../../services/joiner/config.js';
import { loadJoinerConfig } from '../../services/joiner/config.js';
import type { PendingPrediction, PurchaseRef } from '../../services/joiner/join.js';
import type { TopicCollector } from './collect.js';
import type { Input } from './join-reference.js';

export function predictionRecord(ref: PendingPrediction): Prediction {
  return {
    predictionId: ref.predictionId,
    eventId: ref.eventId,
    userId: ref.userId,
    sessionId: ref.sessionId,
    itemId: ref.itemId,
    category: 'books',
    segment: 'DE/mobile',
    modelVersion: 'v000001',
    arm: 'champion',
    score: 0.25,
    confidence: 0.5,
    features: { indices: [3, 17], values: [1, 1] },
    featureSpecHash: 'test-spec',
    eventTime: ref.clickTime,
    serveTime: ref.clickTime + 3,
    reviewRequested: false,
    propensity: 1,
    split: null,
  };
}

export function purchaseRecord(ref: PurchaseRef): PurchaseEvent {
  return { ...ref, category: 'books', price: 20, quantity: 1 };
}

export interface JoinTopics {
  predictions: string;
  purchases: string;
}

/** Sends inputs in order: predictions and purchases to their topics, keyed by user. */
export async function sendInputs(
  producer: Producer,
  codecs: Codecs,
  topics: JoinTopics,
  inputs: Input[],
  /** Messages per send: small sends make small record batches, so a fetch takes few. */
  perSend = 5000,
): Promise<void> {
  const predictions = [];
  const purchases = [];
  for (const input of inputs) {
    if (input.kind === 'prediction') {
      predictions.push({
        key: input.value.userId,
        value: await codecs.prediction.encode(predictionRecord(input.value)),
      });
    } else {
      purchases.push({
        key: input.value.userId,
        value: await codecs.purchase.encode(purchaseRecord(input.value)),
      });
    }
  }
  for (let i = 0; i < predictions.length; i += perSend)
    await sendInChunks(producer, topics.predictions, predictions.slice(i, i + perSend));
  for (let i = 0; i < purchases.length; i += perSend)
    await sendInChunks(producer, topics.purchases, purchases.slice(i, i + perSend));
}

/**
 * Resolves once the collector has read everything committed to `topic` so far: a marker sent to
 * each partition after the joiner stopped is delivered only after every record before it.
 */
export async function drainCollector(
  collector: TopicCollector<LabeledExample>,
  producer: Producer,
  codecs: Codecs,
  topic: string,
  partitions: number,
): Promise<LabeledExample[]> {
  const marker = (partition: number): LabeledExample => ({
    ...(collector.records[0]?.value as LabeledExample),
    exampleId: `marker:${partition}`,
    predictionId: `marker:${partition}`,
  });
  if (collector.records.length === 0) throw new Error('nothing collected to model the markers on');
  const markers = (records: { value: LabeledExample }[]) =>
    records.filter((r) => r.value.exampleId.startsWith('marker:')).length;
  const before = markers(collector.records);
  for (let partition = 0; partition < partitions; partition++) {
    await producer.send({
      topic,
      messages: [{ partition, key: 'marker', value: await codecs.labeledExample.encode(marker(partition)) }],
    });
  }
  await collector.until((records) => markers(records) >= before + partitions, 'markers on every partition');
  return collector.records.map((r) => r.value).filter((e) => !e.exampleId.startsWith('marker:'));
}

export function joinerTestConfig(
  overrides: Partial<JoinerConfig> & { FW_JOINER_GROUP: string },
): JoinerConfig {
  return {
    ...loadJoinerConfig({}),
    FW_JOINER_TRANSACTIONAL_ID: overrides.FW_JOINER_GROUP,
    FW_JOIN_WINDOW_MS: 120_000,
    FW_JOIN_ALLOWED_LATENESS_MS: 5_000,
    FW_JOIN_IDLE_MS: 1_000,
    FW_JOIN_IDLE_LAG_MS: 0,
    // These tests write predictions themselves (no scorer) and use event times hours old that
    // the clock may close once the inputs are idle.
    FW_JOIN_PREDICTION_PROGRESS: 'stream',
    FW_JOIN_LIVE_LAG_MS: 24 * 3600_000,
    FW_JOIN_PROGRESS_POLL_MS: 100,
    FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
    ...overrides,
  };
}
