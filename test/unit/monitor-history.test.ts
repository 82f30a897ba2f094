// The monitor's long memory and its dead-letter tally: buckets past the retention summed into
// hours without losing a prediction or a label, hours past the history forgotten, the series
// drawn across both, and dead letters counted, previewed and kept after a checkpoint.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeadLetter } from '../../services/common/contracts.js';
import { FeatureSpec } from '../../services/model/features.js';
import { ProfileReader } from '../../services/model/profile.js';
import { MonitorCore, type MonitorCoreConfig, type MonitorState } from '../../services/monitor/core.js';
import {
  NEWEST_KEPT,
  deadLetterReport,
  emptyDeadLetters,
  takeDeadLetter,
} from '../../services/monitor/dead-letters.js';
import { DEFAULT_DRIFT_POLICY } from '../../services/monitor/drift.js';
import { windowQuality } from '../../services/monitor/quality.js';
import { seriesOf } from '../../services/monitor/series.js';
import { MonitorWindows } from '../../services/monitor/windows.js';
import { servedOutcomes, servedPredictions } from '../helpers/monitor.js';

const spec = new FeatureSpec({ hashBits: 12 });
const reader = new ProfileReader(spec);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = Date.UTC(2026, 11, 1);

const config = (historyMs: number): MonitorCoreConfig => ({
  bucketMs: MINUTE,
  windowMs: 15 * MINUTE,
  labelLagMs: 5 * MINUTE,
  retentionMs: 30 * MINUTE,
  historyMs,
  drift: DEFAULT_DRIFT_POLICY,
  alerts: {
    thresholds: { maxLogLoss: null, minAuc: null, maxEce: null, minLabels: 100 },
    cooldownMs: HOUR,
    retrainOn: [],
  },
});

/** Six hours of traffic, a label for every prediction (one in eight a purchase), in time order. */
function traffic() {
  const predictions = servedPredictions(spec, {
    seed: 3,
    n: 7200,
    from: T0,
    spanMs: 6 * HOUR,
    weights: [1, 1],
  });
  const labels = servedOutcomes(predictions, { every: 8 });
  return { predictions, labels };
}

function letter(at: number, code: string, value: Buffer | null): DeadLetter {
  return {
    sourceTopic: 'fw.events.click',
    sourcePartition: 0,
    sourceOffset: at,
    key: Buffer.from('k'),
    value,
    headers: {},
    sourceTimestamp: null,
    errorCode: code,
    reason: `${code} at ${at}`,
    service: 'scorer',
    consumerGroup: 'g',
    failedAt: at,
  };
}

describe('monitor history', () => {
  it('sums buckets past the retention into hours, losing no prediction or label, exact per hour', () => {
    const core = new MonitorCore(config(400 * 24 * HOUR), reader, () => null);
    const everything = MonitorWindows.empty(MINUTE, { retentionMs: 24 * HOUR, reader });
    const { predictions, labels } = traffic();
    for (let i = 0; i < predictions.length; i++) {
      core.takePredictions([predictions[i]!]);
      core.takeLabels([labels[i]!]);
      everything.addPrediction(predictions[i]!);
      everything.addLabel(labels[i]!);
    }
    const hours = core.history.points['v7|champion']!;
    assert.deepEqual(
      hours.map((p) => (p.at - T0) / HOUR),
      [0, 1, 2, 3, 4, 5],
      'every hour but the newest 30 minutes is in the history',
    );
    const second = windowQuality(everything.buckets(() => true, T0 + HOUR, T0 + 2 * HOUR));
    assert.equal(hours[1]!.predictions, 1200);
    assert.equal(hours[1]!.labels, 1200);
    assert.equal(hours[1]!.positives, second.positives);
    assert.ok(Math.abs(hours[1]!.lossSum / hours[1]!.labels - second.logLoss!) < 1e-12);

    const series = seriesOf(core.windows, 300, core.history);
    assert.equal(series.length, 1);
    const points = series[0]!.points;
    assert.equal(
      points.reduce((n, p) => n + p.predictions, 0),
      7200,
      'the history and the windows together count each prediction once',
    );
    assert.equal(
      points.reduce((n, p) => n + p.labels, 0),
      7200,
    );
    assert.deepEqual(
      points.map((p) => p.at),
      [...points.map((p) => p.at)].sort((a, b) => a - b),
      'oldest first',
    );
    assert.ok(Math.abs(points[1]!.logLoss! - second.logLoss!) < 1e-12, 'an hour of the history is exact');

    // Three points at most: steps of whole hours (2 h each), the windows' steps beside them.
    const coarse = seriesOf(core.windows, 3, core.history)[0]!.points;
    assert.equal(
      coarse.reduce((n, p) => n + p.predictions, 0),
      7200,
    );
    assert.ok(coarse.length <= 6, `${coarse.length} points`);
  });

  it('forgets hours older than the history, and keeps the history across a checkpoint', () => {
    const core = new MonitorCore(config(2 * HOUR), reader, () => null);
    const { predictions } = traffic();
    core.takePredictions(predictions);
    const kept = core.history.points['v7|champion']!.map((p) => (p.at - T0) / HOUR);
    assert.deepEqual(kept, [3, 4, 5], 'two hours before the newest hour rolled up');
    core.takeDeadLetters([letter(T0, 'FW_MALFORMED_AVRO', Buffer.from([1, 2]))]);
    const snapshot = JSON.parse(JSON.stringify(core.snapshot())) as MonitorState;
    const restored = new MonitorCore(config(2 * HOUR), reader, () => null, snapshot);
    assert.deepEqual(restored.history, core.history);
    assert.equal(deadLetterReport(restored.deadLetters).totals[0]?.n, 1);
    // A checkpoint from before the history: both start empty.
    const { history: _h, deadLetters: _d, ...old } = snapshot;
    const fromOld = new MonitorCore(config(2 * HOUR), reader, () => null, old);
    assert.deepEqual(fromOld.history.points, {});
  });

  it('rolls a late bucket into its own hour, before a newer one', () => {
    const windows = MonitorWindows.empty(MINUTE, {
      retentionMs: 30 * MINUTE,
      reader,
      onExpire: (key, bucket) => expired.push(`${key}@${(bucket.start - T0) / MINUTE}`),
    });
    const expired: string[] = [];
    const [early, late, newest] = servedPredictions(spec, {
      seed: 4,
      n: 3,
      from: T0,
      spanMs: 3 * MINUTE,
      weights: [1],
    });
    windows.addPrediction({ ...late!, eventTime: T0 + 20 * MINUTE });
    windows.addPrediction({ ...early!, eventTime: T0 + 5 * MINUTE });
    windows.addPrediction({ ...newest!, eventTime: T0 + 2 * HOUR });
    assert.deepEqual(expired.sort(), ['v7|champion@20', 'v7|champion@5']);
  });
});

describe('dead-letter tally', () => {
  it('counts by source, code and service, per hour, and keeps the newest letters with a preview', () => {
    const state = emptyDeadLetters();
    for (let i = 0; i < 80; i++)
      takeDeadLetter(
        state,
        letter(
          T0 + i * 10 * MINUTE,
          i % 4 === 0 ? 'FW_BAD_MAGIC_BYTE' : 'FW_MALFORMED_AVRO',
          Buffer.from('{"a":1}'),
        ),
        400 * 24 * HOUR,
      );
    takeDeadLetter(
      state,
      letter(T0 + 800 * MINUTE, 'FW_EMPTY_MESSAGE', Buffer.from([0, 0xff, 0x10])),
      400 * 24 * HOUR,
    );
    const report = deadLetterReport(state);
    assert.deepEqual(
      report.totals.map((t) => [t.errorCode, t.n]),
      [
        ['FW_MALFORMED_AVRO', 60],
        ['FW_BAD_MAGIC_BYTE', 20],
        ['FW_EMPTY_MESSAGE', 1],
      ],
    );
    assert.equal(report.newest.length, NEWEST_KEPT);
    assert.equal(report.newest[0]?.errorCode, 'FW_EMPTY_MESSAGE', 'newest first');
    assert.equal(report.newest[0]?.preview, '00ff10', 'bytes as hex');
    assert.equal(report.newest[1]?.preview, '{"a":1}', 'text as text');
    assert.equal(
      report.points.reduce((n, p) => n + Object.values(p.counts).reduce((a, b) => a + b, 0), 0),
      81,
    );
    assert.equal(
      report.points[0]?.counts.FW_MALFORMED_AVRO,
      4,
      'six letters in the first hour, one in four bad magic',
    );
    const coarse = deadLetterReport(state, 4);
    assert.ok(coarse.points.length <= 4);
    assert.equal(coarse.stepMs % HOUR, 0);
  });

  it('forgets hours older than the history', () => {
    const state = emptyDeadLetters();
    takeDeadLetter(state, letter(T0, 'FW_EMPTY_MESSAGE', null), 2 * HOUR);
    takeDeadLetter(state, letter(T0 + 5 * HOUR, 'FW_EMPTY_MESSAGE', null), 2 * HOUR);
    assert.deepEqual(
      Object.keys(state.hourly).map((h) => (Number(h) - T0) / HOUR),
      [5],
    );
    assert.equal(state.totals['fw.events.click|FW_EMPTY_MESSAGE|scorer']?.n, 2, 'totals are kept');
  });
});
