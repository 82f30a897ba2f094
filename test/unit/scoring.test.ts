// Batch scoring (pure): routing per user, the shadow scoring every click, review decisions.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { FeatureSpec, segmentOf } from '../../services/model/features.js';
import { ModelSet } from '../../services/scorer/model-manager.js';
import { predictionId, scoreBatch } from '../../services/scorer/scoring.js';
import { sampleRecords } from '../helpers/records.js';

const spec = new FeatureSpec();
const policy = { band: { low: 0.35, high: 0.65 }, disagreement: 0.3, auditRate: 0 };

/** A model with a distinct, known score per item: a baseline fed one label per item. */
function modelScoring(rate: number): HeuristicBaseline {
  const model = new HeuristicBaseline(1, 1, rate);
  model.update({ itemId: 'none', segment: 'none' }, rate > 0.5 ? 1 : 0);
  return model;
}

describe('prediction id', () => {
  it('is the first 22 base64url characters of sha256(eventId NUL version NUL arm), as ever', () => {
    // Replays after an upgrade must give the ids the joiner and consumers already saw.
    assert.equal(predictionId('c-1', 'v000001', 'champion'), 'J6UW1DVHwewUuAIv6VT8yi');
    assert.equal(
      predictionId('c-1', 'v000001', 'shadow'),
      createHash('sha256').update('c-1\u0000v000001\u0000shadow').digest('base64url').slice(0, 22),
    );
  });
});

describe('batch scoring', () => {
  const now = Date.now();
  const clicks = Array.from({ length: 40 }, (_, i) => ({
    ...sampleRecords(now).click,
    eventId: `c-${i}`,
    userId: `user-${i}`,
  }));
  const sessions = clicks.map((c) => ({ clicksBefore: 0, sessionStart: c.eventTime, categoriesSeen: 0 }));

  it('a shadow that is also the champion still scores every click, challenger users included', () => {
    const champion = modelScoring(0.2);
    const set = new ModelSet(
      { champion: 'a', challenger: 'b', challengerWeight: 0.5, shadow: 'a' },
      new Map([
        ['a', champion],
        ['b', modelScoring(0.9)],
      ]),
      new HeuristicBaseline(),
      1,
    );
    // With and without a live challenger (then every user is a champion user).
    const noChallenger = new ModelSet({ ...set.routing, challengerWeight: 0 }, set.models, set.baseline, 2);
    for (const s of [set, noChallenger]) {
      const { predictions } = scoreBatch(clicks, sessions, { spec, set: s, policy, now, draw: () => 0.5 });
      const shadow = predictions.filter((p) => p.arm === 'shadow');
      assert.equal(shadow.length, clicks.length, 'one shadow prediction per click');
      const expected = champion.score({ itemId: clicks[0]!.itemId, segment: segmentOf('DE', 'mobile') });
      for (const p of shadow)
        assert.ok(
          Math.abs(p.score - expected) < 1e-6,
          `shadow score ${p.score} is the model's, not a fallback`,
        );
    }
  });

  it('serves several challengers and the baseline arm each to its own users, with propensity and split', () => {
    const many = Array.from({ length: 400 }, (_, i) => ({
      ...clicks[0]!,
      eventId: `m-${i}`,
      userId: `u-${i}`,
    }));
    const routing = {
      champion: 'a',
      challenger: 'b',
      challengerWeight: 0.2,
      shadow: null,
      challengers: [
        { version: 'b', weight: 0.2 },
        { version: 'c', weight: 0.2 },
      ],
      baselineWeight: 0.1,
      segments: [],
    };
    const models = new Map([
      ['a', modelScoring(0.2)],
      ['b', modelScoring(0.9)],
      ['c', modelScoring(0.6)],
    ]);
    const set = new ModelSet(routing, models, new HeuristicBaseline(), 1);
    const manySessions = many.map(() => sessions[0]!);
    const { predictions } = scoreBatch(many, manySessions, { spec, set, policy, now, draw: () => 0.5 });
    assert.equal(predictions.length, many.length, 'one served prediction per click');
    const share = (v: string) => predictions.filter((p) => p.modelVersion === v).length / many.length;
    for (const [version, expected] of [
      ['a', 0.5],
      ['b', 0.2],
      ['c', 0.2],
      ['baseline', 0.1],
    ] as const)
      assert.ok(Math.abs(share(version) - expected) < 0.08, `${version}: ${share(version)}`);
    const split = new Set(predictions.map((p) => p.split));
    assert.equal(split.size, 1, 'one split for the batch');
    for (const p of predictions) {
      const propensity = { a: 0.5, b: 0.2, c: 0.2, baseline: 0.1 }[p.modelVersion];
      assert.ok(Math.abs(p.propensity - (propensity as number)) < 1e-9, `${p.modelVersion}: ${p.propensity}`);
      assert.equal(
        p.arm,
        { a: 'champion', b: 'challenger', c: 'challenger', baseline: 'baseline' }[p.modelVersion],
      );
      const model = p.modelVersion === 'baseline' ? set.baseline : models.get(p.modelVersion)!;
      const expected = model.score({ itemId: p.itemId, segment: p.segment });
      assert.ok(Math.abs(p.score - expected) < 1e-6, `${p.modelVersion} scored its own users`);
    }
  });

  it('routes users between champion and challenger and logs the segment of each click', () => {
    const set = new ModelSet(
      { champion: 'a', challenger: 'b', challengerWeight: 0.5, shadow: null },
      new Map([
        ['a', modelScoring(0.2)],
        ['b', modelScoring(0.9)],
      ]),
      new HeuristicBaseline(),
      1,
    );
    const { predictions, reviews } = scoreBatch(clicks, sessions, {
      spec,
      set,
      policy,
      now,
      draw: () => 0.5,
    });
    const arms = new Set(predictions.map((p) => p.arm));
    assert.deepEqual([...arms].sort(), ['challenger', 'champion']);
    assert.ok(predictions.every((p) => p.segment === 'DE/mobile'));
    // Champion and challenger disagree on every click by far more than the threshold.
    assert.equal(reviews.length, clicks.length);
    assert.ok(reviews.every((r) => r.reason === 'disagreement'));
  });
});
