// Which predictions go to human review (pure policy), and the seam to the labeling queue.
import type { ClickEvent, FeatureVector } from '../common/contracts.js';

export type ReviewReason = 'uncertain' | 'disagreement' | 'audit';

export interface ReviewPolicyConfig {
  /** Scores inside [low, high] are uncertain. */
  band: { low: number; high: number };
  /** Champion and challenger disagree when their scores differ by at least this much. */
  disagreement: number;
  /** Share of all predictions sampled for review at random (label quality audit). */
  auditRate: number;
}

export const DEFAULT_REVIEW_POLICY: ReviewPolicyConfig = {
  band: { low: 0.35, high: 0.65 },
  disagreement: 0.3,
  auditRate: 0.001,
};

export interface ReviewDecision {
  reason: ReviewReason;
  /** Higher first: how much a label would teach the model. */
  priority: number;
}

/**
 * Decide for one served prediction. `other` is the score of the other live model (champion for
 * a challenger user and vice versa) when both were computed; `draw` is uniform in [0, 1).
 */
export function decideReview(
  score: number,
  other: number | null,
  draw: number,
  policy: ReviewPolicyConfig,
): ReviewDecision | null {
  if (other !== null && Math.abs(score - other) >= policy.disagreement) {
    return { reason: 'disagreement', priority: 1 + Math.abs(score - other) };
  }
  if (score >= policy.band.low && score <= policy.band.high) {
    // 1 at the middle of the band, falling to 0.5 at its edges.
    const half = (policy.band.high - policy.band.low) / 2 || 1;
    const middle = (policy.band.high + policy.band.low) / 2;
    return { reason: 'uncertain', priority: 1 - Math.abs(score - middle) / (2 * half) };
  }
  if (draw < policy.auditRate) return { reason: 'audit', priority: 0.1 };
  return null;
}

export interface ReviewTask {
  predictionId: string;
  reason: ReviewReason;
  priority: number;
  score: number;
  modelVersion: string;
  click: ClickEvent;
  features: FeatureVector;
  createdAt: number;
}

/** Where review tasks go; the labeling queue implements it. */
export interface ReviewSink {
  submit(tasks: ReviewTask[]): Promise<void>;
}

/** Keeps tasks in memory (tests, and scorers running without a labeling queue). */
export class MemoryReviewSink implements ReviewSink {
  readonly tasks: ReviewTask[] = [];
  constructor(private readonly capacity = 10_000) {}

  submit(tasks: ReviewTask[]): Promise<void> {
    this.tasks.push(...tasks);
    if (this.tasks.length > this.capacity) this.tasks.splice(0, this.tasks.length - this.capacity);
    return Promise.resolve();
  }
}
