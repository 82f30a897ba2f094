// A feature profile reads back from a logged vector what the spec put in: each bucketed
// feature's bucket, each dense value's bin, the category and segment, the score.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUCKETS, FeatureSpec, bucketOf } from '../../services/model/features.js';
import {
  MAX_VALUES,
  OTHER,
  PROFILE_GROUPS,
  ProfileReader,
  emptyProfile,
  finishProfile,
  mergeProfiles,
  profileOf,
  versionReference,
} from '../../services/model/profile.js';
import { sampleRecords } from '../helpers/records.js';

const spec = new FeatureSpec({ hashBits: 16 });

describe('feature profile', () => {
  it('reads every group of a vectorized click back', () => {
    const { click } = sampleRecords(Date.UTC(2026, 0, 1, 13, 30));
    const session = { clicksBefore: 4, sessionStart: click.eventTime - 45_000, categoriesSeen: 2 };
    const features = spec.vectorize(click, session);
    const profile = profileOf(spec, [{ features, category: 'books', segment: 'DE/mobile', score: 0.42 }]);
    assert.equal(profile.records, 1);
    assert.equal(profile.featureSpecHash, spec.hash);
    assert.deepEqual(Object.keys(profile.groups).sort(), [...PROFILE_GROUPS].sort());
    const only = (group: string) => {
      const h = profile.groups[group]!;
      assert.equal(h.missing, 0, group);
      return Object.keys(h.bins);
    };
    assert.deepEqual(only('score'), ['8']); // 0.42 of 20 bins
    assert.deepEqual(only('category'), ['books']);
    assert.deepEqual(only('segment'), ['DE/mobile']);
    assert.deepEqual(only('clicksBefore'), [String(bucketOf(4, BUCKETS.clicksBefore))]);
    assert.deepEqual(only('secondsInSession'), [String(bucketOf(45, BUCKETS.secondsInSession))]);
    assert.deepEqual(only('hourOfDay'), [String(bucketOf(13, BUCKETS.hourOfDay))]);
    assert.deepEqual(only('categoriesSeen'), [String(bucketOf(2, BUCKETS.categoriesSeen))]);
    assert.deepEqual(only('priceLog2'), [String(bucketOf(Math.log2(13.5), BUCKETS.priceLog2))]);
    assert.deepEqual(only('dense:logPrice'), [String(Math.floor((Math.log1p(12.5) / 10) * 10))]);
    assert.deepEqual(only('dense:clicksBefore'), ['2']); // 4 / 20 of 10 bins
  });

  it('counts what a record lacks as missing', () => {
    const profile = profileOf(spec, [
      { features: { indices: [], values: [] }, category: '', segment: 'x/y' },
    ]);
    for (const group of PROFILE_GROUPS)
      assert.equal(profile.groups[group]!.missing, group === 'segment' ? 0 : 1, group);
  });

  it('keeps the most common values of a group and lumps the rest; merged windows add up', () => {
    const reader = new ProfileReader(spec);
    const a = emptyProfile();
    const b = emptyProfile();
    const none = { indices: [], values: [] };
    for (let i = 0; i < MAX_VALUES + 5; i++)
      for (let k = 0; k <= i; k++)
        reader.add(i % 2 ? a : b, { features: none, category: `c${i}`, segment: 's' });
    const merged = mergeProfiles([a, b]);
    assert.equal(merged.records, a.records + b.records);
    const finished = finishProfile(merged, spec.hash).groups.category!.bins;
    assert.equal(Object.keys(finished).length, MAX_VALUES + 1);
    // The five least common values (c0..c4: 1 + 2 + 3 + 4 + 5 records) are OTHER.
    assert.equal(finished[OTHER], 15);
    assert.equal(finished[`c${MAX_VALUES + 4}`], MAX_VALUES + 5);
  });
});

describe('version reference', () => {
  it('bins the calibration by score and leaves out the groups the examples lack', () => {
    const none = { indices: [], values: [] };
    const examples = [
      { score: 0.05, label: 0 },
      { score: 0.07, label: 1 },
      { score: 0.55, label: 1 },
    ].map((e) => ({ ...e, features: none, category: '', segment: 'DE/mobile' }));
    const reference = versionReference(spec, examples, ['category']);
    assert.deepEqual(
      reference.calibration.map((b) => ({ ...b, meanScore: Number(b.meanScore.toFixed(12)) })),
      [
        { meanScore: 0.06, rate: 0.5, n: 2 },
        { meanScore: 0.55, rate: 1, n: 1 },
      ],
    );
    assert.ok(!('category' in reference.profile.groups));
    assert.deepEqual(reference.profile.groups.segment, { bins: { 'DE/mobile': 3 }, missing: 0 });
  });
});
