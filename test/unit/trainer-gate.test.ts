// The promotion gate: significance against the champion, the baseline bar, the trusted
// reference set that catches poisoned feedback, and refusals of degenerate holdouts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import { DEFAULT_GATE, decidePromotion, normalCdf, pairedTest } from '../../services/trainer/gate.js';

/** A world where p(buy) = truth[i]; a model's score is the truth blurred by `noise`. */
function world(n: number, seed: number, labelRate = 0.2) {
  const random = new Random(seed);
  const truth = Array.from({ length: n }, () =>
    Math.min(0.95, Math.max(0.01, labelRate + (random.next() - 0.5) * 0.3)),
  );
  const labels = truth.map((p) => (random.next() < p ? 1 : 0));
  const model = (noise: number) =>
    truth.map((p) => Math.min(0.99, Math.max(0.01, p + (random.next() - 0.5) * noise)));
  const constant = truth.map(() => labelRate);
  return { labels, model, constant };
}

describe('promotion gate', () => {
  it('computes the normal CDF and a paired test that favours the better model', () => {
    assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7);
    assert.ok(Math.abs(normalCdf(1.96) - 0.975) < 1e-4);
    assert.ok(Math.abs(normalCdf(-1.645) - 0.05) < 1e-3);
    const w = world(4000, 1);
    const test = pairedTest(w.labels, w.model(0.05), w.model(0.6));
    assert.ok(test.meanDifference > 0 && test.pValue < 0.001, JSON.stringify(test));
  });

  it('weighs its examples: soft labels (a pair of weighted examples) judge as probabilities', () => {
    // 40 predictions whose labels say 0.8 purchase: each is label 1 weighted 0.8 and label 0 weighted 0.2.
    const labels = Array.from({ length: 80 }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const weights = labels.map((l, i) => (l === 1 ? 0.8 : 0.2) + (i % 4 === 0 ? 0.01 : 0));
    const right = labels.map(() => 0.8);
    const unsure = labels.map(() => 0.5);
    const weighted = pairedTest(labels, right, unsure, 1, weights);
    assert.ok(weighted.meanDifference > 0 && weighted.pValue < 0.01, JSON.stringify(weighted));
    // Unweighted, the pair reads 50:50 and the model that says 0.5 looks better.
    assert.ok(pairedTest(labels, right, unsure).meanDifference < 0);
    // Unit weights are the unweighted test.
    const w = world(500, 3);
    const ones = w.labels.map(() => 1);
    const [good, poor] = [w.model(0.05), w.model(0.6)];
    const [a, b] = [pairedTest(w.labels, good, poor, 1, ones), pairedTest(w.labels, good, poor)];
    assert.ok(
      Math.abs(a.z - b.z) < 1e-9 && Math.abs(a.meanDifference - b.meanDifference) < 1e-12,
      `${a.z} ${b.z}`,
    );
  });

  it('accepts a candidate clearly better than champion and baseline', () => {
    const w = world(5000, 2);
    const decision = decidePromotion(
      { labels: w.labels, candidate: w.model(0.05), champion: w.model(0.7), baseline: w.constant },
      null,
    );
    assert.deepEqual(decision.reasons, []);
    assert.ok(decision.accept);
    assert.ok(decision.versusChampion!.pValue < DEFAULT_GATE.alpha);
  });

  it('refuses a candidate no better than the champion, or not significantly so', () => {
    const w = world(5000, 3);
    const same = w.model(0.1);
    const tie = decidePromotion(
      { labels: w.labels, candidate: same, champion: same, baseline: w.constant },
      null,
    );
    assert.equal(tie.accept, false);
    assert.match(tie.reasons.join(' '), /improves the champion's holdout log loss by 0.00%/);
  });

  it('accepts an equally good candidate no more often than the significance level says', () => {
    // Candidate and champion with the same noise: any edge is chance. Over many holdouts the
    // test may be fooled about alpha of the time (without a margin), and less with one.
    const trials = 300;
    let fooledWithoutMargin = 0;
    let fooled = 0;
    for (let seed = 100; seed < 100 + trials; seed++) {
      const w = world(600, seed);
      const set = { labels: w.labels, candidate: w.model(0.3), champion: w.model(0.3), baseline: w.constant };
      if (
        decidePromotion(set, null, { ...DEFAULT_GATE, minImprovement: 0, minHoldout: 0 }).versusChampion!
          .pValue < DEFAULT_GATE.alpha
      )
        fooledWithoutMargin++;
      if (decidePromotion(set, null).accept) fooled++;
    }
    assert.ok(fooledWithoutMargin / trials < 2 * DEFAULT_GATE.alpha, `${fooledWithoutMargin} of ${trials}`);
    assert.ok(fooled <= fooledWithoutMargin, `${fooled} with the margin`);
  });

  it('refuses a first model that does not beat the baseline', () => {
    const w = world(3000, 5);
    const decision = decidePromotion(
      { labels: w.labels, candidate: w.constant.map((p) => p + 0.2), champion: null, baseline: w.constant },
      null,
    );
    assert.equal(decision.accept, false);
    assert.match(decision.reasons.join(' '), /does not beat the baseline/);
  });

  it('refuses degenerate holdouts: too small, or one label only', () => {
    const w = world(100, 6);
    const tiny = decidePromotion(
      { labels: w.labels, candidate: w.model(0), champion: null, baseline: w.constant },
      null,
    );
    assert.match(tiny.reasons.join(' '), /fewer than 500/);
    const ones = Array(2000).fill(1);
    const allOne = decidePromotion(
      { labels: ones, candidate: ones.map(() => 0.9), champion: null, baseline: ones.map(() => 0.5) },
      null,
    );
    assert.equal(allOne.accept, false);
    assert.match(allOne.reasons.join(' '), /0 negative examples/);
  });

  it('catches a label flip: a model trained on flipped feedback looks good on a flipped holdout but not on the trusted reference', () => {
    const recent = world(4000, 7);
    const flippedLabels = recent.labels.map((l) => 1 - l);
    const honest = recent.model(0.1);
    const flippedModel = honest.map((p) => 1 - p); // what training on flipped labels converges to
    const reference = world(2000, 8);
    const honestOnReference = reference.model(0.1);
    const decision = decidePromotion(
      {
        labels: flippedLabels,
        candidate: flippedModel,
        champion: honest,
        baseline: recent.constant.map((p) => 1 - p),
      },
      {
        labels: reference.labels,
        candidate: honestOnReference.map((p) => 1 - p),
        champion: honestOnReference,
        baseline: reference.constant,
      },
      DEFAULT_GATE,
      { acceptedLabelRate: reference.labels.filter((l) => l === 1).length / reference.labels.length },
    );
    assert.equal(decision.accept, false);
    const why = decision.reasons.join(' ');
    assert.match(why, /recent label rate .* far from the .* last accepted holdout/);
    assert.match(why, /worse than the champion on the trusted reference set/);
    // On flipped labels the good champion does worse than a constant: failing, so the ranking
    // rule stands aside (it must not shield a bad champion); rules 5 and 7 refuse the flip.
    assert.equal(decision.championFailing, true);
    assert.doesNotMatch(why, /ranks the recent labels backwards/);
    // The same candidate, honest, passes the reference check.
    const fine = decidePromotion(
      {
        labels: recent.labels,
        candidate: recent.model(0.02),
        champion: recent.model(0.6),
        baseline: recent.constant,
      },
      {
        labels: reference.labels,
        candidate: honestOnReference,
        champion: honestOnReference,
        baseline: reference.constant,
      },
    );
    assert.deepEqual(fine.reasons, []);
  });

  it('judges the reference set by a test: a handful of reviewed clicks, or chance, refuses nothing', () => {
    const recent = world(4000, 9);
    const holdout = {
      labels: recent.labels,
      candidate: recent.model(0.02),
      champion: recent.model(0.6),
      baseline: recent.constant,
    };
    // One reviewed click that the candidate scores far worse: reported, not judged.
    const one = decidePromotion(holdout, {
      labels: [1],
      candidate: [0.05],
      champion: [0.9],
      baseline: [0.2],
    });
    assert.deepEqual(one.reasons, []);
    assert.equal(one.reference?.examples, 1);
    // Two equally good models on 200 reviewed clicks: one is a bit worse by chance, not refused.
    let refused = 0;
    for (let seed = 0; seed < 40; seed++) {
      const reference = world(200, 100 + seed);
      const decision = decidePromotion(holdout, {
        labels: reference.labels,
        candidate: reference.model(0.2),
        champion: reference.model(0.2),
        baseline: reference.constant,
      });
      if (decision.reasons.some((r) => r.includes('trusted reference'))) refused++;
    }
    assert.ok(refused <= 5, `${refused} of 40 equally good candidates refused on the reference`);
    // Clearly worse on 200 is refused; with no champion yet, the bar is the baseline.
    const reference = world(200, 99);
    const worse = decidePromotion(
      { ...holdout, champion: null },
      {
        labels: reference.labels,
        candidate: reference.model(1.6),
        champion: null,
        baseline: reference.constant,
      },
    );
    assert.match(worse.reasons.join(' '), /worse than the baseline on the trusted reference set of 200/);
  });

  it('rule 2: a candidate that beats a poor baseline but not a constant at the recent rate is refused', () => {
    const w = world(4000, 30);
    const rate = w.labels.filter((l) => l === 1).length / w.labels.length;
    const decision = decidePromotion(
      {
        labels: w.labels,
        candidate: w.labels.map(() => rate + 0.01), // knows nothing about the clicks
        champion: null,
        baseline: w.labels.map(() => rate + 0.15), // a baseline that learned a stale rate
      },
      null,
    );
    assert.equal(decision.accept, false);
    assert.match(decision.reasons.join(' '), /does not beat a constant at the holdout's rate/);
    assert.doesNotMatch(decision.reasons.join(' '), /does not beat the baseline/);
  });

  it('rule 4: a bad champion is replaced by an honest candidate, whatever the ranking rule says', () => {
    // The champion learned from labels a broken join wrote: it ranks honest outcomes backwards
    // and does worse than a constant on them. An honest candidate above the constant replaces it.
    const w = world(4000, 31);
    const honest = w.model(0.1);
    const bad = honest.map((p) => Math.min(0.99, Math.max(0.01, 0.4 - p)));
    const decision = decidePromotion(
      { labels: w.labels, candidate: honest, champion: bad, baseline: w.constant },
      null,
      { ...DEFAULT_GATE, minImprovement: 0.5 }, // no margin over a failing champion is asked
      { acceptedLabelRate: 0.12 },
    );
    assert.ok(decision.holdout.champion!.auc < DEFAULT_GATE.flippedAuc, 'the champion ranks backwards');
    assert.equal(decision.championFailing, true);
    assert.deepEqual(decision.reasons, []);
    // A failing champion is still no excuse for a candidate below the constant.
    const weak = decidePromotion(
      { labels: w.labels, candidate: w.constant.map((p) => p + 0.1), champion: bad, baseline: w.constant },
      null,
    );
    assert.equal(weak.accept, false);
    assert.match(weak.reasons.join(' '), /does not beat a constant/);
  });

  it('rule 5: a flipped holdout cannot promote a flipped candidate, with no trusted labels at all', () => {
    const w = world(4000, 32);
    const flippedLabels = w.labels.map((l) => 1 - l);
    const honest = w.model(0.1);
    const decision = decidePromotion(
      {
        labels: flippedLabels,
        candidate: honest.map((p) => 1 - p),
        champion: honest,
        baseline: w.constant.map((p) => 1 - p),
      },
      null,
      DEFAULT_GATE,
      { acceptedLabelRate: w.labels.filter((l) => l === 1).length / w.labels.length },
    );
    assert.equal(decision.accept, false);
    assert.deepEqual(decision.reasons.length, 1, decision.reasons.join('; '));
    assert.match(decision.reasons[0]!, /recent label rate .* far from/);
  });

  it('rule 6: with thin evidence the ranking rule still names a champion that ranks backwards', () => {
    const w = world(40, 33, 0.5);
    const honest = w.model(0.05);
    const backwards = honest.map((p) => 0.5 + (0.5 - p) * 0.2); // close to a constant, reversed
    const decision = decidePromotion(
      { labels: w.labels, candidate: honest, champion: backwards, baseline: w.constant },
      null,
      { ...DEFAULT_GATE, minHoldout: 0, minPerLabel: 0 },
    );
    assert.ok(decision.holdout.champion!.auc < DEFAULT_GATE.flippedAuc);
    assert.equal(decision.championFailing, false, 'not significantly worse than the constant on 40');
    assert.match(decision.reasons.join(' '), /champion ranks the recent labels backwards/);
  });

  it('rule 7: a flip that keeps the label rate is refused by the trusted labels', () => {
    // Rate 0.5: a flip keeps the rate, so rule 5 cannot see it; the reviewed labels can.
    const recent = world(4000, 34, 0.5);
    const honest = recent.model(0.05);
    const reference = world(500, 35, 0.5);
    const honestOnReference = reference.model(0.05);
    const decision = decidePromotion(
      {
        labels: recent.labels.map((l) => 1 - l),
        candidate: honest.map((p) => 1 - p),
        champion: honest,
        baseline: recent.constant,
      },
      {
        labels: reference.labels,
        candidate: honestOnReference.map((p) => 1 - p),
        champion: honestOnReference,
        baseline: reference.constant,
      },
      DEFAULT_GATE,
      { acceptedLabelRate: 0.5 },
    );
    assert.equal(decision.accept, false);
    assert.doesNotMatch(decision.reasons.join(' '), /recent label rate/);
    assert.match(decision.reasons.join(' '), /worse than the champion on the trusted reference set of 500/);
  });

  it('refuses misaligned score arrays loudly', () => {
    assert.throws(
      () => decidePromotion({ labels: [1, 0], candidate: [0.5], champion: null, baseline: [0.5, 0.5] }, null),
      /candidate has 1 scores for 2 labels/,
    );
  });
});
