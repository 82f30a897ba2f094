// Learners trained side by side with the trainer's FTRL: a neutral one is the FTRL bit for bit,
// each exports FTRL state that serves its own scores, forgetting and calibration do what they are
// for, the selection picks by recent progressive loss and survives a checkpoint.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_FTRL, FtrlProximal } from '../../services/model/ftrl.js';
import { FeatureSpec } from '../../services/model/features.js';
import { decodeCheckpoint, encodeCheckpoint, encodeCheckpointAs } from '../../services/trainer/checkpoint.js';
import { loadTrainerConfig } from '../../services/trainer/config.js';
import {
  DEFAULT_SIDE_LEARNERS,
  SideLearner,
  resolveLearners,
  type LearnerSpecInput,
} from '../../services/trainer/learners.js';
import { OnlineLearner, type HeldExample } from '../../services/trainer/online.js';
import { heldExamples } from '../helpers/held-examples.js';

const spec = new FeatureSpec();
const space = { hashBits: spec.hashBits, denseCount: spec.denseNames.length, biasSlot: spec.biasSlot };
const sideOf = (input: LearnerSpecInput) => resolveLearners([input], DEFAULT_FTRL)[0]!;

const examples = (count: number, seed = 9) => heldExamples(spec, count, seed);

const vector = (e: HeldExample) => ({ indices: e.indices, values: e.values });

/** Each example scored, then learned at once, by every learner (no holdout between). */
function learnInTurn(learners: SideLearner[], stream: readonly HeldExample[]): void {
  for (const e of stream)
    for (const learner of learners) {
      learner.scoreOnArrival(vector(e), e.label, e.weight);
      learner.learn(vector(e), e.label, e.weight);
    }
}

describe('side learners', () => {
  const data = examples(3000);

  it('a learner that changes nothing learns exactly as the FTRL', () => {
    const ftrl = new FtrlProximal(spec.dimension, DEFAULT_FTRL);
    const side = new SideLearner(sideOf({ name: 'same' }), space, 1000);
    for (const e of data)
      assert.equal(side.learn(vector(e), e.label, e.weight), ftrl.learn(vector(e), e.label, e.weight));
    assert.deepEqual(side.export(spec.dimension), { z: ftrl.z, n: ftrl.n });
  });

  for (const input of DEFAULT_SIDE_LEARNERS) {
    it(`${input.name}: the exported FTRL state scores as the learner does`, () => {
      const side = new SideLearner(sideOf(input), space, 1000);
      for (const e of data.slice(0, 2500)) side.learn(vector(e), e.label, e.weight);
      const exported = side.export(spec.dimension);
      const served = new FtrlProximal(spec.dimension, side.spec.params, exported);
      for (const e of data.slice(2500))
        assert.ok(Math.abs(served.predict(vector(e)) - side.predict(vector(e))) < 1e-9);
    });
  }

  it('forgetting follows a shift in the rate sooner than the FTRL', () => {
    // The same examples, labels drawn at 10% and then at 50%: the bias must move.
    let state = 7;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    const shifted = [...examples(3000), ...examples(3000, 11)].map((e, i) => ({
      ...e,
      label: random() < (i < 3000 ? 0.1 : 0.5) ? 1 : 0,
    }));
    const plain = new SideLearner(sideOf({ name: 'plain' }), space, 500);
    const forgetting = new SideLearner(sideOf({ name: 'forgetting', forgetting: 0.999 }), space, 500);
    learnInTurn([plain, forgetting], shifted.slice(0, 3500));
    assert.ok(
      forgetting.progressiveLogLoss() < plain.progressiveLogLoss() - 0.01,
      `${forgetting.progressiveLogLoss()} vs ${plain.progressiveLogLoss()}`,
    );
  });

  it('the calibration layer corrects a learner that regularization keeps near 0.5', () => {
    const heavy = { name: 'heavy', l2: 2000 } as const;
    const plain = new SideLearner(sideOf(heavy), space, 1000);
    const calibrated = new SideLearner(
      sideOf({ ...heavy, name: 'heavy-calibrated', calibrationRate: 0.02 }),
      space,
      1000,
    );
    learnInTurn([plain, calibrated], data);
    assert.ok(
      calibrated.progressiveLogLoss() < plain.progressiveLogLoss() - 0.02,
      `${calibrated.progressiveLogLoss()} vs ${plain.progressiveLogLoss()}`,
    );
  });

  it('the selection takes the lowest recent progressive loss, the FTRL on a tie, and is served', () => {
    const options = {
      dimension: spec.dimension,
      params: DEFAULT_FTRL,
      holdoutSize: 200,
      progressiveWindow: 1000,
      space,
      selectionWindow: 500,
    };
    const tied = new OnlineLearner({ ...options, side: resolveLearners([{ name: 'same' }], DEFAULT_FTRL) });
    tied.add(data);
    assert.equal(tied.selection().selected, 'default');
    assert.equal(tied.selection().progressiveLogLoss.same, tied.selection().progressiveLogLoss.default);
    // A learner made worse on purpose, and one made better (a larger step on this stream).
    const side = resolveLearners(
      [
        { name: 'worse', l2: 5000 },
        { name: 'fast', alpha: 0.3 },
      ],
      DEFAULT_FTRL,
    );
    const learner = new OnlineLearner({ ...options, side });
    learner.add(data);
    const selection = learner.selection();
    const losses = selection.progressiveLogLoss as Record<string, number>;
    assert.equal(selection.window, 500);
    const lowest = Object.entries(losses).sort((a, b) => a[1] - b[1])[0]![0];
    assert.equal(selection.selected, lowest);
    assert.ok(losses.worse! > losses.default!);
    const serving = learner.serving();
    assert.equal(serving.name, selection.selected);
    const chosen = learner.side.find((s) => s.spec.name === selection.selected);
    if (chosen)
      assert.deepEqual(serving, {
        name: chosen.spec.name,
        params: chosen.spec.params,
        ...chosen.export(spec.dimension),
      });
  });

  it('labels published in runs do not make a learner that chases them look better than it serves', () => {
    // Labels come ten at a time with one value (a session's clicks, a window closed at once). A
    // learner that follows the last few labels would predict each run from its first members if
    // it were scored just before learning; scored on arrival, behind the holdout, it cannot.
    let state = 5;
    const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
    let label = 0;
    const runs = data.map((e, i) => {
      if (i % 10 === 0) label = random() < 0.1 ? 1 : 0;
      return { ...e, label };
    });
    const learner = new OnlineLearner({
      dimension: spec.dimension,
      params: DEFAULT_FTRL,
      holdoutSize: 200,
      progressiveWindow: 1000,
      space,
      selectionWindow: 1000,
      side: resolveLearners([{ name: 'chaser', forgetting: 0.95, calibrationRate: 0.5 }], DEFAULT_FTRL),
    });
    learner.add(runs);
    const chaser = new SideLearner(learner.side[0]!.spec, space, 1000);
    learnInTurn([chaser], runs); // scored just before learning
    const losses = learner.selection().progressiveLogLoss as Record<string, number>;
    assert.ok(chaser.progressiveLogLoss() < losses.default! - 0.05, 'just before learning, it looks better');
    assert.ok(losses.chaser! > losses.default!, `on arrival it is not: ${JSON.stringify(losses)}`);
    assert.equal(learner.selection().selected, 'default');
  });

  it('the selection leaves out the holdout (the gate judges on it) and needs 200 examples', () => {
    const learner = new OnlineLearner({
      dimension: spec.dimension,
      params: DEFAULT_FTRL,
      holdoutSize: 200,
      progressiveWindow: 1000,
      space,
      selectionWindow: 2000,
      side: resolveLearners([{ name: 'fast', alpha: 0.3 }], DEFAULT_FTRL),
    });
    learner.add(data.slice(0, 350));
    assert.deepEqual(learner.selection(), {
      selected: 'default',
      window: 150,
      progressiveLogLoss: { default: null, fast: null },
    });
    learner.add(data.slice(350, 700));
    const selection = learner.selection();
    assert.equal(selection.window, 500, '700 arrived, 200 of them held out');
    assert.ok(Object.values(selection.progressiveLogLoss).every((loss) => loss !== null));
  });

  it('side learners continue bit for bit across a checkpoint, and an older checkpoint starts them at zero', () => {
    const side = resolveLearners(DEFAULT_SIDE_LEARNERS, DEFAULT_FTRL);
    const options = {
      dimension: spec.dimension,
      params: DEFAULT_FTRL,
      holdoutSize: 200,
      progressiveWindow: 1000,
      side,
      space,
      selectionWindow: 500,
    };
    const first = new OnlineLearner(options);
    first.add(data.slice(0, 1700));
    const checkpoint = {
      seq: 1,
      writtenAt: 1,
      featureSpecHash: spec.hash,
      params: DEFAULT_FTRL,
      offsets: {},
      state: first.state(),
    };
    const resumed = new OnlineLearner(options, decodeCheckpoint(encodeCheckpoint(checkpoint)).state);
    resumed.add(data.slice(1700));
    const uninterrupted = new OnlineLearner(options);
    uninterrupted.add(data);
    assert.deepEqual(resumed.selection(), uninterrupted.selection());
    for (const name of side.map((s) => s.name))
      assert.deepEqual(resumed.serving(name), uninterrupted.serving(name));

    const old = new OnlineLearner(options, decodeCheckpoint(encodeCheckpointAs(4, checkpoint)).state);
    assert.deepEqual(old.ftrl.z, first.ftrl.z);
    assert.ok(old.side.every((s) => s.scored === 0));
    // With no loss of their own yet, nothing is compared: the FTRL serves.
    assert.equal(old.selection().selected, 'default');
  });

  it('FW_TRAINER_LEARNERS: the default four, a list of its own, or a clear error', () => {
    assert.deepEqual(
      loadTrainerConfig({}).FW_TRAINER_LEARNERS.map((l) => l.name),
      ['fast', 'forgetting', 'calibrated', 'coarse'],
    );
    assert.deepEqual(loadTrainerConfig({ FW_TRAINER_LEARNERS: '[]' }).FW_TRAINER_LEARNERS, []);
    assert.deepEqual(
      loadTrainerConfig({ FW_TRAINER_LEARNERS: '[{"name":"slow","alpha":0.01}]' }).FW_TRAINER_LEARNERS,
      [{ name: 'slow', alpha: 0.01 }],
    );
    assert.throws(() => loadTrainerConfig({ FW_TRAINER_LEARNERS: 'fast' }), /FW_TRAINER_LEARNERS.*not JSON/s);
    assert.throws(
      () => loadTrainerConfig({ FW_TRAINER_LEARNERS: '[{"name":"a"},{"name":"a"}]' }),
      /FW_TRAINER_LEARNERS.*unique/s,
    );
    assert.throws(
      () => loadTrainerConfig({ FW_TRAINER_LEARNERS: '[{"name":"x","forgetting":0.5}]' }),
      /FW_TRAINER_LEARNERS.*forgetting/s,
    );
    assert.throws(
      () => loadTrainerConfig({ FW_TRAINER_LEARNERS: '[{"name":"default"}]' }),
      /FW_TRAINER_LEARNERS/,
    );
  });
});
