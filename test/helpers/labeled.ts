// Labeled feedback for trainer tests: simulated clicks with their true outcomes, as the joiner
// would publish them (LabeledExample), encoded for a feedback topic.
import type { LabeledExample } from '../../services/common/contracts.js';
import type { Runtime } from '../../services/common/runtime.js';
import { FeatureSpec } from '../../services/model/features.js';
import type { DriftConfig } from '../../services/simulator/generator.js';
import { simulateLabeledExamples } from '../../services/simulator/dataset.js';

export interface FeedbackOptions {
  seed: number;
  count: number;
  startTime?: number;
  drift?: DriftConfig | null;
}

/** Simulated labeled examples, ids `outcome:p<i>`, label time one second after the click. */
export function simulatedFeedback(options: FeedbackOptions): LabeledExample[] {
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
      exampleId: `outcome:p${i}`,
      predictionId: `p${i}`,
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
