// The scorer's own work per click, stage by stage, in this process with no Kafka and no Redis:
// what scoring adds on top of a consume→produce passthrough. Slices of 1,000 clicks as the
// scorer takes them; the first rounds warm the JIT and are dropped; medians of the rest.
import { routingOf, type ClickEvent } from '../services/common/contracts.js';
import { classifyAll } from '../services/common/classify.js';
import type { Runtime } from '../services/common/runtime.js';
import { HeuristicBaseline } from '../services/model/baseline.js';
import type { FeatureSpec } from '../services/model/features.js';
import type { AnyModel } from '../services/model/artifacts.js';
import { ModelSet } from '../services/scorer/model-manager.js';
import { DEFAULT_REVIEW_POLICY } from '../services/scorer/review.js';
import { scoreBatch } from '../services/scorer/scoring.js';
import { SessionCache, type Observed } from '../services/scorer/session-cache.js';
import { ShopSimulation } from '../services/simulator/generator.js';
import { median } from './stats.js';

export interface StageCosts {
  clicks: number;
  /** µs per click, median over the measured rounds. */
  decodeAndValidate: number;
  sessionContext: number;
  featuresModelPredictions: number;
  encodePredictions: number;
  total: number;
}

export async function measureStages(
  runtime: Runtime,
  spec: FeatureSpec,
  model: AnyModel,
  options: { clicks?: number; rounds?: number; warmup?: number } = {},
): Promise<StageCosts> {
  const count = options.clicks ?? 50_000;
  const rounds = options.rounds ?? 7;
  const warmup = options.warmup ?? 2;
  const simulation = new ShopSimulation({ seed: 11, startTime: Date.now() - 3_600_000, trafficRate: 100 });
  const clicks: ClickEvent[] = [];
  for (const event of simulation.events()) {
    if (event.type === 'click') clicks.push(event.click);
    if (clicks.length >= count) break;
  }
  const clickSchema = await runtime.codecs.click.schemaId();
  const predictionSchema = await runtime.codecs.prediction.schemaId();
  const messages = clicks.map((c) => ({ value: runtime.codecs.click.encodeWith(clickSchema, c) }));
  const set = new ModelSet(
    routingOf({ champion: 'v1', challenger: null, challengerWeight: 0, shadow: null }),
    new Map([['v1', model]]),
    new HeuristicBaseline(),
    1,
  );
  const limits = {
    now: Date.now(),
    maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
    maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
  };
  const perRound: Omit<StageCosts, 'clicks'>[] = [];
  for (let round = 0; round < warmup + rounds; round++) {
    const cache = new SessionCache({ maxSessions: 100_000, maxClicksPerSession: 500, idleMs: 3_600_000 });
    const ms = { decode: 0, session: 0, score: 0, encode: 0 };
    for (let i = 0; i < messages.length; i += 1000) {
      let at = performance.now();
      const lap = () => {
        const now = performance.now();
        const elapsed = now - at;
        at = now;
        return elapsed;
      };
      const slice: ClickEvent[] = [];
      for (const result of await classifyAll(messages.slice(i, i + 1000), 'click', runtime.codecs, limits))
        if (result.ok) slice.push(result.value);
      ms.decode += lap();
      const contexts = slice.map((click) => {
        if (!cache.has(click.sessionId, 0)) cache.merge(click.sessionId, [], 0);
        return (cache.observe(click.sessionId, click, 0) as Observed).context;
      });
      ms.session += lap();
      const scored = scoreBatch(slice, contexts, {
        spec,
        set,
        policy: DEFAULT_REVIEW_POLICY,
        now: Date.now(),
        draw: Math.random,
      });
      ms.score += lap();
      runtime.codecs.prediction.encodeAllWith(predictionSchema, scored.predictions);
      ms.encode += lap();
    }
    if (round < warmup) continue;
    const us = (total: number) => (total * 1000) / messages.length;
    perRound.push({
      decodeAndValidate: us(ms.decode),
      sessionContext: us(ms.session),
      featuresModelPredictions: us(ms.score),
      encodePredictions: us(ms.encode),
      total: us(ms.decode + ms.session + ms.score + ms.encode),
    });
  }
  const med = (key: keyof Omit<StageCosts, 'clicks'>) => median(perRound.map((r) => r[key]));
  return {
    clicks: messages.length,
    decodeAndValidate: med('decodeAndValidate'),
    sessionContext: med('sessionContext'),
    featuresModelPredictions: med('featuresModelPredictions'),
    encodePredictions: med('encodePredictions'),
    total: med('total'),
  };
}
