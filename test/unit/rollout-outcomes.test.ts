// An experiment's outcomes from labeled examples: served outcome labels of the two versions only,
// corrections replacing what they correct, clicks before the start left out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabeledExample } from '../../services/common/contracts.js';
import { Random } from '../../services/common/random.js';
import { ExperimentOutcomes, outcomeOf } from '../../services/rollout/outcomes.js';
import { servedLabel } from '../helpers/records.js';
import { calibrationError } from '../../services/registry/experiments.js';
import { EMPTY_ARM, observe, unobserve, variance } from '../../services/rollout/sequential.js';

const versions = { control: 'v000001', candidate: 'v000002' };
/** Every attribution window closed: outcomes count as they arrive (the waiting is tested apart). */
const CLOSED = { closedUntil: Number.MAX_SAFE_INTEGER };

const example = (over: Partial<LabeledExample> & { predictionId: string }) =>
  servedLabel({ modelVersion: versions.control, ...over });

describe('experiment outcomes', () => {
  it('sum outcomes in all and by the share that served them, restored as they were', () => {
    const outcomes = new ExperimentOutcomes(versions, 0, CLOSED);
    outcomes.take(example({ predictionId: 'a', label: 1, labelSource: 'outcome', propensity: 0.9 }));
    outcomes.take(example({ predictionId: 'b', modelVersion: versions.candidate, propensity: 0.1 }));
    outcomes.take(example({ predictionId: 'c', propensity: 0.5 }));
    outcomes.take(example({ predictionId: 'd', modelVersion: versions.candidate, propensity: 0.5 }));
    const snapshot = outcomes.snapshot();
    assert.deepEqual(Object.keys(snapshot.strata).sort(), ['0.1', '0.5']);
    assert.equal(snapshot.strata['0.1']?.control['purchaseRate']?.n, 1);
    assert.equal(snapshot.strata['0.1']?.candidate['purchaseRate']?.n, 1);
    assert.equal(snapshot.strata['0.5']?.control['purchaseRate']?.mean, 0);
    assert.equal(snapshot.stats.control['purchaseRate']?.n, 2);
    const restored = new ExperimentOutcomes(versions, 0, snapshot);
    restored.take(example({ predictionId: 'e', propensity: 0.5, label: 1, labelSource: 'outcome' }));
    assert.equal(restored.snapshot().strata['0.5']?.control['purchaseRate']?.mean, 0.5);
    assert.equal(restored.snapshot().stats.control['purchaseRate']?.n, 3);
  });

  it('sum by the split that served them; outside the segments or the split nothing counts', () => {
    const outcomes = new ExperimentOutcomes(versions, { since: 0, segments: ['DE/*'] }, CLOSED);
    const inDE = { segment: 'DE/mobile' };
    // The same shares under two splits (a second candidate joined): two strata, not one.
    outcomes.take(example({ predictionId: 'a', ...inDE, propensity: 0.8, split: 'one' }));
    outcomes.take(
      example({
        predictionId: 'b',
        ...inDE,
        modelVersion: versions.candidate,
        propensity: 0.1,
        split: 'one',
      }),
    );
    outcomes.take(example({ predictionId: 'c', ...inDE, propensity: 0.7, split: 'two' }));
    assert.equal(outcomes.take(example({ predictionId: 'd', segment: 'FR/mobile', split: 'one' })), false);
    assert.equal(outcomes.take(example({ predictionId: 'e', ...inDE, split: 'one.out' })), false);
    const snapshot = outcomes.snapshot();
    assert.deepEqual(Object.keys(snapshot.strata).sort(), ['one', 'two']);
    assert.equal(snapshot.strata['one']?.candidate['purchaseRate']?.n, 1);
    assert.equal(snapshot.stats.control['purchaseRate']?.n, 2);
  });

  it("sum the baseline arm's served outcomes apart, with corrections, when it has a share", () => {
    const outcomes = new ExperimentOutcomes(versions, { since: 0, baselineShare: 0.05 }, CLOSED);
    const baseline = { modelVersion: 'baseline', arm: 'baseline', propensity: 0.05, score: 0.2 };
    outcomes.take(example({ predictionId: 'a', ...baseline }));
    outcomes.take(example({ predictionId: 'a', ...baseline, label: 1, labelSource: 'outcome', revision: 1 }));
    outcomes.take(example({ predictionId: 'b', ...baseline }));
    // A champion that failed to load falls back to the baseline at the champion's propensity.
    outcomes.take(example({ predictionId: 'c', ...baseline, propensity: 0.85 }));
    const stats = outcomes.snapshot().baseline?.['purchaseRate'];
    assert.equal(stats?.n, 2);
    assert.equal(stats?.mean, 0.5);
    assert.equal(outcomes.snapshot().stats.control['purchaseRate']?.n, 0);
    const restored = new ExperimentOutcomes(versions, { since: 0, baselineShare: 0.05 }, outcomes.snapshot());
    assert.equal(restored.snapshot().baseline?.['purchaseRate']?.n, 2);
  });

  it("count a shadow's predictions only as a shadow experiment's candidate", () => {
    const shadowOf = { modelVersion: versions.candidate, arm: 'shadow', score: 0.3 };
    const split = new ExperimentOutcomes(versions, 0, CLOSED);
    assert.equal(split.take(example({ predictionId: 'a', ...shadowOf })), false, 'never served');
    const shadow = new ExperimentOutcomes({ ...versions, shadow: true }, 0, CLOSED);
    assert.equal(shadow.take(example({ predictionId: 'a', ...shadowOf })), true);
    assert.equal(shadow.take(example({ predictionId: 'a' })), true, "the same click's served control");
    const served = { modelVersion: versions.candidate, arm: 'challenger' };
    assert.equal(shadow.take(example({ predictionId: 'b', ...served })), false);
    assert.equal(
      shadow.take(example({ predictionId: 'c', modelVersion: versions.control, arm: 'shadow' })),
      false,
    );
    const { stats } = shadow.snapshot();
    assert.deepEqual([stats.control['logLoss']?.n, stats.candidate['logLoss']?.n], [1, 1]);
  });

  it('count an outcome only once a timeout shows its window closed; the waiting ones survive a restart', () => {
    const outcomes = new ExperimentOutcomes(versions, { since: 0, bucketMs: 1000 });
    const bought = (id: string, clickTime: number) =>
      example({ predictionId: id, clickTime, label: 1, labelSource: 'outcome' });
    // Purchases come at once; their clicks' windows are still open.
    outcomes.take(bought('a', 100));
    outcomes.take(bought('b', 1500));
    assert.equal(outcomes.stats.control.purchaseRate.n, 0, 'nothing counted yet');
    assert.equal(outcomes.waitingOutcomes, 2);
    // The window closes on a click of second 0 without a purchase: that second is complete.
    outcomes.take(example({ predictionId: 'c', clickTime: 999 }));
    assert.equal(outcomes.stats.control.purchaseRate.n, 2, 'a and c');
    assert.equal(outcomes.stats.control.purchaseRate.mean, 0.5);
    const restarted = new ExperimentOutcomes(versions, { since: 0, bucketMs: 1000 }, outcomes.snapshot());
    assert.equal(restarted.waitingOutcomes, 1, 'b still waits after a restart');
    restarted.take(example({ predictionId: 'd', clickTime: 2999 }));
    assert.equal(restarted.stats.control.purchaseRate.n, 4);
    // A correction after the close flips the outcome it counted.
    restarted.take({ ...bought('d', 2999), revision: 1 });
    assert.equal(restarted.stats.control.purchaseRate.n, 4);
    assert.equal(restarted.stats.control.purchaseRate.mean, 0.75, 'a, b and d bought; c did not');
  });

  it("keep each arm's reliability bins of served scores, a correction flipping only its outcome", () => {
    const outcomes = new ExperimentOutcomes(versions, 0, CLOSED);
    // The candidate scores 0.9 and buys one in two: off by 0.4; the control scores 0.15, buys 0.15 of the time.
    for (let i = 0; i < 20; i++) {
      const label = i % 2;
      outcomes.take(
        example({
          predictionId: `t${i}`,
          modelVersion: versions.candidate,
          score: 0.9,
          label,
          labelSource: label ? 'outcome' : 'timeout',
        }),
      );
    }
    for (let i = 0; i < 100; i++) {
      const label = i < 15 ? 1 : 0;
      outcomes.take(
        example({ predictionId: `c${i}`, score: 0.15, label, labelSource: label ? 'outcome' : 'timeout' }),
      );
    }
    const { calibration } = outcomes.snapshot();
    assert.ok(Math.abs((calibrationError(calibration!.candidate) ?? NaN) - 0.4) < 1e-9);
    assert.ok((calibrationError(calibration!.control) ?? NaN) < 1e-9);
    assert.equal(calibration!.candidate[9]?.n, 20, 'scores of 0.9 in the top bin');
    // A correction of a control label 0 → 1: one more outcome in its bin, no more predictions.
    outcomes.take(
      example({ predictionId: 'c99', score: 0.15, label: 1, labelSource: 'outcome', revision: 1 }),
    );
    const bin = outcomes.snapshot().calibration!.control[1]!;
    assert.deepEqual([bin.n, bin.label], [100, 16]);
    const restored = new ExperimentOutcomes(versions, 0, outcomes.snapshot());
    assert.deepEqual(restored.snapshot().calibration, outcomes.snapshot().calibration);
    assert.equal(calibrationError([]), null);
  });

  it("count a refreshed baseline's outcomes as the control's", () => {
    const outcomes = new ExperimentOutcomes(versions, 0, CLOSED);
    outcomes.take(example({ predictionId: 'a', modelVersion: 'v000003' }));
    assert.equal(outcomes.stats.control.purchaseRate.n, 0);
    outcomes.setControls([versions.control, 'v000003']);
    outcomes.take(example({ predictionId: 'b', modelVersion: 'v000003' }));
    outcomes.take(example({ predictionId: 'c' }));
    assert.equal(outcomes.stats.control.purchaseRate.n, 2);
  });

  it('count served outcome labels of the two versions, and nothing else', () => {
    assert.deepEqual(
      outcomeOf(example({ predictionId: 'a', label: 1, labelSource: 'outcome', score: 0.25 }), versions),
      {
        arm: 'control',
        values: { purchaseRate: 1, logLoss: -Math.log(0.25) },
      },
    );
    assert.equal(
      outcomeOf(example({ predictionId: 'b', modelVersion: versions.candidate }), versions)?.arm,
      'candidate',
    );
    for (const ignored of [
      example({ predictionId: 'h', labelSource: 'human' }),
      example({ predictionId: 'u', labelSource: 'upload' }),
      example({ predictionId: 's', arm: 'shadow', modelVersion: versions.candidate }),
      example({ predictionId: 'o', modelVersion: 'v000009' }),
      example({ predictionId: 'n', score: null }),
    ])
      assert.equal(outcomeOf(ignored, versions), null, ignored.predictionId);
  });

  it('hold the latest revision of each prediction: a correction replaces what it corrects', () => {
    const first = example({ predictionId: 'p', modelVersion: versions.candidate, label: 0, revision: 0 });
    const corrected = { ...first, label: 1, labelSource: 'outcome' as const, revision: 1 };
    const again = { ...first, label: 0, labelSource: 'timeout' as const, revision: 2 };
    const other = example({ predictionId: 'q', modelVersion: versions.candidate, label: 0, score: 0.3 });
    const outcomes = new ExperimentOutcomes(versions, 0, CLOSED);
    for (const e of [first, other, corrected]) outcomes.take(e);
    const { purchaseRate, logLoss } = outcomes.stats.candidate;
    assert.equal(purchaseRate.n, 2);
    assert.equal(purchaseRate.mean, 0.5);
    assert.ok(Math.abs(logLoss.mean - (-Math.log(0.1) - Math.log(0.7)) / 2) < 1e-12);
    assert.equal(outcomes.stats.control.purchaseRate.n, 0);
    // A second correction takes the label back: as if only the first and the other were read.
    outcomes.take(again);
    const direct = new ExperimentOutcomes(versions, 0, CLOSED);
    for (const e of [first, other]) direct.take(e);
    assert.equal(outcomes.stats.candidate.purchaseRate.mean, 0);
    assert.ok(Math.abs(outcomes.stats.candidate.logLoss.mean - direct.stats.candidate.logLoss.mean) < 1e-12);
    assert.ok(Math.abs(outcomes.stats.candidate.logLoss.m2 - direct.stats.candidate.logLoss.m2) < 1e-9);
  });

  it('leave out clicks before the experiment began, and go on from a stored summary', () => {
    const outcomes = new ExperimentOutcomes(versions, 1000, CLOSED);
    assert.equal(outcomes.take(example({ predictionId: 'early', clickTime: 999 })), false);
    assert.equal(outcomes.take(example({ predictionId: 'late', clickTime: 1000, label: 1 })), true);
    const resumed = new ExperimentOutcomes(versions, 1000, outcomes.snapshot());
    resumed.take(example({ predictionId: 'later', clickTime: 2000 }));
    assert.equal(resumed.stats.control.purchaseRate.n, 2);
    assert.equal(resumed.stats.control.purchaseRate.mean, 0.5);
    assert.equal(outcomes.stats.control.purchaseRate.n, 1, 'the stored summary is a copy');
  });

  it('remove an outcome exactly: unobserve undoes observe', () => {
    const random = new Random(8);
    const xs = Array.from({ length: 200 }, () => random.normal(0.3, 0.2));
    let s = xs.reduce(observe, EMPTY_ARM);
    for (const x of xs.slice(150)) s = unobserve(s, x);
    const kept = xs.slice(0, 150).reduce(observe, EMPTY_ARM);
    assert.equal(s.n, 150);
    assert.ok(Math.abs(s.mean - kept.mean) < 1e-12);
    assert.ok(Math.abs(variance(s) - variance(kept)) < 1e-9);
    assert.deepEqual(unobserve(observe(EMPTY_ARM, 3), 3), EMPTY_ARM);
  });
});
