// The outcome join's independent reference: a brute force that sees every event at once, and a
// deterministic simulated stream of predictions and purchases to feed it (unit and integration
// tests compare the joiner with it).
import type { JoinConfig, PendingPrediction, PurchaseRef } from '../../services/joiner/join.js';
import type { ClickEvent, PurchaseEvent } from '../../services/common/contracts.js';
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
          eventId: c.eventId,
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

/** A shop's clicks (each with one prediction, named after it) and purchases as reference inputs. */
export function eventInputs(
  clicks: readonly Pick<ClickEvent, 'eventId' | 'userId' | 'itemId' | 'sessionId' | 'eventTime'>[],
  purchases: readonly PurchaseEvent[],
): Input[] {
  return [
    ...clicks.map((c): Input => ({
      kind: 'prediction',
      value: {
        predictionId: c.eventId,
        eventId: c.eventId,
        userId: c.userId,
        itemId: c.itemId,
        sessionId: c.sessionId,
        clickTime: c.eventTime,
      },
    })),
    ...purchases.map((p): Input => ({ kind: 'purchase', value: { ...p, sessionId: p.sessionId ?? null } })),
  ];
}

/**
 * Brute force with full knowledge: each purchase credits the latest (`last`), earliest (`first`)
 * or every (`all`) matching click among all the user's clicks; a click credited by any purchase
 * is 1, and every prediction of a click gets its label.
 */
export function reference(
  inputs: Input[],
  config: Pick<JoinConfig, 'windowMs' | 'match' | 'attribution'>,
): Map<string, 0 | 1> {
  const predictions = inputs.filter((i) => i.kind === 'prediction').map((i) => i.value);
  const clicks = new Map<string, PendingPrediction>();
  for (const p of predictions) if (!clicks.has(p.eventId)) clicks.set(p.eventId, p);
  const purchases = inputs.filter((i) => i.kind === 'purchase').map((i) => i.value);
  const credited = new Set<string>();
  const matches = (c: PendingPrediction, q: PurchaseRef) =>
    c.userId === q.userId &&
    q.eventTime >= c.clickTime &&
    q.eventTime <= c.clickTime + config.windowMs &&
    (config.match === 'any-item' ||
      (config.match === 'same-item'
        ? c.itemId === q.itemId
        : q.sessionId !== null && q.sessionId === c.sessionId));
  const byUser = new Map<string, PendingPrediction[]>();
  for (const c of clicks.values()) byUser.set(c.userId, [...(byUser.get(c.userId) ?? []), c]);
  for (const q of purchases) {
    const candidates = (byUser.get(q.userId) ?? [])
      .filter((c) => matches(c, q))
      .sort(
        (a, b) => a.clickTime - b.clickTime || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0),
      );
    if (candidates.length === 0) continue;
    const chosen =
      config.attribution === 'all'
        ? candidates
        : config.attribution === 'first'
          ? [candidates[0]!]
          : [candidates.at(-1)!];
    for (const c of chosen) credited.add(c.eventId);
  }
  return new Map(predictions.map((p) => [p.predictionId, credited.has(p.eventId) ? 1 : 0]));
}
