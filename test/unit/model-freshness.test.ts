// Freshness as the scorer measures it: when a version starts serving, how old the newest outcome
// it learned from is (recorded in its Kafka lineage by the trainer).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLogger } from '../../services/common/logger.js';
import { toArtifacts } from '../../services/model/artifacts.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { DEFAULT_FTRL } from '../../services/model/ftrl.js';
import { FtrlModel } from '../../services/model/models.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { ModelManager } from '../../services/scorer/model-manager.js';
import { routingOf } from '../../services/common/contracts.js';

describe('model freshness', () => {
  it('reports the age of the newest outcome each version learned (and saw) as it goes live', async () => {
    const logger = createLogger('test', 'silent');
    await initBackend(logger);
    const dir = await mkdtemp(join(tmpdir(), 'flywheel-freshness-'));
    try {
      const spec = new FeatureSpec();
      const registry = new FileModelRegistry(dir);
      const model = new FtrlModel(spec.dimension, spec.maxNonZero, DEFAULT_FTRL);
      const newestLearnedTime = Date.now() - 42_000;
      const newestEventTime = Date.now() - 40_000;
      const version = await registry.register({
        artifacts: await toArtifacts(model, spec),
        parent: null,
        seed: 0,
        training: {
          source: 'kafka',
          ranges: [],
          examples: 10,
          labelSources: {},
          newestEventTime,
          newestLearnedTime,
        },
        metrics: null,
        createdBy: 'test',
      });
      model.dispose();
      const manager = new ModelManager(registry, spec, logger);
      const live = once(manager, 'live');
      await manager.apply({
        updateId: 'u1',
        alias: 'champion',
        version: version.version,
        artifactUri: null,
        sha256: version.sha256,
        modelKind: 'ftrl',
        featureSpecHash: spec.hash,
        routing: routingOf({
          champion: version.version,
          challenger: null,
          challengerWeight: 0,
          shadow: null,
        }),
        reason: 'test',
        actor: 'test',
        updateTime: Date.now(),
      });
      const [event] = (await live) as [
        { version: string; outcomeAgeMs: number; seenAgeMs: number; learnedTime: number },
      ];
      assert.equal(event.learnedTime, newestLearnedTime, 'the outcome time, for ages in event time');
      assert.equal(event.version, version.version);
      assert.ok(event.outcomeAgeMs >= 42_000 && event.outcomeAgeMs < 60_000, `${event.outcomeAgeMs} ms`);
      assert.ok(event.seenAgeMs >= 40_000 && event.seenAgeMs < event.outcomeAgeMs, `${event.seenAgeMs} ms`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
