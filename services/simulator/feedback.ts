// Labeled feedback without the scorer and joiner: simulated clicks with their true outcomes, as
// the joiner would publish them (LabeledExample), encoded for a feedback topic. For trainer
// tests and benchmarks.
import type { LabeledExample } from '../common/contracts.js';
import type { Runtime } from '../common/runtime.js';
import { FeatureSpec } from '../model/features.js';
import { simulateLabeledExamples } from './dataset.js';
import type { DriftConfig } from './generator.js';

export interface FeedbackOptions {
  seed: number;
  count: number;
  startTime?: number;
  drift?: DriftConfig | null;
}

/** Simulated labeled examples, ids `outcome:<prefix><i>`, label time one second after the click. */
export function simulatedFeedback(options: FeedbackOptions & { idPrefix?: string }): LabeledExample[] {
  const prefix = options.idPrefix ?? 'p';
  const spec = new FeatureSpec();
  return simulateLabeledExamples({
    spec,
    seed: options.seed,
    clicks: options.count,
    startTime: options.startTime ?? Date.now() - 3600_000,
    drift: options.drift ?? null,
  })
    .slice(0, options.count)
    .map((e, i) => ({
      exampleId: `outcome:${prefix}${i}`,
      predictionId: `${prefix}${i}`,
      eventId: e.eventId,
      userId: e.userId,
      itemId: e.itemId,
      category: e.category,
      segment: e.segment,
      label: e.label,
      labelSource: e.label ? 'outcome' : 'timeout',
      weight: 1,
      features: e.features,
      featureSpecHash: spec.hash,
      modelVersion: 'v000001',
      arm: 'champion',
      score: 0.2,
      clickTime: e.clickTime,
      purchaseEventId: null,
      purchaseTime: null,
      labelTime: e.clickTime + 1000,
      delayMs: null,
      revision: 0,
      propensity: 1,
      split: null,
    }));
}

export async function encodeFeedback(
  runtime: Runtime,
  examples: readonly LabeledExample[],
): Promise<{ key: string; value: Buffer }[]> {
  return Promise.all(
    examples.map(async (e) => ({ key: e.userId, value: await runtime.codecs.labeledExample.encode(e) })),
  );
}
