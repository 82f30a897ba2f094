// The trainer's core without Kafka: records before the resume offsets are skipped, bad examples
// named for the dead-letter topic, the lineage is the offsets read, a registered candidate starts
// the next lineage, and the core says when a candidate, a checkpoint and the baseline are due.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureSpec } from '../../services/model/features.js';
import { simulatedFeedback } from '../../services/simulator/feedback.js';
import { TrainerCore, type CoreRecord, type TrainerCoreSettings } from '../../services/trainer/core.js';
import { DEFAULT_LABEL_POLICY } from '../../services/trainer/label-policy.js';

const spec = new FeatureSpec();
const topics = { feedback: 'fb', humanLabels: 'hl' };

function settings(overrides: Partial<TrainerCoreSettings> = {}): TrainerCoreSettings {
  return {
    spec,
    pipeline: { holdoutSize: 100, policy: DEFAULT_LABEL_POLICY, referenceSize: 0 },
    policy: DEFAULT_LABEL_POLICY,
    topics,
    candidates: { every: 300, intervalMs: 0 },
    checkpoints: { every: 1000, intervalMs: 60_000 },
    baselineFirst: 50,
    drift: null,
    minHoldout: 100,
    ...overrides,
  };
}

function records(count: number, partition = 0, from = 0): CoreRecord[] {
  return simulatedFeedback({ seed: 3, count: from + count, startTime: Date.UTC(2026, 5, 1) })
    .slice(from)
    .map((value, i) => ({ topic: 'fb', partition, offset: String(from + i), kind: 'labeledExample', value }));
}

describe('trainer core', () => {
  it('keeps the offsets and the read order of what it took, and skips what a checkpoint already holds', () => {
    const core = new TrainerCore(settings(), { checkpoint: null, warm: null }, 0);
    const batch = records(250);
    const taken = core.take(batch);
    assert.equal(taken.skipped, 0);
    assert.equal(taken.examples.length, 250);
    assert.equal(core.taken, 250);
    assert.equal(core.learned, 150, 'the newest 100 are held out');
    assert.deepEqual(core.offsets, { 'fb:0': '250' });
    assert.deepEqual(core.lineage('count').ranges, [{ topic: 'fb', partition: 0, from: '0', to: '250' }]);

    // A restart from its checkpoint reads the same records again: they are skipped.
    const resumed = new TrainerCore(settings(), { checkpoint: core.nextCheckpoint(1), warm: null }, 2);
    assert.equal(resumed.seq, 1);
    const again = resumed.take([...batch.slice(200), ...records(10, 0, 250)]);
    assert.equal(again.skipped, 50);
    assert.equal(resumed.taken, 260);
    assert.deepEqual(resumed.offsets, { 'fb:0': '260' });
  });

  it('names an example it cannot learn, for the dead-letter topic, and goes on', () => {
    const core = new TrainerCore(settings(), { checkpoint: null, warm: null }, 0);
    const batch = records(3);
    const foreign = { ...(batch[1]!.value as object), featureSpecHash: 'another-spec-0000' };
    const taken = core.take([batch[0]!, { ...batch[1]!, value: foreign }, batch[2]!]);
    assert.deepEqual(
      taken.rejected.map((r) => r.index),
      [1],
    );
    assert.match(taken.rejected[0]!.reason, /feature spec/);
    assert.equal(core.taken, 2);
    assert.deepEqual(core.offsets, { 'fb:0': '3' }, 'read past it all the same');
  });

  it('a candidate by count, its lineage, and the next lineage after it was registered', () => {
    const core = new TrainerCore(settings(), { checkpoint: null, warm: null }, 0);
    core.take(records(350));
    assert.equal(core.candidates.due(1), null, '250 learned of the 300');
    core.take(records(100, 1));
    const trigger = core.candidates.due(2);
    assert.equal(trigger, 'count');
    const inputs = core.candidate('count', 2);
    assert.ok(inputs);
    assert.equal(inputs.training.examples, 350);
    assert.equal(inputs.training.online?.base, null);
    assert.equal(inputs.training.online?.selection?.selected, inputs.selection.selected);
    assert.equal(inputs.snapshot.state.learned, 350);
    assert.equal(core.candidates.due(3), null, 'the count starts over');
    core.registered(inputs, 'v000007');
    core.take(records(20, 1, 100));
    const next = core.candidate('operator', 4);
    assert.ok(next);
    assert.equal(next.training.online?.base, 'v000007');
    // The runs hold only what was read after the cut.
    assert.equal(next.training.online?.runs, '1@120');
  });

  it('no candidate while the holdout is short of the gate minimum', () => {
    const core = new TrainerCore(settings({ minHoldout: 500 }), { checkpoint: null, warm: null }, 0);
    core.take(records(400));
    assert.equal(core.candidate('operator', 1), null);
  });

  it('the serving baseline is due after the first examples, then at each doubling', () => {
    const core = new TrainerCore(settings(), { checkpoint: null, warm: null }, 0);
    core.take(records(40));
    assert.equal(core.baselines.due(core.taken), false);
    core.take(records(20, 0, 40));
    assert.equal(core.baselines.due(core.taken), true);
    const inputs = core.baselineInputs();
    assert.equal(inputs.taken, 60);
    assert.equal(inputs.training.examples, 60);
    assert.equal(core.baselines.due(core.taken), false);
    core.take(records(60, 0, 60));
    assert.equal(core.baselines.due(core.taken), true, '120 = twice 60');
  });

  it('a checkpoint is due by count after a batch', () => {
    const core = new TrainerCore(
      settings({ checkpoints: { every: 100, intervalMs: 60_000 } }),
      { checkpoint: null, warm: null },
      0,
    );
    core.take(records(150));
    assert.equal(core.checkpoints.dueAfterBatch(1), false, '50 learned');
    core.take(records(60, 0, 150));
    assert.equal(core.checkpoints.dueAfterBatch(2), true);
    core.nextCheckpoint(2);
    assert.equal(core.checkpoints.dueAfterBatch(3), false);
  });
});
