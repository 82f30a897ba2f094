// Clicks come in clusters of one user. The sketch of Σm²/Σm against exact counts, and drift
// tests on a steady shop whose users click many times: quiet with the correction, flagged at
// nearly every look without it; a real shift still flagged with it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import { addToSketch, designEffect, emptySketch, mergeSketch } from '../../services/model/clusters.js';
import { FeatureSpec } from '../../services/model/features.js';
import {
  ProfileReader,
  emptyProfile,
  profileOf,
  type ProfiledRecord,
  type RawProfile,
} from '../../services/model/profile.js';
import { DEFAULT_DRIFT_POLICY, driftOf } from '../../services/monitor/drift.js';

const spec = new FeatureSpec({ hashBits: 12 });
const SEGMENTS = ['DE/mobile', 'DE/desktop', 'FR/mobile', 'FR/desktop', 'US/mobile', 'US/desktop'];
const CATEGORIES = ['books', 'toys', 'garden', 'music', 'shoes'];

/** Users with a fixed segment, category and propensity, each clicking `clicksPerUser` times. */
function clusteredClicks(
  seed: number,
  users: number,
  clicksPerUser: number,
  shoesShare = 0,
  withUsers = true,
): ProfiledRecord[] {
  const random = new Random(seed);
  const records: ProfiledRecord[] = [];
  for (let u = 0; u < users; u++) {
    const segment = random.pick(SEGMENTS);
    const category = random.chance(shoesShare) ? 'shoes' : random.pick(CATEGORIES);
    const propensity = 0.02 + 0.3 * random.next() ** 2;
    for (let c = 0; c < clicksPerUser; c++)
      records.push({
        features: { indices: [], values: [] },
        segment,
        category,
        score: Math.min(0.99, propensity * (0.8 + 0.4 * random.next())),
        ...(withUsers ? { userId: `s${seed}-u${u}` } : {}),
      });
  }
  return records;
}

function live(records: ProfiledRecord[]): RawProfile {
  const reader = new ProfileReader(spec);
  const raw = emptyProfile();
  for (const r of records) reader.add(raw, r);
  return raw;
}

describe('cluster sketch', () => {
  it('estimates Σm²/Σm within its error, and merges as one sketch of all the records', () => {
    const sketch = (users: number, each: number, tag: string) => {
      const s = emptySketch();
      for (let u = 0; u < users; u++) for (let c = 0; c < each; c++) addToSketch(s, `${tag}-${u}`);
      return s;
    };
    const ten = designEffect(sketch(300, 10, 'a'));
    assert.ok(ten > 10 * 0.5 && ten < 10 * 1.5, `${ten} for 300 users of 10 records`);
    const one = designEffect(sketch(3000, 1, 'b'));
    assert.ok(one < 1.6, `${one} for 3,000 users of one record`);
    assert.equal(designEffect(emptySketch()), 1);

    const whole = emptySketch();
    const first = emptySketch();
    const second = emptySketch();
    for (let i = 0; i < 1000; i++) {
      addToSketch(whole, `u${i % 70}`);
      addToSketch(i < 500 ? first : second, `u${i % 70}`);
    }
    mergeSketch(first, second);
    assert.deepEqual(first, whole);
  });
});

describe('drift on clustered clicks', () => {
  const policy = DEFAULT_DRIFT_POLICY;
  const reference = (withUsers: boolean) => profileOf(spec, clusteredClicks(1, 300, 16, 0, withUsers));

  it('a steady shop of users clicking 16 times each: quiet with the correction over 40 windows, flagged without it', () => {
    let corrected = 0;
    let naive = 0;
    for (let seed = 100; seed < 140; seed++) {
      corrected += driftOf(reference(true), live(clusteredClicks(seed, 150, 16)), policy).drifted.length;
      naive += driftOf(reference(false), live(clusteredClicks(seed, 150, 16, 0, false)), policy).drifted
        .length;
    }
    assert.equal(corrected, 0);
    assert.ok(naive >= 20, `${naive} groups flagged over 40 steady windows without the correction`);
  });

  it('reports the design effects it corrected by, and still flags a campaign that sends a third of users to shoes', () => {
    const report = driftOf(reference(true), live(clusteredClicks(7, 150, 16, 0.35)), policy);
    assert.ok(
      report.designEffect.live > 8 && report.designEffect.live < 24,
      JSON.stringify(report.designEffect),
    );
    assert.ok(report.designEffect.reference > 8 && report.designEffect.reference < 24);
    assert.ok(report.drifted.includes('category'), JSON.stringify(report.drifted));
  });
});
