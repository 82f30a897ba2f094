// Alerts open once, are said again only a cooldown later, clear when their condition ends; a
// drift on the champion asks for one retrain per cooldown, however many looks see it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judge, type AlertPolicy, type AlertState, type Observation } from '../../services/monitor/alerts.js';
import type { DriftReport } from '../../services/monitor/drift.js';
import type { WindowQuality } from '../../services/monitor/quality.js';

const MINUTE = 60_000;
const policy: AlertPolicy = {
  thresholds: { maxLogLoss: 0.5, minAuc: 0.6, maxEce: null, minLabels: 100 },
  cooldownMs: 60 * MINUTE,
  retrainOn: ['drift', 'performance'],
};

function quality(overrides: Partial<WindowQuality> = {}): WindowQuality {
  return {
    predictions: 1000,
    meanScore: 0.1,
    labels: 1000,
    coverage: 1,
    positives: 100,
    purchaseRate: 0.1,
    predictedRate: 0.1,
    logLoss: 0.3,
    auc: 0.75,
    ece: 0.01,
    reliability: [],
    delay: { mean: null, p50: null, p90: null },
    estimate: { logLoss: 0.3, auc: 0.75, purchaseRate: 0.1 },
    ...overrides,
  };
}

/** A drift report testing category and segment (`records` each), the named ones drifted. */
const drifted = (groups: string[], records = 2000): DriftReport => ({
  level: 1e-5,
  designEffect: { live: 1, reference: 1 },
  drifted: groups,
  groups: ['category', 'segment'].map((group) => ({
    group,
    records,
    psi: groups.includes(group) ? 0.4 : 0.01,
    distance: groups.includes(group) ? 0.3 : 0.01,
    pValue: groups.includes(group) ? 1e-12 : 0.5,
    tested: records >= 500,
    drifted: groups.includes(group),
    missingRate: 0,
    referenceMissingRate: 0,
    newValueRate: 0,
  })),
});

const look = (arm: string, q: WindowQuality, drift: DriftReport | null = null): Observation => ({
  version: 'v3',
  arm,
  quality: q,
  drift,
});

describe('monitor alerts', () => {
  it('a drift on the champion opens an alert and one retrain, however many looks see it', () => {
    const state: AlertState = { open: {}, lastRetrainAt: null };
    const first = judge([look('champion', quality(), drifted(['category']))], state, 0, policy);
    assert.deepEqual(
      first.alerts.map((a) => a.id),
      ['drift:v3:champion:category'],
    );
    assert.match(first.retrain?.reason ?? '', /category drifted/);
    for (let t = 1; t < 60; t++) {
      const again = judge([look('champion', quality(), drifted(['category']))], state, t * MINUTE, policy);
      assert.deepEqual([again.alerts, again.retrain], [[], null], `look ${t}`);
    }
    // A second group drifting within the cooldown is said, but asks for no second retrain.
    const more = judge(
      [look('champion', quality(), drifted(['category', 'segment']))],
      state,
      59 * MINUTE,
      policy,
    );
    assert.deepEqual(
      more.alerts.map((a) => a.subject),
      ['segment'],
    );
    assert.equal(more.retrain, null);
    // A cooldown later, still drifting: said again, and one retrain more.
    const later = judge([look('champion', quality(), drifted(['category']))], state, 61 * MINUTE, policy);
    assert.deepEqual(
      later.alerts.map((a) => a.subject),
      ['category'],
    );
    assert.deepEqual(later.cleared, ['drift:v3:champion:segment']);
    assert.ok(later.retrain);
  });

  it('an open alert is not cleared by a look that could not judge it, so it is not said again as new', () => {
    const state: AlertState = { open: {}, lastRetrainAt: null };
    judge([look('champion', quality(), drifted(['category']))], state, 0, policy);
    // After a restart the reference is not read yet (no drift report); then a window too thin.
    const blind = judge([look('champion', quality(), null)], state, MINUTE, policy);
    assert.deepEqual(blind.cleared, []);
    const thin = judge(
      [look('champion', quality({ labels: 10 }), drifted([], 100))],
      state,
      2 * MINUTE,
      policy,
    );
    assert.deepEqual(thin.cleared, []);
    const back = judge([look('champion', quality(), drifted(['category']))], state, 3 * MINUTE, policy);
    assert.deepEqual([back.alerts, back.retrain], [[], null], 'still the same open alert');
    // Judged and held: cleared. An arm no longer observed clears its alerts too.
    const calm = judge([look('champion', quality(), drifted([]))], state, 4 * MINUTE, policy);
    assert.deepEqual(calm.cleared, ['drift:v3:champion:category']);
    judge([look('challenger', quality({ logLoss: 0.9 }))], state, 5 * MINUTE, policy);
    const gone = judge([look('champion', quality(), drifted([]))], state, 6 * MINUTE, policy);
    assert.deepEqual(gone.cleared, ['performance:v3:challenger:logLoss']);
  });

  it('performance below its threshold alerts; too few labels, a candidate arm, or the estimate alone retrain nothing', () => {
    const state: AlertState = { open: {}, lastRetrainAt: null };
    const bad = quality({ logLoss: 0.7, auc: 0.55 });
    const few = judge([look('champion', { ...bad, labels: 50 })], state, 0, policy);
    assert.deepEqual(few.alerts, []);
    const challenger = judge([look('challenger', bad)], state, 0, policy);
    assert.deepEqual(challenger.alerts.map((a) => a.subject).sort(), ['auc', 'logLoss']);
    assert.equal(challenger.retrain, null);
    const early = judge(
      [
        look(
          'champion',
          quality({
            labels: 0,
            logLoss: null,
            auc: null,
            estimate: { logLoss: 0.8, auc: 0.7, purchaseRate: 0.2 },
          }),
        ),
      ],
      state,
      0,
      policy,
    );
    assert.deepEqual(
      early.alerts.map((a) => [a.kind, a.subject]),
      [['estimate', 'logLoss']],
    );
    assert.equal(early.retrain, null);
    assert.ok(early.cleared.includes('performance:v3:challenger:auc'));
    const live = judge([look('champion', bad)], state, 0, policy);
    assert.equal(live.retrain?.alert.kind, 'performance');
  });
});
