// The console's series: buckets summed into steps, no more than asked for, nothing lost.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureSpec } from '../../services/model/features.js';
import { ProfileReader } from '../../services/model/profile.js';
import { windowQuality } from '../../services/monitor/quality.js';
import { seriesOf } from '../../services/monitor/series.js';
import { MonitorWindows } from '../../services/monitor/windows.js';
import { servedOutcomes, servedPredictions } from '../helpers/monitor.js';

const spec = new FeatureSpec({ hashBits: 12 });
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 11, 1);

describe('monitor series', () => {
  it('sums minute buckets into steps of at most maxPoints per version and arm, counting every prediction once', () => {
    const windows = MonitorWindows.empty(MINUTE, {
      retentionMs: 600 * MINUTE,
      reader: new ProfileReader(spec),
    });
    const v1 = servedPredictions(spec, {
      seed: 1,
      n: 3000,
      from: T0,
      spanMs: 60 * MINUTE,
      weights: [1, 1, 1, 1],
    });
    const v2 = servedPredictions(spec, {
      seed: 2,
      n: 500,
      from: T0 + 30 * MINUTE,
      spanMs: 30 * MINUTE,
      weights: [1],
      version: 'v8',
    });
    for (const p of [...v1, ...v2]) windows.addPrediction(p);
    const series = seriesOf(windows, 12);
    assert.deepEqual(
      series.map((s) => `${s.version}|${s.arm}`),
      ['v7|champion', 'v8|champion'],
    );
    const [first, second] = series as [(typeof series)[0], (typeof series)[0]];
    assert.equal(first.stepMs, 5 * MINUTE, '60 minutes in at most 12 points');
    assert.equal(first.points.length, 12);
    assert.equal(second.points.length, 6);
    assert.equal(
      first.points.reduce((n, p) => n + p.predictions, 0),
      3000,
    );
    assert.equal(
      second.points.reduce((n, p) => n + p.predictions, 0),
      500,
    );
    const third = windowQuality(
      windows.buckets((k) => k === 'v7|champion', T0 + 10 * MINUTE, T0 + 15 * MINUTE),
    );
    assert.equal(first.points[2]?.at, T0 + 10 * MINUTE);
    assert.equal(first.points[2]?.meanScore, third.meanScore);
    assert.equal(first.points[2]?.estimatedLogLoss, third.estimate.logLoss);
    assert.deepEqual(
      seriesOf(MonitorWindows.empty(MINUTE, { retentionMs: MINUTE, reader: new ProfileReader(spec) })),
      [],
    );
  });

  it('leaves out the realised figures of steps newer than the label lag, keeping their counts', () => {
    const windows = MonitorWindows.empty(MINUTE, {
      retentionMs: 600 * MINUTE,
      reader: new ProfileReader(spec),
    });
    const served = servedPredictions(spec, { seed: 5, n: 600, from: T0, spanMs: 60 * MINUTE, weights: [1] });
    for (const p of served) windows.addPrediction(p);
    for (const l of servedOutcomes(served, { every: 5 })) windows.addLabel(l);
    const [series] = seriesOf(windows, 12, undefined, 30 * MINUTE);
    const matured = series!.points.filter((p) => p.logLoss !== null);
    // The newest click is at 59.9 minutes: the steps ending by 29.9 minutes are labeled.
    assert.equal(matured.length, 5);
    assert.ok(matured.every((p) => p.at + 5 * MINUTE <= T0 + 30 * MINUTE));
    assert.equal(
      series!.points.reduce((n, p) => n + p.labels, 0),
      600,
      'labels are still counted',
    );
  });
});
