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
import { challengersOf, confidenceOf, servedArm, splitId } from './routing.js';

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

type Input = ScoringInput & { click: ClickEvent };
type Plan = ReturnType<typeof servedArm>;

export function scoreBatch(
  clicks: readonly ClickEvent[],
  sessions: readonly SessionContext[],
  ctx: ScoringContext,
): ScoredBatch {
  const { set, spec } = ctx;
  const inputs: Input[] = [];
  for (let i = 0; i < clicks.length; i++) {
    const click = clicks[i] as ClickEvent;
    inputs.push({
      click,
      features: spec.vectorize(click, sessions[i] as SessionContext),
      itemId: click.itemId,
      segment: segmentOf(click.country, click.device),
    });
  }
  const live = liveModels(set);
  const plans = plansFor(inputs, set, live);
  const scoreOf = runModels(set, inputs, plans, live);

  const predictions: Prediction[] = [];
  const reviews: ReviewTask[] = [];
  for (let row = 0; row < inputs.length; row++) {
    const input = inputs[row] as Input;
    const plan = plans[row] as Plan;
    const version = plan.version ?? BASELINE_VERSION;
    const score = scoreOf(version, row) as number;
    // Disagreement with the other side of the split is a review signal.
    const firstChallenger = live.challengers[0];
    const other =
      live.champion && firstChallenger
        ? scoreOf(plan.arm === 'challenger' ? live.champion : firstChallenger, row)
        : null;
    const decision = decideReview(score, other, ctx.draw(), ctx.policy);
    const served = toPrediction(input, spec.hash, version, plan, score, ctx.now, decision !== null);
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
    if (live.shadow) {
      const shadowScore = scoreOf(live.shadow, row) as number;
      const shadow = { arm: 'shadow', propensity: 1, split: plan.split } as const;
      predictions.push(toPrediction(input, spec.hash, live.shadow, shadow, shadowScore, ctx.now, false));
    }
  }
  return { predictions, reviews };
}

/** Each click's arm; without a split every user gets the same plan (no user hash per click). */
function plansFor(inputs: readonly Input[], set: ModelSet, live: ReturnType<typeof liveModels>): Plan[] {
  const { routing } = set;
  const split = splitId(routing);
  const loaded = (version: string) => set.has(version);
  const perUser = live.challengers.length > 0 || routing.baselineWeight > 0 || routing.segments.length > 0;
  return perUser
    ? inputs.map((input) => servedArm(input.click.userId, routing, loaded, input.segment, split))
    : new Array<Plan>(inputs.length).fill(servedArm('', routing, loaded, '', split));
}

/** The routed versions that are loaded (challengers only with a share above 0). */
function liveModels(set: ScoringContext['set']) {
  const { champion, shadow } = set.routing;
  return {
    champion: champion !== null && set.has(champion) ? champion : null,
    challengers: challengersOf(set.routing)
      .map((c) => c.version)
      .filter((v) => set.has(v)),
    shadow: shadow !== null && set.has(shadow) ? shadow : null,
  };
}

/**
 * Runs each model once over the clicks that need it; returns each version's score of a row
 * (null where it did not run). With a challenger live, the champion and the first challenger
 * score every click (their disagreement is a review signal); other challengers their own users.
 */
function runModels(
  set: ScoringContext['set'],
  inputs: readonly Input[],
  plans: readonly Plan[],
  live: ReturnType<typeof liveModels>,
): (version: string, row: number) => number | null {
  const scoresBy = new Map<string, Float64Array>();
  const need = (version: string, rows: number[]) => {
    if (rows.length === 0) return;
    const model = version === BASELINE_VERSION ? set.baseline : set.model(version);
    const scored = model.predict(rows.map((r) => inputs[r] as ScoringInput));
    const byRow = new Float64Array(inputs.length).fill(NaN);
    rows.forEach((r, k) => (byRow[r] = scored[k] as number));
    scoresBy.set(version, byRow);
  };
  const all = inputs.map((_, i) => i);
  const split = live.challengers.length > 0;
  if (live.champion) need(live.champion, split ? all : all.filter((i) => plans[i]?.arm === 'champion'));
  live.challengers.forEach((version, k) =>
    need(version, k === 0 ? all : all.filter((i) => plans[i]?.version === version)),
  );
  need(
    BASELINE_VERSION,
    all.filter((i) => plans[i]?.arm === 'baseline'),
  );
  if (live.shadow && !scoresBy.has(live.shadow)) need(live.shadow, all);
  return (version, row) => {
    const score = scoresBy.get(version)?.[row];
    return score === undefined || Number.isNaN(score) ? null : score;
  };
}

function toPrediction(
  { click, features, segment }: ScoringInput & { click: ClickEvent },
  featureSpecHash: string,
  modelVersion: string,
  { arm, propensity, split }: { arm: Arm; propensity: number; split: string | null },
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
    propensity,
    split,
  };
}
