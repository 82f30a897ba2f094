// The drift math against values computed by hand (or in closed form: the chi-squared tail with 2
// and 4 degrees of freedom, erfc for 1).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  benjaminiHochberg,
  chiSquaredHomogeneity,
  chiSquaredSurvival,
  jensenShannon,
  logGamma,
  perTestLevel,
  psi,
} from '../../services/monitor/stats.js';

const close = (actual: number, expected: number, tolerance = 1e-9) =>
  assert.ok(
    Math.abs(actual - expected) <= tolerance * Math.max(1, Math.abs(expected)),
    `${actual} ≉ ${expected}`,
  );

describe('drift statistics', () => {
  it('PSI: zero for one distribution, Σ (q − p) ln(q / p) otherwise, finite for a new bin', () => {
    assert.equal(psi({ a: 5, b: 5 }, { a: 50, b: 50 }), 0);
    // p = (.5, .5), q = (.25, .75): −.25 ln .5 + .25 ln 1.5
    close(psi({ a: 50, b: 50 }, { a: 25, b: 75 }), 0.25 * Math.log(2) + 0.25 * Math.log(1.5));
    const appeared = psi({ a: 100 }, { a: 50, b: 50 });
    assert.ok(Number.isFinite(appeared) && appeared > 2, String(appeared));
  });

  it('Jensen-Shannon distance: 0 alike, 1 disjoint, and a case by hand', () => {
    assert.equal(jensenShannon({ a: 1, b: 3 }, { a: 10, b: 30 }), 0);
    close(jensenShannon({ a: 1 }, { b: 1 }), 1);
    // p = (.5, .5), q = (1, 0), m = (.75, .25)
    const divergence = 0.5 * (0.5 * Math.log2(0.5 / 0.75) + 0.5 * Math.log2(2)) + 0.5 * Math.log2(1 / 0.75);
    close(jensenShannon({ a: 1, b: 1 }, { a: 4 }), Math.sqrt(divergence));
  });

  it('the chi-squared tail matches closed forms and table values', () => {
    close(chiSquaredSurvival(3.841458820694124, 1), 0.05, 1e-10);
    close(chiSquaredSurvival(6.666666666666667, 1), 0.009823274507519245, 1e-10);
    close(chiSquaredSurvival(0.5, 2), Math.exp(-0.25), 1e-12);
    close(chiSquaredSurvival(9.487729036781154, 4), 0.05, 1e-10);
    close(chiSquaredSurvival(18.307038053275146, 10), 0.05, 1e-9);
    close(chiSquaredSurvival(100, 4), Math.exp(-50) * 51, 1e-8);
    assert.equal(chiSquaredSurvival(0, 3), 1);
    close(logGamma(5), Math.log(24), 1e-13);
    close(logGamma(0.5), 0.5 * Math.log(Math.PI), 1e-13);
  });

  it('chi-squared homogeneity of a 2 × 2 table by hand; nothing to test is p = 1', () => {
    const test = chiSquaredHomogeneity({ x: 10, y: 20 }, { x: 20, y: 10 });
    close(test.statistic, (4 * 25) / 15);
    assert.equal(test.degreesOfFreedom, 1);
    close(test.pValue, 0.009823274507519245, 1e-9);
    assert.equal(chiSquaredHomogeneity({ x: 5 }, { x: 9 }).pValue, 1);
    assert.equal(chiSquaredHomogeneity({ x: 5, y: 1 }, {}).pValue, 1);
    // Bins empty on both sides add nothing.
    assert.deepEqual(
      chiSquaredHomogeneity({ x: 10, y: 20, z: 0 }, { x: 20, y: 10, z: 0 }),
      chiSquaredHomogeneity({ x: 10, y: 20 }, { x: 20, y: 10 }),
    );
  });

  it('Benjamini-Hochberg keeps the largest run under k q / m; the level shares the budget', () => {
    assert.deepEqual(benjaminiHochberg([0.01, 0.04, 0.03, 0.2], 0.05), [true, false, false, false]);
    assert.deepEqual(benjaminiHochberg([0.04, 0.01, 0.03, 0.02], 0.05), [true, true, true, true]);
    // 0.03 fails its own rank (0.025) but the larger 0.035 passes rank 3 (0.0375): both are in.
    assert.deepEqual(benjaminiHochberg([0.01, 0.03, 0.035, 0.9], 0.05), [true, true, true, false]);
    close(perTestLevel(0.1, 11, 1440), 0.1 / (11 * 1440));
    assert.equal(perTestLevel(5, 1, 1), 1);
  });
});
