// A join decision as the LabeledExample the trainer learns from. Every field derives from the
// prediction and the event times, never from the wall clock, so a replay writes the same bytes.
import type { LabeledExample, Prediction } from '../common/contracts.js';
import { labelTimeOf, type JoinDecision, type PendingPrediction, type PurchaseRef } from './join.js';

/** The part of a prediction the join holds in memory (the rest stays in Redis). */
export function pendingRef(prediction: Prediction): PendingPrediction {
  return {
    predictionId: prediction.predictionId,
    eventId: prediction.eventId,
    userId: prediction.userId,
    itemId: prediction.itemId,
    sessionId: prediction.sessionId,
    clickTime: prediction.eventTime,
  };
}

export function purchaseRef(purchase: {
  eventId: string;
  userId: string;
  itemId: string;
  sessionId: string | null;
  eventTime: number;
}): PurchaseRef {
  return {
    eventId: purchase.eventId,
    userId: purchase.userId,
    itemId: purchase.itemId,
    sessionId: purchase.sessionId,
    eventTime: purchase.eventTime,
  };
}

/**
 * One label per prediction and revision, so the example id is the prediction's (and the
 * correction's number): a duplicate is recognisable, a correction is a new example.
 */
export function outcomeExampleId(predictionId: string, revision = 0): string {
  return revision === 0 ? `outcome:${predictionId}` : `outcome:${predictionId}/r${revision}`;
}

export function toLabeledExample(
  prediction: Prediction,
  decision: Pick<JoinDecision, 'label' | 'source' | 'purchase'> & { revision?: number },
  windowMs: number,
): LabeledExample {
  const purchase = decision.purchase;
  return {
    exampleId: outcomeExampleId(prediction.predictionId, decision.revision ?? 0),
    predictionId: prediction.predictionId,
    eventId: prediction.eventId,
    userId: prediction.userId,
    itemId: prediction.itemId,
    category: prediction.category,
    segment: prediction.segment,
    label: decision.label,
    labelSource: decision.source,
    weight: 1,
    features: prediction.features,
    featureSpecHash: prediction.featureSpecHash,
    modelVersion: prediction.modelVersion,
    arm: prediction.arm,
    score: prediction.score,
    clickTime: prediction.eventTime,
    purchaseEventId: purchase?.eventId ?? null,
    purchaseTime: purchase?.eventTime ?? null,
    labelTime: labelTimeOf(purchase, prediction.eventTime, windowMs),
    delayMs: purchase ? purchase.eventTime - prediction.eventTime : null,
    revision: decision.revision ?? 0,
    // A prediction held in the join state since before Prediction v2 has none.
    propensity: (prediction as Partial<Prediction>).propensity ?? 1,
    split: (prediction as Partial<Prediction>).split ?? null,
  };
}
