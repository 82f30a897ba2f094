// Labelers measured against outcomes: rates, trust, and labels combined as evidence.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LabelerReliability } from '../../services/trainer/labeler-reliability.js';

const T = Date.UTC(2026, 5, 1);
const DAY = 86_400_000;

/** Judges `labeler` on outcomes 1 then 0 alternately, saying the truth with the given pattern. */
function judgeMany(
  r: LabelerReliability,
  labeler: string,
  outcomes: number[],
  says: (o: number, i: number) => number,
) {
  outcomes.forEach((o, i) => r.judge(labeler, says(o, i), o, null, T));
}

describe('labeler reliability', () => {
  it('measures sensitivity and specificity as Beta(1, 1) posterior means, and trust as Youden J', () => {
    const r = new LabelerReliability({ minJudged: 5, windowDays: 30 });
    // 4 purchases (3 said 1), 6 without (5 said 0): sensitivity (3+1)/(4+2), specificity (5+1)/(6+2).
    for (const [said, outcome, times] of [
      [1, 1, 3],
      [0, 1, 1],
      [0, 0, 5],
      [1, 0, 1],
    ] as const)
      for (let i = 0; i < times; i++) r.judge('ann', said, outcome, null, T);
    const ann = r.report('ann');
    assert.equal(ann.judged, 10);
    assert.equal(ann.agreed, 8);
    assert.ok(Math.abs(ann.sensitivity - 4 / 6) < 1e-12);
    assert.ok(Math.abs(ann.specificity - 6 / 8) < 1e-12);
    assert.ok(Math.abs(ann.trust - (4 / 6 + 6 / 8 - 1)) < 1e-12);
    assert.equal(ann.untrusted, null);
    // Said 1: 3 purchases of 4, Laplace 4/6; said 0: 1 of 6, 2/8.
    const expected = -(3 * Math.log(4 / 6) + Math.log(2 / 6) + Math.log(2 / 8) + 5 * Math.log(6 / 8)) / 10;
    assert.ok(Math.abs(ann.labelerLogLoss - expected) < 1e-12);
  });

  it('ranks a good, a noisy and an adversarial labeler, and trusts the adversarial one not at all', () => {
    const r = new LabelerReliability({ minJudged: 20, windowDays: 30 });
    const outcomes = Array.from({ length: 200 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    judgeMany(r, 'good', outcomes, (o, i) => (i % 20 === 7 ? 1 - o : o)); // 95% right
    judgeMany(r, 'noisy', outcomes, (o, i) => (i % 4 === 1 ? 1 - o : o)); // 75% right
    judgeMany(r, 'adversarial', outcomes, (o, i) => (i % 4 === 1 ? o : 1 - o)); // 25% right
    const [adversarial, good, noisy] = r.reports();
    assert.ok(good!.trust > noisy!.trust && noisy!.trust > 0, `${good!.trust} > ${noisy!.trust} > 0`);
    assert.equal(adversarial!.trust, 0);
    assert.match(adversarial!.untrusted!, /wrong as often as right/);
  });

  it('trusts nobody before minJudged labels, nor one worse than the model on the same predictions', () => {
    const r = new LabelerReliability({ minJudged: 20, windowDays: 30 });
    for (let i = 0; i < 19; i++) r.judge('new', i % 2, i % 2, 0.5, T);
    assert.equal(r.report('new').trust, 0);
    assert.match(r.report('new').untrusted!, /19 of the 20/);
    r.judge('new', 1, 1, 0.5, T);
    assert.ok(r.report('new').trust > 0);
    // 70% right, beside a model that scores every purchase 0.9 and every other click 0.1.
    for (let i = 0; i < 100; i++) {
      const outcome = i % 2;
      r.judge('guess', i % 10 < 7 ? outcome : 1 - outcome, outcome, outcome ? 0.9 : 0.1, T);
    }
    const guess = r.report('guess');
    assert.equal(guess.trust, 0);
    assert.match(guess.untrusted!, /worse than the model/);
    assert.ok(Math.abs(guess.modelLogLoss! + Math.log(0.9)) < 1e-12);
  });

  it('forgets days past the window: a labeler who got worse loses trust', () => {
    const r = new LabelerReliability({ minJudged: 20, windowDays: 2 });
    for (let i = 0; i < 40; i++) r.judge('ann', i % 2, i % 2, null, T);
    assert.ok(r.report('ann').trust > 0.9);
    for (let i = 0; i < 40; i++) r.judge('ann', 1 - (i % 2), i % 2, null, T + 3 * DAY);
    assert.equal(r.report('ann').judged, 40, 'only the newest day is in the window');
    assert.deepEqual(r.report('ann').daily, [
      { day: Math.floor((T + 3 * DAY) / DAY), judged: 40, agreed: 0 },
    ]);
    assert.equal(r.report('ann').trust, 0);
  });

  it('combines labels as independent evidence, tempered by trust; untrusted labels count for nothing', () => {
    const r = new LabelerReliability({ minJudged: 2, windowDays: 30 });
    // ann: sensitivity 3/4, specificity 3/4 (2 right of each); trust 0.5.
    for (const [said, outcome] of [
      [1, 1],
      [1, 1],
      [0, 0],
      [0, 0],
    ] as const)
      r.judge('ann', said, outcome, null, T);
    const prior = 0.1;
    const logOdds = Math.log(prior / (1 - prior)) + 0.5 * Math.log(0.75 / 0.25);
    const p = r.combine([{ labelerId: 'ann', label: 1 }], prior)!;
    assert.ok(Math.abs(p - 1 / (1 + Math.exp(-logOdds))) < 1e-12);
    const no = r.combine([{ labelerId: 'ann', label: 0 }], prior)!;
    assert.ok(no < prior);
    assert.equal(r.combine([{ labelerId: 'stranger', label: 1 }], prior), null);
    assert.equal(
      r.combine(
        [
          { labelerId: 'stranger', label: 1 },
          { labelerId: 'ann', label: 1 },
        ],
        prior,
      ),
      p,
    );
    // Kept across a restart.
    const saved = JSON.parse(JSON.stringify(r.toJSON())) as ReturnType<LabelerReliability['toJSON']>;
    const restored = new LabelerReliability(r.settings, saved);
    assert.deepEqual(restored.reports(), r.reports());
  });
});
