// Traffic routing by a stable user hash: the same arm in every process and after a restart; a
// canary ramp only adds users to the candidate; the shadow is never a served arm.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Routing } from '../../services/common/contracts.js';
import { servedArm, userBucket } from '../../services/scorer/routing.js';

const ROOT = join(import.meta.dirname, '..', '..');
const users = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);
const routing = (challengerWeight: number): Routing => ({
  champion: 'v000001',
  challenger: 'v000002',
  challengerWeight,
  shadow: 'v000003',
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
      { arm: 'baseline', version: null, propensity: 1 },
    );
  });

  it("gives each prediction its arm's propensity: the challenger's share, or the rest", () => {
    const arms = users.slice(0, 2000).map((u) => servedArm(u, routing(0.3), loaded));
    for (const a of arms) assert.equal(a.propensity, a.arm === 'challenger' ? 0.3 : 0.7);
    assert.equal(servedArm('user-1', routing(0), loaded).propensity, 1, 'no split: chosen for sure');
  });
});
