import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auc, calibrationError, evaluate, liftAt, logLoss } from '../../services/model/evaluation.js';

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

  it('lift: the label rate of the top share by score over the overall rate', () => {
    // 20 examples, 4 positives (rate 0.2); the top 10% (2 examples) holds 1 positive: rate 0.5.
    const examples = Array.from({ length: 20 }, (_, i) => ({
      score: 1 - i / 20,
      label: [0, 3, 7, 12].includes(i) ? 1 : 0,
    }));
    assert.equal(liftAt(examples, 0.1), 0.5 / 0.2);
    // Positives ranked first: the top 20% is all positive, lift 1 / 0.2 = 5.
    assert.equal(
      liftAt(
        examples.map((e, i) => ({ ...e, label: i < 4 ? 1 : 0 })),
        0.2,
      ),
      5,
    );
    // Random order is no lift; no positives is undefined.
    assert.equal(
      liftAt(
        examples.map((e) => ({ ...e, score: 0.5 })),
        1,
      ),
      1,
    );
    assert.ok(Number.isNaN(liftAt(examples.map((e) => ({ ...e, label: 0 })))));
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
