// Served predictions whose category mix the caller sets: the monitor's tests draw a reference and
// live traffic from them (alike, or with the mix shifted).
import type { Prediction } from '../../services/common/contracts.js';
import { Random } from '../../services/common/random.js';
import type { FeatureSpec } from '../../services/model/features.js';
import type { LabeledExample } from '../../services/common/contracts.js';
import { sampleRecords, servedLabel } from './records.js';

export const CATEGORIES = ['books', 'toys', 'garden', 'music'];

/**
 * `n` predictions of `version`, evenly over [from, from + spanMs), categories drawn by `weights`,
 * each by one of `users` users drawn uniformly (default 5,000: the clicks nearly independent).
 */
export function servedPredictions(
  spec: FeatureSpec,
  options: {
    seed: number;
    n: number;
    from: number;
    spanMs: number;
    weights: number[];
    version?: string;
    users?: number;
  },
): Prediction[] {
  const random = new Random(options.seed);
  const { click, prediction } = sampleRecords(options.from);
  const total = options.weights.reduce((a, b) => a + b);
  return Array.from({ length: options.n }, (_, i) => {
    let u = random.next() * total;
    const category = CATEGORIES[options.weights.findIndex((w) => (u -= w) < 0)] ?? 'books';
    const time = options.from + Math.floor((i * options.spanMs) / options.n);
    const session = {
      clicksBefore: random.int(6),
      sessionStart: time - random.int(600) * 1000,
      categoriesSeen: 1,
    };
    const features = spec.vectorize(
      { ...click, category, eventTime: time, price: 5 + random.int(50) },
      session,
    );
    return {
      ...prediction,
      predictionId: `p${options.seed}-${i}`,
      userId: `u-${random.int(options.users ?? 5000)}`,
      eventId: `c${options.seed}-${i}`,
      category,
      features,
      score: 0.05 + 0.1 * random.next(),
      eventTime: time,
      serveTime: time,
      modelVersion: options.version ?? 'v7',
    };
  });
}

/**
 * The outcome of each prediction as the joiner writes it: a purchase for one click in `every`,
 * labeled `delayMs` after its click, a timeout for the rest, `timeoutMs` after it; no label time
 * later than `now`.
 */
export function servedOutcomes(
  predictions: readonly Prediction[],
  options: { every: number; delayMs?: number; timeoutMs?: number; now?: number },
): LabeledExample[] {
  const delay = options.delayMs ?? 60_000;
  return predictions.map((p, i) => {
    const purchase = i % options.every === 0;
    return servedLabel({
      predictionId: p.predictionId,
      modelVersion: p.modelVersion,
      score: p.score,
      clickTime: p.eventTime,
      labelTime: Math.min(
        options.now ?? Infinity,
        p.eventTime + (purchase ? delay : (options.timeoutMs ?? delay)),
      ),
      delayMs: purchase ? delay : null,
      label: purchase ? 1 : 0,
      labelSource: purchase ? 'outcome' : 'timeout',
    });
  });
}
