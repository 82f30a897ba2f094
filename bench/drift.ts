// How the loop follows a drift: six hours of the simulated shop, shoes selling far better from
// the fifth hour on, replayed in event time through the real scorer, joiner and trainer. The
// served predictions of the hour after the drift are compared with what the champion of just
// before it (frozen) would have served on the same clicks, and the served log loss by bins of
// clicks with the generating probability's (the floor no model can beat) and the level before
// the drift. Labels: the join's rule on the input events alone. Results: bench/results/drift.json.
//
//   npm run bench -- drift [--minutes 8]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ClickEvent, PurchaseEvent } from '../services/common/contracts.js';
import { joinConfigFrom, loadJoinerConfig } from '../services/joiner/config.js';
import { initBackend } from '../services/model/backend.js';
import { fromArtifacts } from '../services/model/artifacts.js';
import { logLoss } from '../services/model/evaluation.js';
import { FeatureSpec } from '../services/model/features.js';
import { loadRegistryConfig } from '../services/registry/config.js';
import { ShopSimulation } from '../services/simulator/generator.js';
import { eventInputs, reference } from '../test/helpers/join-reference.js';
import { learnerOf, replayThroughLoop, WINDOW_MS } from './loop.js';

const { values: flags } = parseArgs({ options: { minutes: { type: 'string', default: '8' } } });
const HOUR = 3600_000;
const BIN = 1000;
// 20:00 UTC: the drift at midnight and its next hour in one hour-of-day bucket (see loop-e2e).
const startTime = Date.UTC(2026, 10, 1, 20);
const driftAt = startTime + 4 * HOUR;
const sim = new ShopSimulation({
  seed: 41,
  startTime,
  trafficRate: 2,
  drift: { atMs: driftAt - startTime, category: 'shoes', shift: 2.5 },
});
const clicks: ClickEvent[] = [];
const purchases: PurchaseEvent[] = [];
const truth = new Map<string, number>();
for (;;) {
  const e = sim.next();
  if (e.time >= startTime + 6 * HOUR) break;
  if (e.type === 'click') {
    clicks.push(e.click);
    truth.set(e.click.eventId, e.truth.probability);
  } else purchases.push(e.purchase);
}
const joinConfig = joinConfigFrom({ ...loadJoinerConfig({}), FW_JOIN_WINDOW_MS: WINDOW_MS });
const inputs = eventInputs(clicks, purchases);
const labels = reference(inputs, joinConfig);

const trainerSettings = {
  FW_TRAINER_HOLDOUT: 1500,
  FW_TRAINER_CANDIDATE_EVERY: 2500,
  FW_TRAINER_CANDIDATE_MS: 0,
  FW_TRAINER_PROMOTE_TO: 'champion' as const,
};
const run = await replayThroughLoop({
  name: 'drift',
  clicks,
  purchases,
  wallMs: Number(flags.minutes) * 60_000,
  trainer: trainerSettings,
});
const mismatched = clicks.filter((c) => run.labels.get(c.eventId) !== labels.get(c.eventId));
const labelMismatches = mismatched.length;
// Each one with its user's events, to tell the loop's fault from the reference's.
const mismatchDetails = mismatched.map((c) => ({
  click: c,
  loop: run.labels.get(c.eventId) ?? null,
  reference: labels.get(c.eventId) ?? null,
  userClicks: clicks.filter(
    (o) => o.userId === c.userId && Math.abs(o.eventTime - c.eventTime) < 2 * WINDOW_MS,
  ),
  userPurchases: purchases.filter(
    (p) => p.userId === c.userId && Math.abs(p.eventTime - c.eventTime) < 2 * WINDOW_MS,
  ),
}));

// The champion serving when the drift began: frozen, scored on the same clicks from their features.
const spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
await initBackend(run.runtime.logger);
const lastBefore = clicks.filter((c) => c.eventTime < driftAt).at(-1) as ClickEvent;
const frozenVersion = (run.served.get(lastBefore.eventId) as { modelVersion: string }).modelVersion;
const frozen = await fromArtifacts((await run.registry.loadArtifacts(frozenVersion)).files, spec);

type Scored = { score: number; label: number };
const servedOf = (c: ClickEvent): Scored => ({
  score: run.served.get(c.eventId)?.score ?? Number.NaN,
  label: labels.get(c.eventId) ?? 0,
});
const truthOf = (c: ClickEvent): Scored => ({
  score: truth.get(c.eventId) as number,
  label: labels.get(c.eventId) ?? 0,
});
const frozenOf = (part: readonly ClickEvent[]): Scored[] => {
  const predictions = part.map((c) => run.served.get(c.eventId));
  const scores = frozen.predict(
    predictions.map((p) => ({ features: p!.features, itemId: p!.itemId, segment: p!.segment })),
  );
  return part.map((c, i) => ({ score: scores[i] as number, label: labels.get(c.eventId) ?? 0 }));
};

const hourBefore = clicks.filter((c) => c.eventTime >= driftAt - HOUR && c.eventTime < driftAt);
const hourAfter = clicks.filter((c) => c.eventTime >= driftAt && c.eventTime < driftAt + HOUR);
const hours = {
  before: {
    clicks: hourBefore.length,
    served: logLoss(hourBefore.map(servedOf)),
    truth: logLoss(hourBefore.map(truthOf)),
  },
  after: {
    clicks: hourAfter.length,
    served: logLoss(hourAfter.map(servedOf)),
    frozen: logLoss(frozenOf(hourAfter)),
    truth: logLoss(hourAfter.map(truthOf)),
  },
};
// Served log loss by bins of clicks from the drift on, next to the floor: the excess over the
// generating probability is what a model can still win.
const after = clicks.filter((c) => c.eventTime >= driftAt);
const excessBefore = hours.before.served - hours.before.truth;
const bins = Array.from({ length: Math.floor(after.length / BIN) }, (_, k) => {
  const part = after.slice(k * BIN, (k + 1) * BIN);
  const served = logLoss(part.map(servedOf));
  const floor = logLoss(part.map(truthOf));
  return {
    clicksSinceDrift: (k + 1) * BIN,
    served,
    frozen: logLoss(frozenOf(part)),
    truth: floor,
    versions: [...new Set(part.map((c) => run.served.get(c.eventId)?.modelVersion))]
      .map((name) => {
        const version = run.versions.find((v) => v.version === name);
        const learner = version ? learnerOf(version).learner : undefined;
        return learner ? `${name}(${learner})` : name;
      })
      .join(' '),
    // Recovered: the excess over the floor back within 2% (of the loss) of the excess before.
    recovered: served - floor <= excessBefore + 0.02 * served,
  };
});
const firstRecovered = bins.find((b) => b.recovered)?.clicksSinceDrift ?? null;
frozen.dispose();

const result = {
  simulation: { seed: 41, hours: 6, trafficRate: 2, drift: 'shoes +2.5 log-odds from hour 4' },
  clicks: clicks.length,
  purchases: purchases.length,
  replay: { wallSeconds: run.wallSeconds, speed: run.speed },
  trainer: trainerSettings,
  labelMismatches,
  corrections: run.corrections,
  mismatchDetails,
  frozenVersion,
  hours,
  recoveredWithinClicks: firstRecovered,
  bins,
  versions: run.versions.map((v) => ({
    version: v.version,
    kind: v.kind,
    status: v.status,
    reason: v.statusReason,
    ...learnerOf(v),
  })),
};
mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
writeFileSync(join(import.meta.dirname, 'results', 'drift.json'), `${JSON.stringify(result, null, 2)}\n`);

console.log(
  `\n${clicks.length} clicks, labels differing from the reference: ${labelMismatches}; frozen ${frozenVersion}`,
);
console.log(
  `hour before the drift: served ${hours.before.served.toFixed(4)} (floor ${hours.before.truth.toFixed(4)}); hour after: served ${hours.after.served.toFixed(4)}, frozen ${hours.after.frozen.toFixed(4)} (floor ${hours.after.truth.toFixed(4)})`,
);
console.log('clicks since drift  served   frozen   floor    versions');
for (const b of bins)
  console.log(
    `${String(b.clicksSinceDrift).padStart(17)}  ${b.served.toFixed(4)}   ${b.frozen.toFixed(4)}   ${b.truth.toFixed(4)}   ${b.versions}${b.recovered ? '  (recovered)' : ''}`,
  );
console.log(`recovered within ${firstRecovered ?? 'never'} clicks`);
await run.cleanup();
process.exit(0);
