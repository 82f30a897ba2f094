// Drift per group: none flagged between samples of one distribution (seeded repeats), the shifted
// group flagged and only it, a tiny shift on a huge sample not flagged (significant, too small to
// matter), new values and missing values reported.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import type { FeatureProfile, RawProfile } from '../../services/model/profile.js';
import { DEFAULT_DRIFT_POLICY, NEW, driftOf } from '../../services/monitor/drift.js';

type Shares = Record<string, Record<string, number>>;
const BASE: Shares = {
  category: { books: 0.4, toys: 0.3, garden: 0.2, music: 0.1 },
  score: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [String(i), i < 10 ? 0.08 : 0.02])),
};

function sample(random: Random, shares: Shares, n: number, missing = 0): RawProfile {
  const groups: RawProfile['groups'] = {};
  for (const [group, dist] of Object.entries(shares)) {
    const bins: Record<string, number> = {};
    let gone = 0;
    const entries = Object.entries(dist);
    for (let i = 0; i < n; i++) {
      if (random.next() < missing) {
        gone++;
        continue;
      }
      let u = random.next();
      const hit = entries.find(([, p]) => (u -= p) < 0) ?? entries.at(-1)!;
      bins[hit[0]] = (bins[hit[0]] ?? 0) + 1;
    }
    groups[group] = { bins, missing: gone };
  }
  return { records: n, groups };
}

const reference = (random: Random, n = 20_000): FeatureProfile => ({
  version: 1,
  featureSpecHash: 'h',
  ...sample(random, BASE, n),
});

describe('drift', () => {
  it('flags nothing between samples of one distribution, over seeded repeats', () => {
    let alarms = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const random = new Random(seed);
      alarms += driftOf(reference(random), sample(random, BASE, 2000), DEFAULT_DRIFT_POLICY).drifted.length;
    }
    assert.equal(alarms, 0);
  });

  it('flags the shifted group and only it', () => {
    const random = new Random(3);
    const shifted = { ...BASE, category: { books: 0.1, toys: 0.2, garden: 0.2, music: 0.5 } };
    const report = driftOf(reference(random), sample(random, shifted, 2000), DEFAULT_DRIFT_POLICY);
    assert.deepEqual(report.drifted, ['category']);
    const category = report.groups.find((g) => g.group === 'category')!;
    assert.ok(category.psi > 0.25 && category.distance > 0.1 && category.pValue < report.level);
    assert.equal(report.level, 0.1 / (2 * 1440), 'the budget shared by 2 groups and 1440 looks a day');
  });

  it('does not flag a shift too small to matter on a huge sample, though the test rejects', () => {
    const random = new Random(4);
    const nudged = { ...BASE, category: { books: 0.38, toys: 0.31, garden: 0.2, music: 0.11 } };
    const report = driftOf(
      reference(random, 1_000_000),
      sample(random, nudged, 200_000),
      DEFAULT_DRIFT_POLICY,
    );
    const category = report.groups.find((g) => g.group === 'category')!;
    assert.ok(category.pValue < report.level, `p ${category.pValue}`);
    assert.ok(category.distance < 0.1);
    assert.deepEqual(report.drifted, []);
  });

  it('reports values the reference never saw and missing values; too few records test nothing', () => {
    const random = new Random(5);
    const novel = { ...BASE, category: { books: 0.4, toys: 0.3, garden: 0.2, vinyl: 0.1 } };
    const report = driftOf(reference(random), sample(random, novel, 3000, 0.2), DEFAULT_DRIFT_POLICY);
    const category = report.groups.find((g) => g.group === 'category')!;
    assert.ok(Math.abs(category.newValueRate - 0.08) < 0.02, String(category.newValueRate));
    assert.ok(Math.abs(category.missingRate - 0.2) < 0.03);
    assert.equal(category.referenceMissingRate, 0);
    assert.ok(report.drifted.includes('category'));
    assert.ok(NEW.length > 0);
    const few = driftOf(reference(random), sample(random, novel, 100, 0.5), DEFAULT_DRIFT_POLICY);
    assert.deepEqual(few.drifted, []);
    const empty = driftOf(reference(random), { records: 0, groups: {} }, DEFAULT_DRIFT_POLICY);
    assert.ok(empty.groups.every((g) => g.records === 0 && g.distance === 0 && !g.drifted));
  });
});
