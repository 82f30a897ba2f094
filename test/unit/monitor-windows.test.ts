// The monitor's windows against the evaluation code run on the raw examples: log loss, AUC with
// tied scores and ECE agree exactly when scores sit on the bins; a correction counts once; the
// estimate before labels is the expected loss under the calibration; a checkpoint is lossless.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabeledExample, Prediction } from '../../services/common/contracts.js';
import { Random } from '../../services/common/random.js';
import { auc, calibrationError, logLoss } from '../../services/model/evaluation.js';
import { FeatureSpec } from '../../services/model/features.js';
import { ProfileReader } from '../../services/model/profile.js';
import { binnedAuc, windowQuality } from '../../services/monitor/quality.js';
import { MonitorWindows, armKey, parseArmKey } from '../../services/monitor/windows.js';
import { sampleRecords } from '../helpers/records.js';

const T0 = Date.UTC(2026, 11, 1);
const MINUTE = 60_000;
const reader = new ProfileReader(new FeatureSpec());
const close = (a: number | null, b: number, tol = 1e-9) =>
  assert.ok(a !== null && Math.abs(a - b) <= tol, `${a} ≉ ${b}`);

function served(i: number, score: number, time: number, arm: Prediction['arm'] = 'champion'): Prediction {
  const { prediction } = sampleRecords(time);
  return { ...prediction, predictionId: `p${i}`, score, eventTime: time, arm };
}

function label(p: Prediction, value: number, revision = 0): LabeledExample {
  const { labeledExample } = sampleRecords(p.eventTime);
  return {
    ...labeledExample,
    predictionId: p.predictionId,
    modelVersion: p.modelVersion,
    arm: p.arm,
    score: p.score,
    clickTime: p.eventTime,
    label: value,
    labelSource: value ? 'outcome' : 'timeout',
    delayMs: value ? 90_000 : null,
    revision,
  };
}

describe('monitor windows', () => {
  it('log loss, AUC with ties and ECE equal the evaluation of the raw examples', () => {
    const random = new Random(7);
    const windows = MonitorWindows.empty(MINUTE, { retentionMs: 60 * MINUTE, reader });
    const examples: { score: number; label: number }[] = [];
    for (let i = 0; i < 3000; i++) {
      const score = (Math.floor(random.next() * 40) + 0.5) / 100; // on bin centres, many ties
      const p = served(i, score, T0 + i * 1000);
      const y = random.next() < score ? 1 : 0;
      windows.addPrediction(p);
      windows.addLabel(label(p, y));
      examples.push({ score, label: y });
    }
    const q = windowQuality(windows.buckets(() => true, T0, T0 + 3600_000));
    assert.equal(q.predictions, 3000);
    assert.equal(q.labels, 3000);
    assert.equal(q.coverage, 1);
    close(q.logLoss, logLoss(examples));
    close(q.auc, auc(examples));
    close(q.ece, calibrationError(examples, 10));
    assert.equal(q.positives, examples.filter((e) => e.label).length);
    assert.equal(q.delay.p50, 120_000, 'a 90 s delay lies in the bin up to 2 minutes');
  });

  it('binned AUC: perfect, reversed, all tied', () => {
    assert.equal(binnedAuc([0, 2], [3, 0]), 1);
    assert.equal(binnedAuc([2, 0], [0, 3]), 0);
    assert.equal(binnedAuc([0, 4, 0], [0, 5, 0]), 0.5);
    assert.equal(binnedAuc([1], [0]), null);
  });

  it('a correction replaces the label it corrects', () => {
    const windows = MonitorWindows.empty(MINUTE, { retentionMs: 60 * MINUTE, reader });
    const p = served(1, 0.3, T0);
    windows.addPrediction(p);
    windows.addLabel(label(p, 0));
    windows.addLabel(label(p, 1, 1));
    const q = windowQuality(windows.buckets(() => true, T0, T0 + MINUTE));
    assert.equal(q.labels, 1);
    assert.equal(q.positives, 1);
    close(q.logLoss, -Math.log(0.3));
  });

  it('estimates quality from calibrated scores before any label', () => {
    const calibration = (_version: string, score: number) => Math.min(1, score * 2);
    const windows = MonitorWindows.empty(MINUTE, { retentionMs: 60 * MINUTE, reader, calibration });
    const scores = [0.1, 0.2, 0.3];
    scores.forEach((s, i) => windows.addPrediction(served(i, s, T0 + i)));
    const q = windowQuality(windows.buckets(() => true, T0, T0 + MINUTE));
    assert.equal(q.labels, 0);
    assert.equal(q.logLoss, null);
    const expected = scores.map((s) => -(2 * s * Math.log(s) + (1 - 2 * s) * Math.log(1 - s)));
    close(q.estimate.logLoss, expected.reduce((a, b) => a + b) / 3);
    close(q.estimate.purchaseRate, (0.2 + 0.4 + 0.6) / 3);
    // Expected positives 0.2, 0.4, 0.6 and negatives 0.8, 0.6, 0.4 in ascending bins.
    close(q.estimate.auc, binnedAuc([0.2, 0.4, 0.6], [0.8, 0.6, 0.4]) as number);
  });

  it('keeps arms apart, forgets what is behind the retention, and survives a JSON checkpoint', () => {
    const windows = MonitorWindows.empty(MINUTE, { retentionMs: 10 * MINUTE, reader });
    windows.addPrediction(served(1, 0.2, T0));
    windows.addPrediction(served(2, 0.4, T0 + 1000, 'challenger'));
    assert.deepEqual(windows.keys(), [armKey('v1', 'challenger'), armKey('v1', 'champion')]);
    assert.deepEqual(parseArmKey(armKey('v|1', 'shadow')), { version: 'v|1', arm: 'shadow' });
    windows.addPrediction(served(3, 0.5, T0 + 30 * MINUTE));
    assert.deepEqual(
      windows.buckets(() => true, T0, T0 + MINUTE),
      [],
      'expired',
    );
    windows.addPrediction(served(4, 0.5, T0 + 2 * MINUTE));
    assert.equal(windows.state.tooOld, 1);
    const copy = new MonitorWindows(JSON.parse(JSON.stringify(windows.state)) as typeof windows.state, {
      retentionMs: 10 * MINUTE,
      reader,
    });
    const range = [T0, T0 + 3600_000] as const;
    assert.deepEqual(
      windowQuality(copy.buckets(() => true, ...range)),
      windowQuality(windows.buckets(() => true, ...range)),
    );
    assert.equal(copy.profile(() => true, ...range).records, 1);
  });
});
