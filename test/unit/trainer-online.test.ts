// The trainer's online learner and its checkpoints: the holdout is the newest examples and
// never learned from; a learner restored from a checkpoint continues bit for bit as one that
// never stopped; torn or edited checkpoints are refused.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { FeatureSpec } from '../../services/model/features.js';
import { CheckpointCorruptError } from '../../services/common/errors.js';
import {
  CheckpointStore,
  decodeCheckpoint,
  encodeCheckpoint,
  encodeCheckpointAs,
  encodeCheckpointV1,
} from '../../services/trainer/checkpoint.js';
import { OnlineLearner, type HeldExample } from '../../services/trainer/online.js';
import { heldExamples } from '../helpers/held-examples.js';

const spec = new FeatureSpec();
const options = {
  dimension: spec.dimension,
  params: DEFAULT_FTRL,
  holdoutSize: 200,
  progressiveWindow: 1000,
};

const examples = (count: number) => heldExamples(spec, count);

describe('online learner', () => {
  let dir: string;
  let data: HeldExample[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flywheel-ckpt-'));
    data = examples(3000);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('holds out the newest examples and learns each older one exactly once', () => {
    const learner = new OnlineLearner(options);
    assert.equal(learner.add(data.slice(0, 150)).length, 0, 'all still in the holdout');
    assert.deepEqual(
      learner.add(data.slice(150, 1000)).map((e) => e.exampleId),
      data.slice(0, 800).map((e) => e.exampleId),
      'the oldest, in order',
    );
    assert.equal(learner.learned, 800);
    assert.deepEqual(
      learner.holdout.map((e) => e.exampleId),
      data.slice(800, 1000).map((e) => e.exampleId),
    );
    assert.ok(
      learner.progressiveLogLoss > 0 && learner.progressiveLogLoss < 0.7,
      String(learner.progressiveLogLoss),
    );
  });

  it('learns: progressive log loss falls below the constant predictor', () => {
    const learner = new OnlineLearner(options);
    learner.add(data);
    const rate = data.reduce((s, e) => s + e.label, 0) / data.length;
    const constant = -(rate * Math.log(rate) + (1 - rate) * Math.log(1 - rate));
    assert.ok(learner.progressiveLogLoss < constant, `${learner.progressiveLogLoss} vs ${constant}`);
  });

  it('continues from a checkpoint exactly as if it never stopped', async () => {
    const store = new CheckpointStore(dir);
    assert.equal(await store.load(), null);
    const first = new OnlineLearner(options);
    first.add(data.slice(0, 1700));
    await store.save({
      seq: 1,
      writtenAt: 1,
      featureSpecHash: spec.hash,
      params: DEFAULT_FTRL,
      offsets: { 'fw.feedback.labeled:0': '1700' },
      state: first.state(),
    });
    const checkpoint = await store.load();
    assert.ok(checkpoint);
    assert.deepEqual(checkpoint.offsets, { 'fw.feedback.labeled:0': '1700' });
    const resumed = new OnlineLearner(options, checkpoint.state);
    resumed.add(data.slice(1700));
    const uninterrupted = new OnlineLearner(options);
    uninterrupted.add(data);
    assert.equal(resumed.learned, uninterrupted.learned);
    assert.deepEqual(resumed.ftrl.z, uninterrupted.ftrl.z);
    assert.deepEqual(resumed.ftrl.n, uninterrupted.ftrl.n);
    assert.equal(resumed.progressiveLogLoss, uninterrupted.progressiveLogLoss);
  });

  it('reads checkpoints of the previous layout (no baseline)', () => {
    const learner = new OnlineLearner(options);
    learner.add(data.slice(0, 400));
    const old = decodeCheckpoint(
      encodeCheckpointV1({
        seq: 4,
        writtenAt: 4,
        featureSpecHash: spec.hash,
        params: DEFAULT_FTRL,
        offsets: { 'fw.feedback.labeled:1': '400' },
        state: learner.state(),
        waitingHumanLabels: [],
      }),
    );
    assert.equal(old.baseline, undefined);
    assert.equal(old.state.learned, 200);
    assert.deepEqual(old.state.z, learner.state().z);
    assert.deepEqual(old.offsets, { 'fw.feedback.labeled:1': '400' });
  });

  it('reads every older layout: the fields it lacks take their defaults, the rest survive', () => {
    const learner = new OnlineLearner(options);
    learner.add(data.slice(0, 400));
    const current = {
      seq: 5,
      writtenAt: 5,
      featureSpecHash: spec.hash,
      params: DEFAULT_FTRL,
      offsets: { 'fw.feedback.labeled:1': '400' },
      state: learner.state(),
      newestEventTime: 7,
      newestLearnedTime: 6,
      warmStart: 'v000003',
      order: { keys: ['fw.feedback.labeled:1'], starts: ['0'], runs: '0@400' },
      orderComplete: true,
    };
    // Version 3 came in three shapes: without newestLearnedTime and warmStart, without
    // warmStart, and whole.
    for (const [version, shape, learnedTime, warmStart] of [
      [2, 0, 0, null],
      [3, 0, 0, null],
      [3, 1, 6, null],
      [3, 2, 6, 'v000003'],
    ] as const) {
      const old = decodeCheckpoint(encodeCheckpointAs(version, current, shape));
      const what = `layout ${version}.${shape}`;
      assert.deepEqual(old.state.z, learner.state().z, what);
      assert.equal(old.order?.runs, version >= 3 ? '0@400' : '', what);
      assert.equal(old.newestLearnedTime, learnedTime, what);
      assert.equal(old.warmStart, warmStart, what);
    }
    assert.equal(decodeCheckpoint(encodeCheckpoint(current)).warmStart, 'v000003');
  });

  it('keeps the user and category of held examples from layout 7 on; layout 6 reads them as empty', () => {
    const learner = new OnlineLearner(options);
    learner.add(data.slice(0, 400));
    const checkpoint = {
      seq: 6,
      writtenAt: 6,
      featureSpecHash: spec.hash,
      params: DEFAULT_FTRL,
      offsets: {},
      state: learner.state(),
      reference: data.slice(0, 3),
    };
    const held = learner.state().holdout;
    assert.ok(held.length > 0 && held.every((e) => e.userId && e.category));
    const now = decodeCheckpoint(encodeCheckpoint(checkpoint));
    assert.deepEqual(now.state.holdout, held);
    assert.deepEqual(now.reference, data.slice(0, 3));
    const old = decodeCheckpoint(encodeCheckpointAs(6, checkpoint));
    assert.deepEqual(
      old.state.holdout,
      held.map((e) => ({ ...e, userId: '', category: '' })),
    );
    assert.deepEqual(old.state.z, learner.state().z);
  });

  it('refuses a torn or edited checkpoint, naming why', async () => {
    const learner = new OnlineLearner(options);
    learner.add(data.slice(0, 300));
    const bytes = encodeCheckpoint({
      seq: 2,
      writtenAt: 2,
      featureSpecHash: spec.hash,
      params: DEFAULT_FTRL,
      offsets: {},
      state: learner.state(),
    });
    assert.equal(decodeCheckpoint(bytes).state.learned, 100);
    const store = new CheckpointStore(dir, 'torn.ckpt');
    await writeFile(store.path, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(store.load(), CheckpointCorruptError);
    const edited = Buffer.from(bytes);
    edited.writeUInt8(edited.readUInt8(edited.length - 5) ^ 0xff, edited.length - 5);
    await writeFile(store.path, edited);
    await assert.rejects(store.load(), /sha256 does not match/);
    await writeFile(store.path, 'hello');
    await assert.rejects(store.load(), /not a Flywheel trainer checkpoint/);
    assert.ok((await readFile(store.path)).length > 0);
  });
});
