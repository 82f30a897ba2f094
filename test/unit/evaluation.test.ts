import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auc, calibrationError, evaluate, logLoss } from '../../services/model/evaluation.js';

describe('evaluation', () => {
  it('log loss of known cases', () => {
    assert.ok(Math.abs(logLoss([{ score: 0.5, label: 1 }]) - Math.log(2)) < 1e-12);
    assert.ok(
      Math.abs(
        logLoss([
          { score: 0.9, label: 1 },
          { score: 0.2, label: 0 },
        ]) -
          -(Math.log(0.9) + Math.log(0.8)) / 2,
      ) < 1e-12,
    );
    assert.ok(Number.isFinite(logLoss([{ score: 0, label: 1 }])), 'clipped, not infinite');
    assert.ok(
      Math.abs(
        logLoss([
          { score: 0.5, label: 1, weight: 3 },
          { score: 0.25, label: 0, weight: 1 },
        ]) -
          (3 * Math.log(2) - Math.log(0.75)) / 4,
      ) < 1e-12,
    );
  });

  it('AUC: perfect, reversed, random ties, and the Mann-Whitney count', () => {
    assert.equal(
      auc([
        { score: 0.1, label: 0 },
        { score: 0.9, label: 1 },
      ]),
      1,
    );
    assert.equal(
      auc([
        { score: 0.9, label: 0 },
        { score: 0.1, label: 1 },
      ]),
      0,
    );
    assert.equal(
      auc([
        { score: 0.5, label: 0 },
        { score: 0.5, label: 1 },
      ]),
      0.5,
    );
    // pairs (pos, neg): (0.8>0.3) (0.8>0.6) (0.4>0.3) (0.4<0.6) → 3 of 4
    assert.equal(
      auc([
        { score: 0.8, label: 1 },
        { score: 0.4, label: 1 },
        { score: 0.3, label: 0 },
        { score: 0.6, label: 0 },
      ]),
      0.75,
    );
    assert.ok(Number.isNaN(auc([{ score: 0.3, label: 1 }])));
  });

  it('calibration error is zero when scores match observed rates, large when they do not', () => {
    const calibrated = Array.from({ length: 8 }, (_, i) => ({ score: 0.25, label: i < 2 ? 1 : 0 }));
    assert.ok(calibrationError(calibrated) < 1e-12);
    assert.ok(
      Math.abs(
        calibrationError([
          { score: 0.95, label: 0 },
          { score: 0.95, label: 0 },
        ]) - 0.95,
      ) < 1e-12,
    );
  });

  it('evaluate reports counts and rates', () => {
    const e = evaluate([
      { score: 0.2, label: 0 },
      { score: 0.7, label: 1 },
    ]);
    assert.equal(e.examples, 2);
    assert.equal(e.positives, 1);
    assert.equal(e.positiveRate, 0.5);
    assert.ok(Math.abs(e.meanScore - 0.45) < 1e-12);
  });
});
