// Scoring a batch of clicks (pure given its inputs): features from the session contexts, each
// model run once over the clicks it must score, one served prediction per click plus a shadow
// prediction when a shadow model is routed, and the review decisions.
import { hash } from 'node:crypto';
import type { Arm, ClickEvent, Prediction } from '../common/contracts.js';
import type { FeatureSpec, SessionContext } from '../model/features.js';
import { segmentOf } from '../model/features.js';
import type { ScoringInput } from '../model/models.js';
import type { ModelSet } from './model-manager.js';
import { decideReview, type ReviewPolicyConfig, type ReviewTask } from './review.js';
import { confidenceOf, servedArm } from './routing.js';

export const BASELINE_VERSION = 'baseline';

/** Same click, same version, same arm → same id, so a replayed batch yields the same predictions. */
export function predictionId(eventId: string, modelVersion: string, arm: Arm): string {
  // One-shot hash: a Hash object per prediction cost as much as the rest of the id.
  return hash('sha256', `${eventId}\u0000${modelVersion}\u0000${arm}`, 'base64url').slice(0, 22);
}

export interface ScoredBatch {
  predictions: Prediction[];
  reviews: ReviewTask[];
}

export interface ScoringContext {
  spec: FeatureSpec;
  set: ModelSet;
  policy: ReviewPolicyConfig;
  now: number;
  /** Uniform draws in [0, 1) for audit sampling. */
  draw: () => number;
}

export function scoreBatch(
  clicks: readonly ClickEvent[],
  sessions: readonly SessionContext[],
  ctx: ScoringContext,
): ScoredBatch {
  const { set, spec } = ctx;
  const inputs: (ScoringInput & { click: ClickEvent })[] = [];
  for (let i = 0; i < clicks.length; i++) {
    const click = clicks[i] as ClickEvent;
    inputs.push({
      click,
      features: spec.vectorize(click, sessions[i] as SessionContext),
      itemId: click.itemId,
      segment: segmentOf(click.country, click.device),
    });
  }
  const loaded = (version: string) => set.has(version);
  const { champion, challenger, shadow } = set.routing;
  const championLive = champion !== null && loaded(champion);
  const challengerLive = challenger !== null && loaded(challenger) && set.routing.challengerWeight > 0;
  // Without a live challenger every user gets the same plan: no user hash per click.
  const plans = challengerLive
    ? inputs.map((input) => servedArm(input.click.userId, set.routing, loaded))
    : new Array<ReturnType<typeof servedArm>>(inputs.length).fill(servedArm('', set.routing, loaded));

  // Run each model once over the clicks that need it.
  // Per version, the score of each row it ran on (NaN elsewhere).
  const scoresBy = new Map<string, Float64Array>();
  const need = (version: string, rows: number[]) => {
    const model = version === BASELINE_VERSION ? set.baseline : set.model(version);
    const scored = model.predict(rows.map((r) => inputs[r] as ScoringInput));
    const byRow = new Float64Array(inputs.length).fill(NaN);
    rows.forEach((r, k) => (byRow[r] = scored[k] as number));
    scoresBy.set(version, byRow);
  };
  const all = inputs.map((_, i) => i);
  // With a challenger live, both score every click: disagreement is a review signal.
  if (championLive) need(champion, challengerLive ? all : all.filter((i) => plans[i]?.arm === 'champion'));
  if (challengerLive) need(challenger, all);
  if (plans.some((p) => p.arm === 'baseline'))
    need(
      BASELINE_VERSION,
      all.filter((i) => plans[i]?.arm === 'baseline'),
    );
  const shadowLive = shadow !== null && loaded(shadow);
  if (shadowLive && !scoresBy.has(shadow)) need(shadow, all);
  const scoreOf = (version: string, row: number): number | null => {
    const score = scoresBy.get(version)?.[row];
    return score === undefined || Number.isNaN(score) ? null : score;
  };

  const predictions: Prediction[] = [];
  const reviews: ReviewTask[] = [];
  for (let row = 0; row < inputs.length; row++) {
    const input = inputs[row] as ScoringInput & { click: ClickEvent };
    const plan = plans[row] as ReturnType<typeof servedArm>;
    const version = plan.version ?? BASELINE_VERSION;
    const score = scoreOf(version, row) as number;
    const other =
      championLive && challengerLive ? scoreOf(plan.arm === 'challenger' ? champion : challenger, row) : null;
    const decision = decideReview(score, other, ctx.draw(), ctx.policy);
    const served = toPrediction(input, spec.hash, version, plan.arm, score, ctx.now, decision !== null);
    predictions.push(served);
    if (decision) {
      reviews.push({
        predictionId: served.predictionId,
        ...decision,
        score,
        modelVersion: version,
        click: input.click,
        features: input.features,
        createdAt: ctx.now,
      });
    }
    if (shadowLive) {
      predictions.push(
        toPrediction(input, spec.hash, shadow, 'shadow', scoreOf(shadow, row) as number, ctx.now, false),
      );
    }
  }
  return { predictions, reviews };
}

function toPrediction(
  { click, features, segment }: ScoringInput & { click: ClickEvent },
  featureSpecHash: string,
  modelVersion: string,
  arm: Arm,
  score: number,
  now: number,
  reviewRequested: boolean,
): Prediction {
  const clipped = Math.min(1, Math.max(0, Number.isFinite(score) ? score : 0.5));
  return {
    predictionId: predictionId(click.eventId, modelVersion, arm),
    eventId: click.eventId,
    userId: click.userId,
    sessionId: click.sessionId,
    itemId: click.itemId,
    category: click.category,
    segment,
    modelVersion,
    arm,
    score: clipped,
    confidence: confidenceOf(clipped),
    features,
    featureSpecHash,
    eventTime: click.eventTime,
    serveTime: now,
    reviewRequested,
  };
}
