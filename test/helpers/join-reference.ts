// The outcome join's independent reference: a brute force that sees every event at once, and a
// deterministic simulated stream of predictions and purchases to feed it (unit and integration
// tests compare the joiner with it).
import type { JoinConfig, PendingPrediction, PurchaseRef } from '../../services/joiner/join.js';
import { ShopSimulation } from '../../services/simulator/generator.js';

export type Input =
  { kind: 'prediction'; value: PendingPrediction } | { kind: 'purchase'; value: PurchaseRef };
export const timeOf = (e: Input) => (e.kind === 'prediction' ? e.value.clickTime : e.value.eventTime);

export function stream(seed: number, events: number, startTime: number, trafficRate = 5): Input[] {
  const sim = new ShopSimulation({ seed, startTime, trafficRate });
  const out: Input[] = [];
  while (out.length < events) {
    const e = sim.next();
    if (e.type === 'click') {
      const c = e.click;
      out.push({
        kind: 'prediction',
        value: {
          predictionId: `p:${c.eventId}`,
          userId: c.userId,
          itemId: c.itemId,
          sessionId: c.sessionId,
          clickTime: c.eventTime,
        },
      });
    } else {
      const p = e.purchase;
      out.push({
        kind: 'purchase',
        value: {
          eventId: p.eventId,
          userId: p.userId,
          itemId: p.itemId,
          sessionId: p.sessionId,
          eventTime: p.eventTime,
        },
      });
    }
  }
  return out;
}

/** Brute force with full knowledge: purchases in time order, each attributed among unlabeled matches. */
export function reference(inputs: Input[], config: JoinConfig): Map<string, 0 | 1> {
  const predictions = inputs.filter((i) => i.kind === 'prediction').map((i) => i.value);
  const purchases = inputs
    .filter((i) => i.kind === 'purchase')
    .map((i) => i.value)
    .sort((a, b) => a.eventTime - b.eventTime || a.eventId.localeCompare(b.eventId));
  const labels = new Map<string, 0 | 1>();
  const matches = (p: PendingPrediction, q: PurchaseRef) =>
    p.userId === q.userId &&
    q.eventTime >= p.clickTime &&
    q.eventTime <= p.clickTime + config.windowMs &&
    (config.match === 'any-item' ||
      (config.match === 'same-item' ? p.itemId === q.itemId : q.sessionId === p.sessionId));
  for (const q of purchases) {
    const candidates = predictions
      .filter((p) => !labels.has(p.predictionId) && matches(p, q))
      .sort((a, b) => a.clickTime - b.clickTime || a.predictionId.localeCompare(b.predictionId));
    if (candidates.length === 0) continue;
    const chosen =
      config.attribution === 'all'
        ? candidates
        : config.attribution === 'first'
          ? [candidates[0]!]
          : [candidates.at(-1)!];
    for (const p of chosen) labels.set(p.predictionId, 1);
  }
  for (const p of predictions) if (!labels.has(p.predictionId)) labels.set(p.predictionId, 0);
  return labels;
}
