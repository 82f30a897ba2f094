// Model quality on simulated shop data, and the mechanics each model kind must get right.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { initBackend, tf } from '../../services/model/backend.js';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { evaluate, type Evaluation } from '../../services/model/evaluation.js';
import { FeatureSpec } from '../../services/model/features.js';
import { FtrlProximal } from '../../services/model/ftrl.js';
import {
  FtrlModel,
  LogisticRegression,
  TfSparseModel,
  WideAndDeep,
  fit,
  type LearnedModel,
} from '../../services/model/models.js';
import { simulateLabeledExamples, type TimedExample } from '../../services/simulator/dataset.js';

const spec = new FeatureSpec();

describe('models on simulated shop data', () => {
  let train: TimedExample[];
  let holdout: TimedExample[];
  const judged = (scores: ArrayLike<number>): Evaluation =>
    evaluate(holdout.map((e, i) => ({ score: scores[i] as number, label: e.label })));
  let baseline: Evaluation;

  before(async () => {
    await initBackend(undefined, 'wasm');
    const data = simulateLabeledExamples({ seed: 404, clicks: 60_000, spec });
    // Time-based split: the holdout is the most recent stretch.
    train = data.slice(0, 48_000);
    holdout = data.slice(48_000);
    const heuristic = new HeuristicBaseline();
    for (const e of train) heuristic.update(e, e.label);
    baseline = judged(holdout.map((e) => heuristic.score(e)));
  });

  it('the baseline beats a constant predictor at the training positive rate', () => {
    const rate = train.filter((e) => e.label).length / train.length;
    const constant = judged(holdout.map(() => rate));
    assert.ok(
      baseline.logLoss < constant.logLoss,
      `baseline ${baseline.logLoss} < constant ${constant.logLoss}`,
    );
    assert.ok(baseline.auc > 0.55, `baseline AUC ${baseline.auc}`);
  });

  for (const make of [
    () => new LogisticRegression(spec.dimension, spec.maxNonZero),
    () => new WideAndDeep(spec.dimension, spec.maxNonZero),
    () => new FtrlModel(spec.dimension, spec.maxNonZero),
  ]) {
    it(`${make().kind} beats the baseline on log loss and AUC`, () => {
      const model: LearnedModel = make();
      try {
        fit(model, train, { epochs: 1, batchSize: 256, seed: 7 });
        const result = judged(model.predict(holdout));
        assert.ok(
          result.logLoss < baseline.logLoss - 0.005,
          `${model.kind} log loss ${result.logLoss} vs baseline ${baseline.logLoss}`,
        );
        assert.ok(
          result.auc > baseline.auc + 0.03,
          `${model.kind} AUC ${result.auc} vs baseline ${baseline.auc}`,
        );
        assert.ok(result.calibrationError < 0.05, `${model.kind} calibration ${result.calibrationError}`);
      } finally {
        model.dispose();
      }
    });
  }
});

describe('backends', () => {
  it('logistic regression trains to the same weights on cpu and wasm', async () => {
    await initBackend(undefined, 'wasm');
    const data = simulateLabeledExamples({ seed: 5, clicks: 3000, spec });
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = new LogisticRegression(spec.dimension, spec.maxNonZero);
      fit(model, data.slice(0, 2500), { epochs: 1, batchSize: 250, seed: 3 });
      const scores = Array.from(model.predict(data.slice(2500)));
      model.dispose();
      return scores;
    };
    const wasm = await run('wasm');
    const cpu = await run('cpu');
    await tf.setBackend('wasm');
    const maxDiff = Math.max(...wasm.map((s, i) => Math.abs(s - (cpu[i] as number))));
    assert.ok(maxDiff < 1e-4, `max score difference ${maxDiff}`);
    assert.ok(new Set(wasm.map((s) => s.toFixed(4))).size > 50, 'scores vary (the model learned something)');
  });
});

describe('serving linear models', () => {
  it('scores in plain JS what the tfjs graph scores, and follows every weight change', async () => {
    await initBackend(undefined, 'wasm');
    const data = simulateLabeledExamples({ seed: 6, clicks: 3000, spec });
    const vectors = data.slice(2500).map((e) => e.features);
    const model = new LogisticRegression(spec.dimension, spec.maxNonZero);
    const graph = () => Array.from(TfSparseModel.prototype.predictVectors.call(model, vectors));
    const served = () => Array.from(model.predictVectors(vectors));
    const maxDiff = (a: number[], b: number[]) =>
      Math.max(...a.map((s, i) => Math.abs(s - (b[i] as number))));
    try {
      const untrained = served();
      fit(model, data.slice(0, 2500), { epochs: 1, batchSize: 250, seed: 3 });
      assert.ok(maxDiff(served(), untrained) > 0.01, 'a training step changes the served scores');
      assert.ok(maxDiff(served(), graph()) < 1e-6, `after training: ${maxDiff(served(), graph())}`);
      const weights = new Float32Array(spec.dimension).map((_, i) => ((i % 7) - 3) / 10);
      model.setDense(weights, 0.5);
      assert.ok(maxDiff(served(), graph()) < 1e-6, `after setDense: ${maxDiff(served(), graph())}`);
      model.setWeights({ 'wide/w': tf.zeros([spec.dimension]), 'wide/b': tf.scalar(-1) });
      assert.ok(
        maxDiff(
          served(),
          vectors.map(() => 1 / (1 + Math.exp(1))),
        ) < 1e-6,
        'after setWeights',
      );
    } finally {
      model.dispose();
    }
  });
});

describe('FTRL-Proximal', () => {
  it('learns a separable pattern and keeps never-useful coordinates at exactly zero (L1)', () => {
    const ftrl = new FtrlProximal(16, { alpha: 0.5, beta: 1, l1: 1, l2: 0 });
    for (let i = 0; i < 2000; i++) {
      const positive = i % 2 === 0;
      ftrl.learn({ indices: [positive ? 1 : 2, 3], values: [1, 1] }, positive ? 1 : 0);
    }
    ftrl.learn({ indices: [9], values: [0.01] }, 1); // a rare, tiny signal
    assert.ok(ftrl.predict({ indices: [1, 3], values: [1, 1] }) > 0.9);
    assert.ok(ftrl.predict({ indices: [2, 3], values: [1, 1] }) < 0.1);
    assert.equal(ftrl.weight(9), 0);
    assert.equal(ftrl.weights()[0], 0);
  });

  it('restores exactly from its (z, n) state', () => {
    const a = new FtrlProximal(8);
    a.learn({ indices: [1, 4], values: [1, 0.5] }, 1);
    const b = new FtrlProximal(8, a.params, { z: Float64Array.from(a.z), n: Float64Array.from(a.n) });
    const x = { indices: [1, 4], values: [1, 0.5] };
    assert.equal(b.predict(x), a.predict(x));
  });
});

describe('heuristic baseline', () => {
  it('shrinks item rates towards the segment rate, and segment rates towards the global rate', () => {
    const b = new HeuristicBaseline(100, 10, 0.05);
    for (let i = 0; i < 1000; i++)
      b.update({ itemId: `i${i % 50}`, segment: 'DE/mobile' }, i % 10 === 0 ? 1 : 0);
    for (let i = 0; i < 20; i++) b.update({ itemId: 'hot', segment: 'DE/mobile' }, 1);
    const segmentOnly = b.score({ itemId: 'never-seen', segment: 'DE/mobile' });
    const unknownSegment = b.score({ itemId: 'never-seen', segment: 'JP/tablet' });
    const hot = b.score({ itemId: 'hot', segment: 'DE/mobile' });
    const globalRate = (120 + 0.05) / (1020 + 1); // the initial rate counts as one example
    const segmentRate = (120 + 100 * globalRate) / (1020 + 100);
    assert.ok(
      Math.abs(unknownSegment - globalRate) < 1e-12,
      `unknown segment gets the global rate, got ${unknownSegment}`,
    );
    assert.ok(
      Math.abs(segmentOnly - segmentRate) < 1e-12,
      `unknown item gets the segment rate, got ${segmentOnly}`,
    );
    assert.ok(
      Math.abs(hot - (20 + 10 * segmentRate) / (20 + 10)) < 1e-12,
      `20 of 20 shrunk by 10 pseudo-counts, got ${hot}`,
    );
  });

  it('round-trips through JSON', () => {
    const b = new HeuristicBaseline();
    b.update({ itemId: 'a', segment: 's' }, 1);
    b.update({ itemId: 'b', segment: 's' }, 0);
    const copy = HeuristicBaseline.fromJSON(
      JSON.parse(JSON.stringify(b.toJSON())) as ReturnType<HeuristicBaseline['toJSON']>,
    );
    assert.equal(copy.score({ itemId: 'a', segment: 's' }), b.score({ itemId: 'a', segment: 's' }));
    assert.equal(copy.observations, 2);
  });
});
