// The monitor core over a simulated stream: quiet while the traffic looks like the reference,
// the category group flagged once its mix shifts, one retrain for it, and the same judgement
// after a checkpoint taken mid-stream.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureSpec } from '../../services/model/features.js';
import { ProfileReader, profileOf } from '../../services/model/profile.js';
import { DEFAULT_DRIFT_POLICY } from '../../services/monitor/drift.js';
import {
  MonitorCore,
  calibrate,
  type MonitorCoreConfig,
  type MonitorState,
} from '../../services/monitor/core.js';
import { servedOutcomes, servedPredictions } from '../helpers/monitor.js';
import { sampleRecords } from '../helpers/records.js';

const spec = new FeatureSpec({ hashBits: 12 });
const reader = new ProfileReader(spec);
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 1);
const predictions = (seed: number, n: number, from: number, weights: number[]) =>
  servedPredictions(spec, { seed, n, from, spanMs: 30 * MINUTE, weights });

const config: MonitorCoreConfig = {
  bucketMs: MINUTE,
  windowMs: 15 * MINUTE,
  labelLagMs: 5 * MINUTE,
  retentionMs: 120 * MINUTE,
  historyMs: 0,
  drift: DEFAULT_DRIFT_POLICY,
  alerts: {
    thresholds: { maxLogLoss: null, minAuc: null, maxEce: null, minLabels: 100 },
    cooldownMs: 60 * MINUTE,
    retrainOn: ['drift'],
  },
};
const even = [1, 1, 1, 1];
const reference = profileOf(spec, predictions(1, 20_000, T0 - 600 * MINUTE, even));
const references = () => ({ profile: reference, calibration: null });

describe('monitor core', () => {
  it('stays quiet on traffic like the reference, flags the shifted category, retrains once', () => {
    const core = new MonitorCore(config, reader, references);
    core.takePredictions(predictions(2, 6000, T0, even));
    const quiet = core.look(T0 + 30 * MINUTE);
    assert.equal(quiet.observations.length, 1);
    assert.deepEqual(quiet.observations[0]?.drift?.drifted, []);
    assert.deepEqual(quiet.judgement.alerts, []);

    core.takePredictions(predictions(3, 6000, T0 + 30 * MINUTE, [1, 1, 1, 5]));
    const shifted = core.look(T0 + 60 * MINUTE);
    assert.deepEqual(shifted.observations[0]?.drift?.drifted, ['category']);
    assert.equal(shifted.judgement.retrain?.alert.subject, 'category');
    const snapshot = JSON.parse(JSON.stringify(core.snapshot())) as MonitorState;

    const again = core.look(T0 + 61 * MINUTE);
    assert.equal(again.judgement.retrain, null, 'within the cooldown');
    const restored = new MonitorCore(config, reader, references, snapshot).look(T0 + 61 * MINUTE);
    assert.deepEqual(restored.observations, again.observations);
    assert.deepEqual(restored.judgement, again.judgement);
  });

  it('leaves out the outcomes of predictions most labelers flagged invalid, across a checkpoint', () => {
    const served = predictions(5, 400, T0, even);
    const outcomes = servedOutcomes(served, { every: 5, timeoutMs: MINUTE });
    const label = (predictionId: string, flags: string[]) => ({
      ...sampleRecords(T0).humanLabel,
      predictionId,
      flags,
    });
    const core = new MonitorCore(config, reader, references);
    core.takePredictions(served);
    // The first 100: two flags of two labels; the next 100: one flag of three (outvoted).
    for (const p of served.slice(0, 100))
      core.takeHumanLabels([label(p.predictionId, ['bot']), label(p.predictionId, ['broken'])]);
    for (const p of served.slice(100, 200))
      core.takeHumanLabels([
        label(p.predictionId, ['bot']),
        label(p.predictionId, []),
        label(p.predictionId, []),
      ]);
    const restored = new MonitorCore(
      config,
      reader,
      references,
      JSON.parse(JSON.stringify(core.snapshot())) as MonitorState,
    );
    for (const monitor of [core, restored]) {
      monitor.takeLabels(outcomes);
      assert.equal(monitor.flags.excluded, 100);
      const labels = monitor.windows
        .buckets(() => true, T0 - 60 * MINUTE, T0 + 60 * MINUTE)
        .reduce((sum, b) => sum + b.labels.n, 0);
      assert.equal(labels, 300, 'the outcomes of the 100 flagged predictions are not counted');
    }
  });

  it('reads the quality window a label lag behind the drift window', () => {
    const core = new MonitorCore(config, reader, references);
    core.takePredictions(predictions(4, 100, T0, even));
    const look = core.look(T0);
    assert.deepEqual(look.drift, { from: T0 + 30 * MINUTE - 15 * MINUTE, to: T0 + 30 * MINUTE });
    assert.deepEqual(look.quality, { from: T0 + 10 * MINUTE, to: T0 + 25 * MINUTE });
  });

  it('calibrates through the holdout reliability, flat past its ends', () => {
    const table = [
      { meanScore: 0.1, rate: 0.05 },
      { meanScore: 0.3, rate: 0.25 },
    ];
    assert.equal(calibrate(table, 0.05), 0.05);
    assert.ok(Math.abs(calibrate(table, 0.2) - 0.15) < 1e-12);
    assert.equal(calibrate(table, 0.9), 0.25);
    assert.equal(calibrate(null, 0.42), 0.42);
  });
});
