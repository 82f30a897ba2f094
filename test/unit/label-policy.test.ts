// Human and outcome labels of one prediction merged by the configured policy.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadTrainerConfig } from '../../services/trainer/config.js';
import { isJudgeOnly } from '../../services/trainer/judge-only.js';
import { OnlineLearner, heldExample } from '../../services/trainer/online.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import type { HumanLabel, LabeledExample } from '../../services/common/contracts.js';
import {
  DEFAULT_LABEL_POLICY,
  LabelMerger,
  type ConflictPolicy,
} from '../../services/trainer/label-policy.js';

const T = Date.UTC(2026, 5, 1);
function outcome(predictionId: string, label: number): LabeledExample {
  return {
    exampleId: `outcome:${predictionId}`,
    predictionId,
    eventId: `e-${predictionId}`,
    userId: 'u',
    itemId: 'i',
    category: 'c',
    segment: 's',
    label,
    labelSource: label ? 'outcome' : 'timeout',
    weight: 1,
    features: { indices: [1, 2], values: [1, 1] },
    featureSpecHash: 'spec',
    modelVersion: 'v000001',
    arm: 'champion',
    score: 0.4,
    clickTime: T,
    purchaseEventId: label ? 'q' : null,
    purchaseTime: label ? T + 1000 : null,
    labelTime: T + 1000,
    delayMs: label ? 1000 : null,
    revision: 0,
    propensity: 1,
    split: null,
  };
}
function human(predictionId: string, label: number, labelerId = 'ann', at = T + 500): HumanLabel {
  return {
    labelId: `${predictionId}-${labelerId}`,
    taskId: predictionId,
    predictionId,
    eventId: `e-${predictionId}`,
    userId: 'u',
    itemId: 'i',
    label,
    labelerId,
    labelTime: at,
    agreement: null,
    note: null,
    flags: [],
  };
}
const merger = (conflict: ConflictPolicy) => new LabelMerger({ ...DEFAULT_LABEL_POLICY, conflict });
/** `count` labels of `labeler`, all right, judged against outcomes of another segment. */
function measure(m: LabelMerger, labeler: string, count: number): void {
  for (let i = 0; i < count; i++) {
    const id = `gold-${labeler}-${i}`;
    const label = i % 4 === 0 ? 1 : 0;
    m.addHumanLabel(human(id, label, labeler));
    m.addExample({ ...outcome(id, label), segment: 'gold' });
  }
}
const summary = (examples: LabeledExample[]) => examples.map((e) => [e.labelSource, e.label, e.weight]);

describe('label policy', () => {
  it('trains outcome examples at once when nobody reviewed the prediction', () => {
    const m = merger('replace');
    assert.deepEqual(summary(m.addExample(outcome('p1', 0))), [['timeout', 0, 1]]);
    assert.equal(m.counters.outcomeExamples, 1);
  });

  it('human wins: the reviewed label replaces the outcome, weighted, with the features of the prediction', () => {
    const m = merger('replace');
    assert.deepEqual(m.addHumanLabel(human('p1', 1)), [], 'waits for the outcome example');
    const [example] = m.addExample(outcome('p1', 0));
    assert.deepEqual(summary([example!]), [['human', 1, DEFAULT_LABEL_POLICY.humanWeight]]);
    assert.deepEqual(example!.features, outcome('p1', 0).features);
    assert.equal(m.counters.disagreements, 1);
  });

  it('outcome wins: the human label only counts as agreement or not', () => {
    const m = merger('outcome');
    m.addHumanLabel(human('p1', 1));
    assert.deepEqual(summary(m.addExample(outcome('p1', 1))), [['outcome', 1, 1]]);
    assert.equal(m.counters.agreements, 1);
    assert.deepEqual(m.addHumanLabel(human('p1', 0, 'bob')), [], 'a late human label adds nothing');
  });

  it('outcome (the default): a censored timeout is no evidence; trusted labels replace it, as a soft label', () => {
    assert.equal(DEFAULT_LABEL_POLICY.conflict, 'outcome');
    const m = new LabelMerger({ ...DEFAULT_LABEL_POLICY, censoredSegments: ['s'] });
    // Before ann is measured, her labels are not trusted: the censored timeout makes nothing.
    m.addHumanLabel(human('p0', 1));
    assert.deepEqual(m.addExample(outcome('p0', 0)), []);
    assert.equal(m.counters.untrustedHumanLabels, 1);
    assert.deepEqual(m.addExample(outcome('p00', 0)), [], 'a censored timeout nobody reviewed');
    assert.equal(m.counters.censoredTimeouts, 1);
    measure(m, 'ann', 40);
    m.addHumanLabel(human('p1', 1));
    const soft = summary(m.addExample(outcome('p1', 0)));
    assert.deepEqual(
      soft.map(([source, label]) => [source, label]),
      [
        ['human', 1],
        ['human', 0],
      ],
    );
    const [positive, negative] = soft.map(([, , weight]) => weight as number);
    assert.ok(
      positive! > negative!,
      `a trusted "purchase" is more likely than not (${positive}, ${negative})`,
    );
    assert.ok(Math.abs(positive! + negative! - DEFAULT_LABEL_POLICY.humanWeight) < 1e-9);
    // A purchase seen in that segment still stands: only the timeout is censored.
    m.addHumanLabel(human('p2', 0));
    assert.deepEqual(summary(m.addExample(outcome('p2', 1))), [['outcome', 1, 1]]);
    // A human label after its censored timeout was dropped is trained on its own.
    m.addExample(outcome('p3', 0));
    assert.equal(m.addHumanLabel(human('p3', 1)).length, 2);
    // Outside the censored segments the timeout stands.
    const other = new LabelMerger({ ...DEFAULT_LABEL_POLICY, censoredSegments: ['elsewhere'] });
    other.addHumanLabel(human('p4', 1));
    assert.deepEqual(summary(other.addExample(outcome('p4', 0))), [['timeout', 0, 1]]);
  });

  it("is configured as `outcome` by default; `human`, the replacing policy's earlier name, still reads", () => {
    assert.equal(loadTrainerConfig({}).FW_TRAINER_HUMAN_POLICY, 'outcome');
    assert.equal(loadTrainerConfig({ FW_TRAINER_HUMAN_POLICY: 'human' }).FW_TRAINER_HUMAN_POLICY, 'replace');
    assert.deepEqual(
      loadTrainerConfig({ FW_TRAINER_CENSORED_SEGMENTS: ' US/app, DE/web ,' }).FW_TRAINER_CENSORED_SEGMENTS,
      ['US/app', 'DE/web'],
    );
  });

  it('measures each labeler against seen outcomes, never against a censored one', () => {
    const m = new LabelMerger({ ...DEFAULT_LABEL_POLICY, censoredSegments: ['elsewhere'] });
    for (const [id, label] of [
      ['a', 1],
      ['b', 0],
      ['c', 1],
    ] as const) {
      m.addHumanLabel(human(id, label, 'ann'));
      m.addHumanLabel(human(id, 1, 'bob'));
      m.addExample(outcome(id, label));
    }
    // A late label is judged too; one for a censored timeout is not.
    m.addHumanLabel(human('a', 0, 'cat'));
    m.addHumanLabel(human('x', 1, 'ann'));
    m.addExample({ ...outcome('x', 0), segment: 'elsewhere' });
    assert.deepEqual(
      m.reliability.reports().map((r) => [r.labeler, r.judged, r.agreed]),
      [
        ['ann', 3, 3],
        ['bob', 3, 2],
        ['cat', 1, 0],
      ],
    );
  });

  it('both: the outcome example and the trusted labels as their own example', () => {
    const m = merger('both');
    measure(m, 'ann', 40);
    m.addHumanLabel(human('p1', 1));
    assert.deepEqual(
      summary(m.addExample(outcome('p1', 0))).map(([source, label]) => [source, label]),
      [
        ['timeout', 0],
        ['human', 1],
        ['human', 0],
      ],
    );
  });

  it('a prediction most of its labelers flag (a bot, a broken page) is not trained on, its outcome neither', () => {
    for (const conflict of ['outcome', 'replace', 'both'] as const) {
      const m = merger(conflict);
      m.addHumanLabel({ ...human('p1', 1, 'ann'), flags: ['bot'] });
      m.addHumanLabel({ ...human('p1', 1, 'bob'), flags: ['bot', 'broken'] });
      m.addHumanLabel(human('p1', 0, 'cat'));
      assert.deepEqual(m.addExample(outcome('p1', 1)), [], conflict);
      // One flag of three is outvoted: the prediction is trained, by the policy.
      m.addHumanLabel({ ...human('p2', 1, 'ann'), flags: ['broken'] });
      m.addHumanLabel(human('p2', 1, 'bob'));
      m.addHumanLabel(human('p2', 1, 'cat'));
      assert.ok(m.addExample(outcome('p2', 1)).length > 0, conflict);
      // A flag after the outcome was trained makes no human example (it cannot undo training).
      m.addExample(outcome('p3', 0));
      assert.deepEqual(m.addHumanLabel({ ...human('p3', 1), flags: ['bot'] }), [], conflict);
      assert.equal(m.counters.flagged, 2, conflict);
    }
  });

  it('replace: the replaced outcome stays as a judge-only example for the gate, never learned', () => {
    const m = merger('replace');
    m.addHumanLabel(human('p1', 1));
    const [replaced, judge] = m.addExample(outcome('p1', 0));
    assert.equal(replaced!.labelSource, 'human');
    assert.ok(isJudgeOnly(judge!.exampleId));
    assert.deepEqual([judge!.label, judge!.labelSource], [0, 'timeout'], 'what the customer did');
    // Through the learner: held out, then dropped unlearned when pushed out.
    const learner = new OnlineLearner({
      dimension: 8,
      params: DEFAULT_FTRL,
      holdoutSize: 1,
      progressiveWindow: 10,
    });
    const held = (e: LabeledExample) => heldExample(e);
    assert.deepEqual(learner.add([held(judge!)]), []);
    assert.deepEqual(learner.add([held(outcome('p2', 1))]), [], 'the judge-only example left unlearned');
    assert.equal(learner.learned, 0);
    assert.deepEqual(
      learner.holdout.map((e) => e.exampleId),
      ['outcome:p2'],
    );
  });

  it('replace: trains every reviewed label, and names those of untrusted labelers only', () => {
    const m = merger('replace');
    m.addHumanLabel(human('p1', 1));
    const [early] = m.addExample(outcome('p1', 0));
    assert.ok(m.untrusted.has(early!.exampleId), 'ann is not measured yet');
    measure(m, 'ann', 40);
    m.addHumanLabel(human('p2', 1));
    const [later] = m.addExample(outcome('p2', 0));
    assert.equal(later!.labelSource, 'human');
    assert.equal(m.untrusted.size, 0, 'ann is trusted now');
  });

  it('takes the majority of several labelers (a tie goes to the newest)', () => {
    const m = merger('replace');
    m.addHumanLabel(human('p1', 1, 'a', T + 1));
    m.addHumanLabel(human('p1', 0, 'b', T + 2));
    m.addHumanLabel(human('p1', 0, 'c', T + 3));
    assert.equal(m.addExample(outcome('p1', 1))[0]!.label, 0);
    m.addHumanLabel(human('p2', 1, 'a', T + 5));
    m.addHumanLabel(human('p2', 0, 'b', T + 4));
    assert.equal(m.addExample(outcome('p2', 0))[0]!.label, 1);
  });

  it('a human label after its outcome was trained is added on its own, and counted late', () => {
    const m = merger('replace');
    m.addExample(outcome('p1', 0));
    assert.deepEqual(summary(m.addHumanLabel(human('p1', 1))), [
      ['human', 1, DEFAULT_LABEL_POLICY.humanWeight],
    ]);
    assert.equal(m.counters.lateHumanLabels, 1);
  });

  it('drops and counts human labels whose outcome never came within the hold time', () => {
    const m = merger('replace');
    m.addHumanLabel(human('lost', 1));
    m.expire(T + 500 + DEFAULT_LABEL_POLICY.holdMs);
    assert.equal(m.waitingCount, 1, 'not yet');
    m.expire(T + 501 + DEFAULT_LABEL_POLICY.holdMs);
    assert.equal(m.waitingCount, 0);
    assert.equal(m.counters.unmatchedHumanLabels, 1);
  });

  it('passes uploaded examples through untouched', () => {
    const m = merger('replace');
    const uploaded = { ...outcome('x', 1), labelSource: 'upload' as const, weight: 2 };
    assert.deepEqual(m.addExample(uploaded), [uploaded]);
  });

  it('remembers the newest outcomes for late human labels, and a restored merger goes on the same', () => {
    const policy = { ...DEFAULT_LABEL_POLICY, conflict: 'replace' as const, rememberOutcomes: 3 };
    const live = new LabelMerger(policy);
    for (const id of ['a', 'b', 'c', 'a', 'd']) live.addExample(outcome(id, 0));
    // 'a' came again, so it is newer than 'c': 'b' is the one forgotten.
    assert.deepEqual(
      live.rememberedOutcomes().map((e) => e.predictionId),
      ['c', 'a', 'd'],
    );
    const restored = new LabelMerger(policy, [], live.rememberedOutcomes());
    for (const m of [live, restored]) {
      m.addExample(outcome('e', 0));
      assert.deepEqual(
        m.rememberedOutcomes().map((e) => e.predictionId),
        ['a', 'd', 'e'],
      );
      assert.equal(m.addHumanLabel(human('c', 1)).length, 0, "'c' was forgotten: the label waits");
      assert.equal(m.addHumanLabel(human('a', 1)).length, 1, "'a' is remembered: a late human example");
    }
  });
});
