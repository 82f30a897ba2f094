import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routingOf, type ModelUpdate } from '../../services/common/contracts.js';
import { createLogger } from '../../services/common/logger.js';
import { PairedModels, type ModelTarget } from '../../services/scorer/paired-models.js';

const update = (version: string): ModelUpdate => ({
  updateId: `u-${version}`,
  alias: 'champion',
  version,
  artifactUri: null,
  sha256: null,
  modelKind: 'logreg',
  featureSpecHash: null,
  routing: routingOf({ champion: version, challenger: null, challengerWeight: 0, shadow: null }),
  reason: 'test',
  actor: 'test',
  updateTime: 0,
});

/** A model set that serves the versions it loads, and fails to load those in `broken`. */
class FakeSet implements ModelTarget {
  serving: string | null = null;
  readonly restores: string[] = [];
  constructor(readonly broken = new Set<string>()) {}

  apply(next: ModelUpdate, options: { restoring?: boolean } = {}): Promise<boolean> {
    const version = next.version as string;
    if (this.broken.has(version)) return Promise.resolve(false);
    this.serving = version;
    if (options.restoring) this.restores.push(version);
    return Promise.resolve(true);
  }
}

const logger = createLogger('test', 'silent');

describe('paired model sets (predict API and scoring worker)', () => {
  it('an update both load is in force in both', async () => {
    const served = new FakeSet();
    const streamed = new FakeSet();
    const paired = new PairedModels(served, streamed, logger);
    assert.deepEqual(await paired.apply(update('v1')), { served: true, streamed: true });
    assert.deepEqual(await paired.apply(update('v2')), { served: true, streamed: true });
    assert.equal(served.serving, 'v2');
    assert.equal(streamed.serving, 'v2');
    assert.deepEqual([...served.restores, ...streamed.restores], []);
  });

  it('a version only the predict API loads is undone there: both serve the previous update', async () => {
    const served = new FakeSet();
    const streamed = new FakeSet(new Set(['v2']));
    const paired = new PairedModels(served, streamed, logger);
    await paired.apply(update('v1'));
    assert.deepEqual(await paired.apply(update('v2')), { served: true, streamed: false });
    assert.equal(served.serving, 'v1');
    assert.equal(streamed.serving, 'v1');
    assert.deepEqual(served.restores, ['v1']);
    // The next good update goes on from there.
    assert.deepEqual(await paired.apply(update('v3')), { served: true, streamed: true });
    assert.equal(served.serving, 'v3');
    assert.equal(streamed.serving, 'v3');
  });

  it('a version only the worker loads is undone there', async () => {
    const served = new FakeSet(new Set(['v2']));
    const streamed = new FakeSet();
    const paired = new PairedModels(served, streamed, logger);
    await paired.apply(update('v1'));
    assert.deepEqual(await paired.apply(update('v2')), { served: false, streamed: true });
    assert.equal(served.serving, 'v1');
    assert.equal(streamed.serving, 'v1');
    assert.deepEqual(streamed.restores, ['v1']);
  });

  it('goes back to the last update both took, past ones that failed in both', async () => {
    const served = new FakeSet(new Set(['v2']));
    const streamed = new FakeSet(new Set(['v2', 'v3']));
    const paired = new PairedModels(served, streamed, logger);
    await paired.apply(update('v1'));
    assert.deepEqual(await paired.apply(update('v2')), { served: false, streamed: false });
    assert.deepEqual(await paired.apply(update('v3')), { served: true, streamed: false });
    assert.equal(served.serving, 'v1');
    assert.equal(streamed.serving, 'v1');
  });

  it('with no earlier update both took, the set that loaded it keeps it (nothing to go back to)', async () => {
    const served = new FakeSet();
    const streamed = new FakeSet(new Set(['v1']));
    const paired = new PairedModels(served, streamed, logger);
    assert.deepEqual(await paired.apply(update('v1')), { served: true, streamed: false });
    assert.equal(served.serving, 'v1');
    assert.equal(streamed.serving, null);
  });
});
