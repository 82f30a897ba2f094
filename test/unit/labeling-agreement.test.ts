// Agreement statistics against values computed by hand: Cohen's kappa on the textbook 2×2 table
// (κ = 0.4), Fleiss' kappa on Fleiss's 10 subjects × 14 raters × 5 categories (κ = 0.210), and
// a task set with a varying number of labels worked out on paper.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agreementReport, cohensKappa, fleissKappa } from '../../services/labeling/agreement.js';

const near = (actual: number | null, expected: number, digits = 3) =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 10 ** -digits, `${actual} vs ${expected}`);

describe('labeler agreement', () => {
  it("Cohen's kappa: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no is 0.4", () => {
    const pairs: [string, string][] = [
      ...Array.from({ length: 20 }, (): [string, string] => ['yes', 'yes']),
      ...Array.from({ length: 5 }, (): [string, string] => ['yes', 'no']),
      ...Array.from({ length: 10 }, (): [string, string] => ['no', 'yes']),
      ...Array.from({ length: 15 }, (): [string, string] => ['no', 'no']),
    ];
    near(cohensKappa(pairs), 0.4, 12);
    assert.equal(cohensKappa([['1', '1']]), null, 'no chance to disagree: undefined, not 1');
    assert.equal(cohensKappa([]), null);
  });

  it("Fleiss' kappa: Fleiss's table of 10 subjects rated by 14 is 0.210", () => {
    const rows = [
      [0, 0, 0, 0, 14],
      [0, 2, 6, 4, 2],
      [0, 0, 3, 5, 6],
      [0, 3, 9, 2, 0],
      [2, 2, 8, 1, 1],
      [7, 7, 0, 0, 0],
      [3, 2, 6, 3, 0],
      [2, 5, 3, 2, 2],
      [6, 5, 2, 1, 0],
      [0, 2, 2, 3, 7],
    ];
    const tasks = rows.map((row) => Object.fromEntries(row.map((n, j) => [`c${j + 1}`, n])));
    near(fleissKappa(tasks), 0.21, 3);
  });

  it('with a varying number of labels per task, per pair and overall, as worked out by hand', () => {
    const report = agreementReport([
      { ann: '1', bob: '1', cat: '1' },
      { ann: '1', bob: '0' },
      { ann: '0' }, // one label: not counted
    ]);
    assert.equal(report.tasks, 2);
    // P = (1 + 0) / 2 = 0.5; categories 4 × '1', 1 × '0': chance 0.68; (0.5 − 0.68) / 0.32.
    near(report.fleissKappa, -0.5625, 12);
    assert.deepEqual(report.pairs, [
      { a: 'ann', b: 'bob', tasks: 2, observed: 0.5, kappa: 0 },
      { a: 'ann', b: 'cat', tasks: 1, observed: 1, kappa: null },
      { a: 'bob', b: 'cat', tasks: 1, observed: 1, kappa: null },
    ]);
  });
});
