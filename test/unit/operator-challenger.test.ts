// The trainer proposes, an operator's experiment stands: an accepted candidate does not take the
// challenger alias from a version an operator placed there; it does replace its own. Queued for
// experiments (the default), it takes no alias at all: its newer candidate replaces its older
// queued one, an operator's experiments stay.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../services/common/logger.js';
import { initBackend } from '../../services/model/backend.js';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { FeatureSpec } from '../../services/model/features.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ExperimentAdmin } from '../../services/registry/experiment-admin.js';
import { DEFAULT_RAMP, ExperimentStore } from '../../services/registry/experiments.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { proposeCandidate } from '../../services/trainer/candidates.js';
import { DEFAULT_GATE } from '../../services/trainer/gate.js';
import { OnlineLearner, type HeldExample } from '../../services/trainer/online.js';
import { heldExamples, registerTrained } from '../helpers/held-examples.js';

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
    const champion = await registerTrained(registry, spec, held.slice(0, 1500), { by: 'test' });
    await admin.promote(champion, 'champion', { actor: 'test', reason: 'weak champion' });
    const placed = await registerTrained(registry, spec, held.slice(0, 2000), { by: 'ops' });
    await admin.promote(placed, 'challenger', {
      actor: 'ops@cli',
      reason: 'an A/B test',
      challengerWeight: 0.2,
    });

    const propose = proposer(admin, held);
    const first = await propose();
    assert.deepEqual(first.decision.reasons, [], 'the gate accepts the candidate');
    assert.equal(first.decision.championFailing, false);
    assert.equal(first.alias, null);
    assert.match(first.held ?? '', new RegExp(`held by ${placed}, placed by ops@cli`));
    // The candidate carries the monitor's reference: its holdout's profile and calibration.
    const { reference, metrics } = await registry.get(first.version);
    assert.equal(reference?.profile.records, metrics?.examples);
    assert.equal(reference?.profile.featureSpecHash, spec.hash);
    // Held examples carry their category and user (checkpoint layout 7): the monitor tests the
    // category, and corrects its tests for users that click many times.
    assert.ok(Object.keys(reference?.profile.groups.category?.bins ?? {}).length > 10);
    assert.equal(reference?.profile.groups.category?.missing, 0);
    assert.ok(
      (reference?.profile.designEffect ?? 1) > 1.5,
      `design effect ${reference?.profile.designEffect}`,
    );
    assert.equal(reference?.profile.groups.score?.missing, 0);
    assert.equal(
      reference?.calibration.reduce((n, bin) => n + bin.n, 0),
      metrics?.examples,
    );
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

  it('queued for experiments, takes no alias; its newer candidate supersedes its older queued one', async () => {
    const held = heldExamples(spec, 16_000);
    const registry = new FileModelRegistry(join(dir, 'experiments'));
    const admin = new RegistryAdmin(registry, spec, null, createLogger('test', 'silent'));
    const champion = await registerTrained(registry, spec, held.slice(0, 1500), { by: 'test' });
    await admin.promote(champion, 'champion', { actor: 'test', reason: 'weak champion' });
    const placed = await registerTrained(registry, spec, held.slice(0, 2000), { by: 'ops' });
    const experiments = new ExperimentAdmin(new ExperimentStore(registry.root), admin);
    const operators = await experiments.start(placed, {
      actor: 'ops@cli',
      reason: 'an A/B test',
      config: DEFAULT_RAMP,
    });

    const propose = proposer(admin, held, 'experiment');
    const first = await propose();
    assert.deepEqual(first.decision.reasons, []);
    assert.equal(first.alias, null);
    assert.ok(first.experiment);
    const second = await propose();
    const all = await experiments.list();
    const states = Object.fromEntries(all.map((e) => [e.candidate, e.state]));
    assert.deepEqual(states, {
      [placed]: 'queued',
      [first.version]: 'superseded',
      [second.version]: 'queued',
    });
    assert.equal(all.find((e) => e.id === operators.id)?.createdBy, 'ops@cli');
    assert.match(all.find((e) => e.id === second.experiment)?.reason ?? '', /^gate: holdout log loss/);
    const routing = await registry.routing();
    assert.equal(routing.champion, champion);
    assert.equal(routing.challenger, null, 'no alias moved: the controller decides');
  });

  it('does not stop an accepted candidate from replacing a failing champion', async () => {
    const held = heldExamples(spec, 16_000, 11);
    const registry = new FileModelRegistry(join(dir, 'failing'));
    const admin = new RegistryAdmin(registry, spec, null, createLogger('test', 'silent'));
    // The champion learned flipped labels: worse than a constant on honest outcomes.
    const champion = await registerTrained(registry, spec, held, { by: 'test', flipped: true });
    await admin.promote(champion, 'champion', { actor: 'test', reason: 'flipped' });
    const challenger = await registerTrained(registry, spec, held.slice(0, 2000), { by: 'ops' });
    await admin.promote(challenger, 'challenger', {
      actor: 'ops@cli',
      reason: 'A/B',
      challengerWeight: 0.2,
    });
    const result = await proposer(admin, held)();
    assert.equal(result.decision.championFailing, true);
    assert.equal(result.alias, 'champion');
    const routing = await registry.routing();
    assert.equal(routing.champion, result.version);
    assert.equal(routing.challenger, challenger, "the operator's challenger stays");
  });
});

/** A trainer's candidate proposal from a learner that took `held` (its last 6,000 the holdout). */
function proposer(
  admin: RegistryAdmin,
  held: HeldExample[],
  promoteTo: 'challenger' | 'experiment' = 'challenger',
) {
  const learner = new OnlineLearner({
    dimension: admin.spec.dimension,
    params: DEFAULT_FTRL,
    holdoutSize: 6000,
    progressiveWindow: 1000,
  });
  const baseline = new HeuristicBaseline();
  for (const e of learner.add(held)) baseline.update(e, e.label, e.weight);
  return () =>
    proposeCandidate({
      admin,
      spec: admin.spec,
      learner,
      baseline,
      reference: [],
      history: {},
      gate: DEFAULT_GATE,
      training: { source: 'upload', description: 'test', examples: learner.learned },
      promoteTo,
      challengerWeight: 0.1,
    });
}
