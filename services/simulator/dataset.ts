// Labeled examples straight from the simulated shop, without Kafka: each click's feature vector
// (with the same session semantics as the scorer) and whether its purchase came within the
// attribution window. For model tests, benchmarks and offline experiments.
import { segmentOf, type FeatureSpec } from '../model/features.js';
import type { TrainingExample } from '../model/models.js';
import { SessionTracker } from '../model/session.js';
import { ShopSimulation, type DriftConfig } from './generator.js';

export interface TimedExample extends TrainingExample {
  clickTime: number;
  eventId: string;
  userId: string;
  category: string;
  /** The generating model's probability (what a perfect model would say). */
  trueProbability: number;
}

export interface DatasetOptions {
  seed: number;
  clicks: number;
  spec: FeatureSpec;
  startTime?: number;
  trafficRate?: number;
  attributionWindowMs?: number;
  drift?: DriftConfig | null;
}

/** The examples of a simulated lineage (the registry's `simulated` training source). */
export function simulatedTrainingExamples(
  training: {
    seed: number;
    clicks: number;
    startTime: number;
    trafficRate: number;
    attributionWindowMs: number;
  },
  spec: FeatureSpec,
): TimedExample[] {
  return simulateLabeledExamples({ ...training, spec });
}

export function simulateLabeledExamples(options: DatasetOptions): TimedExample[] {
  const window = options.attributionWindowMs ?? 30 * 60 * 1000;
  const simulation = new ShopSimulation({
    seed: options.seed,
    startTime: options.startTime ?? Date.UTC(2026, 0, 1),
    trafficRate: options.trafficRate ?? 100,
    drift: options.drift ?? null,
  });
  const sessions = new SessionTracker();
  const examples: TimedExample[] = [];
  while (examples.length < options.clicks) {
    const event = simulation.next();
    if (event.type !== 'click') continue;
    const { click, truth } = event;
    const label = truth.purchaseTime !== null && truth.purchaseTime - click.eventTime <= window ? 1 : 0;
    examples.push({
      features: options.spec.vectorize(click, sessions.observe(click)),
      itemId: click.itemId,
      segment: segmentOf(click.country, click.device),
      label,
      weight: 1,
      clickTime: click.eventTime,
      eventId: click.eventId,
      userId: click.userId,
      category: click.category,
      trueProbability: truth.probability,
    });
  }
  return examples;
}
