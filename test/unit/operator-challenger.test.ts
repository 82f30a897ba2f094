// The trainer proposes, an operator's experiment stands: an accepted candidate does not take the
// challenger alias from a version an operator placed there; it does replace its own.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../services/common/logger.js';
import { toArtifacts } from '../../services/model/artifacts.js';
import { initBackend } from '../../services/model/backend.js';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { FeatureSpec } from '../../services/model/features.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { FtrlModel } from '../../services/model/models.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { proposeCandidate } from '../../services/trainer/candidates.js';
import { DEFAULT_GATE } from '../../services/trainer/gate.js';
import { OnlineLearner, trainingExample, type HeldExample } from '../../services/trainer/online.js';
import { heldExamples } from '../helpers/held-examples.js';

describe("an operator's challenger", () => {
  const spec = new FeatureSpec();
  let dir: string;
  before(async () => {
    await initBackend(undefined, 'wasm');
    dir = await mkdtemp(join(tmpdir(), 'flywheel-operator-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is not overwritten by an accepted trainer candidate; a trainer challenger is', async () => {
    const held = heldExamples(spec, 16_000);
    const registry = new FileModelRegistry(dir);
    const admin = new RegistryAdmin(registry, spec, null, createLogger('test', 'silent'));
    // A weak champion (1,500 examples: better than a constant, not failing) and an operator's challenger.
    const register = async (examples: HeldExample[], who: string) => {
      const model = new FtrlModel(spec.dimension, spec.maxNonZero, DEFAULT_FTRL);
      model.trainStep(examples.map(trainingExample));
      const version = await registry.register({
        artifacts: await toArtifacts(model, spec),
        parent: null,
        seed: 0,
        training: { source: 'upload', description: who, examples: examples.length },
        metrics: null,
        createdBy: who,
      });
      model.dispose();
      return version.version;
    };
    const champion = await register(held.slice(0, 1500), 'test');
    await admin.promote(champion, 'champion', { actor: 'test', reason: 'weak champion' });
    const placed = await register(held.slice(0, 2000), 'ops');
    await admin.promote(placed, 'challenger', {
      actor: 'ops@cli',
      reason: 'an A/B test',
      challengerWeight: 0.2,
    });

    const learner = new OnlineLearner({
      dimension: spec.dimension,
      params: DEFAULT_FTRL,
      holdoutSize: 6000,
      progressiveWindow: 1000,
    });
    const baseline = new HeuristicBaseline();
    for (const e of learner.add(held)) baseline.update(e, e.label, e.weight);
    const propose = () =>
      proposeCandidate({
        admin,
        spec,
        learner,
        baseline,
        reference: [],
        history: {},
        gate: DEFAULT_GATE,
        training: { source: 'upload', description: 'test', examples: learner.learned },
        promoteTo: 'challenger',
        challengerWeight: 0.1,
      });
    const first = await propose();
    assert.deepEqual(first.decision.reasons, [], 'the gate accepts the candidate');
    assert.equal(first.decision.championFailing, false);
    assert.equal(first.alias, null);
    assert.match(first.held ?? '', new RegExp(`held by ${placed}, placed by ops@cli`));
    const routing = await registry.routing();
    assert.equal(routing.challenger, placed);
    assert.equal(routing.challengerWeight, 0.2);

    // Once the trainer's own version holds the slot, the next candidate replaces it.
    await admin.promote(first.version, 'challenger', {
      actor: 'trainer',
      reason: 'its own',
      challengerWeight: 0.1,
    });
    const second = await propose();
    assert.equal(second.alias, 'challenger');
    assert.equal((await registry.routing()).challenger, second.version);
  });

  it('does not stop an accepted candidate from replacing a failing champion', async () => {
    const held = heldExamples(spec, 16_000, 11);
    const registry = new FileModelRegistry(join(dir, 'failing'));
    const admin = new RegistryAdmin(registry, spec, null, createLogger('test', 'silent'));
    // The champion learned flipped labels: worse than a constant on honest outcomes.
    const flipped = new FtrlModel(spec.dimension, spec.maxNonZero, DEFAULT_FTRL);
    flipped.trainStep(held.map((e) => ({ ...trainingExample(e), label: 1 - e.label })));
    const champion = await registry.register({
      artifacts: await toArtifacts(flipped, spec),
      parent: null,
      seed: 0,
      training: { source: 'upload', description: 'flipped', examples: held.length },
      metrics: null,
      createdBy: 'test',
    });
    flipped.dispose();
    await admin.promote(champion.version, 'champion', { actor: 'test', reason: 'flipped' });
    const placed = new FtrlModel(spec.dimension, spec.maxNonZero, DEFAULT_FTRL);
    placed.trainStep(held.slice(0, 2000).map(trainingExample));
    const challenger = await registry.register({
      artifacts: await toArtifacts(placed, spec),
      parent: null,
      seed: 0,
      training: { source: 'upload', description: 'ops', examples: 2000 },
      metrics: null,
      createdBy: 'ops',
    });
    placed.dispose();
    await admin.promote(challenger.version, 'challenger', {
      actor: 'ops@cli',
      reason: 'A/B',
      challengerWeight: 0.2,
    });
    const learner = new OnlineLearner({
      dimension: spec.dimension,
      params: DEFAULT_FTRL,
      holdoutSize: 6000,
      progressiveWindow: 1000,
    });
    const baseline = new HeuristicBaseline();
    for (const e of learner.add(held)) baseline.update(e, e.label, e.weight);
    const result = await proposeCandidate({
      admin,
      spec,
      learner,
      baseline,
      reference: [],
      history: {},
      gate: DEFAULT_GATE,
      training: { source: 'upload', description: 'test', examples: learner.learned },
      promoteTo: 'challenger',
      challengerWeight: 0.1,
    });
    assert.equal(result.decision.championFailing, true);
    assert.equal(result.alias, 'champion');
    const routing = await registry.routing();
    assert.equal(routing.champion, result.version);
    assert.equal(routing.challenger, challenger.version, "the operator's challenger stays");
  });
});
