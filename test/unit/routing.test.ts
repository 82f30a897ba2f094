// Traffic routing by a stable user hash: the same arm in every process and after a restart; a
// canary ramp only adds users to the candidate; the shadow is never a served arm.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { routingOf, type Routing } from '../../services/common/contracts.js';
import { segmentMatches, servedArm, splitId, userBucket } from '../../services/scorer/routing.js';

const ROOT = join(import.meta.dirname, '..', '..');
const users = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
const routing = (challengerWeight: number): Routing =>
  routingOf({ champion: 'v000001', challenger: 'v000002', challengerWeight, shadow: 'v000003' });
// Two challengers and the heuristic baseline, as ModelUpdate v2 routes them.
const split = (weights: [number, number], baselineWeight: number, segments: string[] = []): Routing =>
  routingOf({
    champion: 'v000001',
    challenger: 'v000002',
    challengerWeight: weights[0],
    challengers: [
      { version: 'v000002', weight: weights[0] },
      { version: 'v000004', weight: weights[1] },
    ],
    baselineWeight,
    segments,
  });
const loaded = () => true;

describe('routing', () => {
  it('gives a user the same bucket in another process (a restart, a second scorer)', () => {
    const sample = users.slice(0, 500);
    const script = `import { userBucket } from './services/scorer/routing.ts';
const ids = JSON.parse(process.argv[1]);
process.stdout.write(JSON.stringify(ids.map((id) => userBucket(id))));`;
    const other = JSON.parse(
      execFileSync(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(sample)],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      ),
    ) as number[];
    assert.deepEqual(
      other,
      sample.map((id) => userBucket(id)),
    );
  });

  it('ramps by adding users: every user on the candidate at one share is on it at a larger one', () => {
    const on = (weight: number) =>
      new Set(users.filter((u) => servedArm(u, routing(weight), loaded).arm === 'challenger'));
    let before = new Set<string>();
    for (const weight of [0.01, 0.05, 0.25, 0.5, 1]) {
      const now = on(weight);
      for (const u of before) assert.ok(now.has(u), `${u} left the candidate at ${weight}`);
      assert.ok(Math.abs(now.size / users.length - weight) < 0.01, `share at ${weight}: ${now.size}`);
      before = now;
    }
  });

  it('never serves the shadow, and falls back to the baseline arm with nothing loaded', () => {
    for (const u of users.slice(0, 2000)) assert.notEqual(servedArm(u, routing(0.3), loaded).arm, 'shadow');
    assert.deepEqual(
      servedArm('user-1', routing(0.3), () => false),
      { arm: 'baseline', version: null, propensity: 1, split: splitId(routing(0.3)) },
    );
  });

  it("gives each prediction its arm's propensity: the challenger's share, or the rest", () => {
    const arms = users.slice(0, 2000).map((u) => servedArm(u, routing(0.3), loaded));
    for (const a of arms) assert.equal(a.propensity, a.arm === 'challenger' ? 0.3 : 0.7);
    assert.equal(servedArm('user-1', routing(0), loaded).propensity, 1, 'no split: chosen for sure');
  });

  it('splits users between several challengers, the baseline and the champion by their shares', () => {
    const counts = new Map<string, number>();
    const r = split([0.1, 0.2], 0.05);
    for (const u of users) {
      const plan = servedArm(u, r, loaded, 'DE/mobile');
      const key = plan.version ?? 'baseline';
      counts.set(key, (counts.get(key) ?? 0) + 1);
      const expected = { v000002: 0.1, v000004: 0.2, baseline: 0.05, v000001: 0.65 }[key];
      assert.ok(
        Math.abs(plan.propensity - (expected as number)) < 1e-12,
        `${u} on ${key}: ${plan.propensity}`,
      );
    }
    const share = (key: string) => (counts.get(key) ?? 0) / users.length;
    assert.ok(Math.abs(share('v000002') - 0.1) < 0.01, `first: ${share('v000002')}`);
    assert.ok(Math.abs(share('v000004') - 0.2) < 0.01, `second: ${share('v000004')}`);
    assert.ok(Math.abs(share('baseline') - 0.05) < 0.01, `baseline: ${share('baseline')}`);
  });

  it("keeps the first challenger's users when a second one joins (the lowest buckets stay its own)", () => {
    const alone = routing(0.1);
    for (const u of users.slice(0, 5000)) {
      const before = servedArm(u, alone, loaded).version;
      const after = servedArm(u, split([0.1, 0.2], 0), loaded).version;
      if (before === 'v000002') assert.equal(after, 'v000002', u);
    }
  });

  it("gives an unloaded challenger's users to the champion, never to another challenger", () => {
    const r = split([0.2, 0.2], 0);
    for (const u of users.slice(0, 3000)) {
      const plan = servedArm(u, r, (v) => v !== 'v000004');
      assert.notEqual(plan.version, 'v000004');
      if (userBucket(u) >= 0.2) assert.equal(plan.version, 'v000001', u);
    }
  });

  it('applies the split only inside its segments: everyone else is on the champion for sure', () => {
    const r = split([0.3, 0.3], 0.1, ['DE/*', '*/tablet']);
    const arms = (segment: string) =>
      new Set(users.slice(0, 3000).map((u) => servedArm(u, r, loaded, segment).arm));
    assert.deepEqual([...arms('DE/mobile')].sort(), ['baseline', 'challenger', 'champion']);
    assert.deepEqual([...arms('FR/tablet')].sort(), ['baseline', 'challenger', 'champion']);
    const outside = servedArm('user-1', r, loaded, 'FR/desktop');
    assert.deepEqual(outside, {
      arm: 'champion',
      version: 'v000001',
      propensity: 1,
      split: `${splitId(r)}.out`,
    });
    assert.ok(segmentMatches('US/desktop', '*/*'));
    assert.ok(!segmentMatches('US/desktop', 'US'));
  });

  it('names a split by its arms and shares: the same in every process, new when a share moves', () => {
    assert.equal(splitId(split([0.1, 0.2], 0.05)), splitId(split([0.1, 0.2], 0.05)));
    assert.equal(
      splitId(routing(0.1)),
      splitId(routingOf({ ...routing(0.1), shadow: null })),
      'the shadow serves no one',
    );
    const ids = new Set(
      [
        split([0.1, 0.2], 0.05),
        split([0.1, 0.25], 0.05),
        split([0.1, 0.2], 0),
        split([0.1, 0.2], 0, ['DE/*']),
      ].map(splitId),
    );
    assert.equal(ids.size, 4);
    // A v1 routing (one challenger, no list) is the same split as its v2 form.
    assert.equal(
      splitId(routing(0.1)),
      splitId(routingOf({ ...routing(0.1), challengers: [{ version: 'v000002', weight: 0.1 }] })),
    );
  });
});
