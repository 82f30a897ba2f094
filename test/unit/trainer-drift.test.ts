// The trainer's loss-drift alarm: fires once on a sustained rise of progressive loss, not on noise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Random } from '../../services/common/random.js';
import { LossDriftDetector } from '../../services/trainer/drift.js';

/** Per-example log losses of a calibrated model on a stream with purchase rate `rate`. */
function losses(random: Random, n: number, rate: number, predicted: number): number[] {
  return Array.from({ length: n }, () =>
    random.next() < rate ? -Math.log(predicted) : -Math.log(1 - predicted),
  );
}

describe('loss drift detector', () => {
  const settings = { recent: 500, reference: 2000, minRise: 0.1, z: 4 };

  it('stays quiet on a stationary stream', () => {
    const detector = new LossDriftDetector(settings);
    const alarms = losses(new Random(1), 50_000, 0.1, 0.1).filter((l) => detector.add(l) !== null);
    assert.equal(alarms.length, 0);
  });

  it('fires once when the purchase rate moves away from the model, with the rise', () => {
    const detector = new LossDriftDetector(settings);
    const random = new Random(2);
    const before = losses(random, 10_000, 0.1, 0.1);
    const after = losses(random, 10_000, 0.3, 0.1); // the model still says 10%
    const alarms: { at: number; rise: number }[] = [];
    [...before, ...after].forEach((l, at) => {
      const alarm = detector.add(l);
      if (alarm) alarms.push({ at, rise: alarm.rise });
    });
    assert.ok(alarms.length >= 1, 'an alarm after the shift');
    const first = alarms[0] as { at: number; rise: number };
    assert.ok(first.at >= 10_000 && first.at < 10_000 + settings.recent, `fired at ${first.at}`);
    assert.ok(first.rise > 0.2);
    // Once the shifted stretch is the reference too, the alarm stops repeating.
    assert.ok(alarms.every((a) => a.at < 10_000 + settings.recent + settings.reference));
  });

  it('needs the rise to be large, not only significant', () => {
    const detector = new LossDriftDetector({ recent: 1000, reference: 4000, minRise: 0.5, z: 4 });
    const random = new Random(3);
    // 0.1 → 0.13 with the model at 0.1: a clear but small rise (about 25%).
    const stream = [...losses(random, 10_000, 0.1, 0.1), ...losses(random, 10_000, 0.13, 0.1)];
    assert.equal(stream.filter((l) => detector.add(l) !== null).length, 0);
  });
});
