// A learned champion that does worse than a constant on the recent holdout, and a candidate that
// cannot beat the constant either: the baseline, judged by the same rules, takes its place.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initBackend } from '../../services/model/backend.js';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { FeatureSpec } from '../../services/model/features.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { createLogger } from '../../services/common/logger.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { proposeCandidate, publishServingBaseline } from '../../services/trainer/candidates.js';
import { DEFAULT_GATE } from '../../services/trainer/gate.js';
import { OnlineLearner } from '../../services/trainer/online.js';
import { heldExamples, registerTrained } from '../helpers/held-examples.js';

describe('a failing champion', () => {
  const spec = new FeatureSpec();
  let dir: string;
  before(async () => {
    await initBackend(undefined, 'wasm');
    dir = await mkdtemp(join(tmpdir(), 'flywheel-failing-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is replaced by the baseline when no learned candidate beats the constant', async () => {
    const held = heldExamples(spec, 12_000, 5);
    const registry = new FileModelRegistry(dir);
    const admin = new RegistryAdmin(registry, spec, null, createLogger('test', 'silent'));
    // The champion learned from flipped labels (a broken join): it ranks honest outcomes backwards.
    const champion = await registerTrained(registry, spec, held, { by: 'test', flipped: true });
    await admin.promote(champion, 'champion', { actor: 'test', reason: 'test' });
    // A learner that learns nothing (L1 far above any gradient): its candidate scores 0.5.
    const learner = new OnlineLearner({
      dimension: spec.dimension,
      params: { ...DEFAULT_FTRL, l1: 1e9 },
      holdoutSize: 2000,
      progressiveWindow: 1000,
    });
    const baseline = new HeuristicBaseline();
    for (const e of learner.add(held)) baseline.update(e, e.label, e.weight);
    const rate = held.filter((e) => e.label === 1).length / held.length;
    const result = await proposeCandidate({
      admin,
      spec,
      learner,
      baseline,
      reference: [],
      history: { acceptedLabelRate: rate },
      gate: DEFAULT_GATE,
      training: { source: 'upload', description: 'test', examples: learner.learned },
      promoteTo: 'challenger',
      challengerWeight: 0.1,
    });
    assert.equal(result.alias, null);
    assert.equal(result.decision.championFailing, true);
    assert.match(result.decision.reasons.join(' '), /does not beat a constant/);
    assert.ok(result.baselineReplacesChampion, 'the baseline passes in its place');
    assert.deepEqual(result.baselineReplacesChampion.reasons, []);

    const replaced = await publishServingBaseline({
      admin,
      spec,
      baseline,
      holdout: learner.holdout,
      training: { source: 'upload', description: 'test', examples: held.length },
      replacing: 'the champion is failing',
    });
    assert.ok(replaced);
    const routing = await registry.routing();
    assert.equal(routing.champion, replaced);
    assert.equal((await registry.get(replaced)).kind, 'baseline');
    // Without the reason, a learned champion is never replaced by the baseline.
    await admin.promote(champion, 'champion', { actor: 'test', reason: 'back' });
    const refused = await publishServingBaseline({
      admin,
      spec,
      baseline,
      holdout: learner.holdout,
      training: { source: 'upload', description: 'test', examples: held.length },
    });
    assert.equal(refused, null);
  });
});
