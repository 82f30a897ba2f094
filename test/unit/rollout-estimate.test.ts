// The off-policy estimate of a version's rate at 100% from its canary traffic, and the report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LabeledExample } from '../../services/common/contracts.js';
import { Random } from '../../services/common/random.js';
import { estimateRate } from '../../services/rollout/estimate.js';
import { chartLibrary } from '../../services/common/charts.js';
import { renderReport, reportSeries } from '../../services/rollout/report.js';
import { userBucket } from '../../services/scorer/routing.js';
import { newExperiment, type ExperimentRecord } from '../../services/registry/experiments.js';
import { rampFor } from '../../services/registry/experiment-admin.js';
import { tick } from '../../services/rollout/controller.js';
import { servedLabel } from '../helpers/records.js';

const served = (i: number, over: Partial<LabeledExample>) =>
  servedLabel({ predictionId: `p${i}`, userId: `u${i}`, clickTime: i, labelTime: i, ...over });

/** Users split by their hash at `share`; the candidate's buy at 0.2 and the control's at 0.1. */
function logged(random: Random, from: number, count: number, share: number): LabeledExample[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const candidate = userBucket(`u${i}`) < share;
    const label = random.chance(candidate ? 0.2 : 0.1) ? 1 : 0;
    return served(i, {
      modelVersion: candidate ? 'v000002' : 'v000001',
      arm: candidate ? 'challenger' : 'champion',
      propensity: candidate ? share : 1 - share,
      label,
      labelSource: label ? 'outcome' : 'timeout',
    });
  });
}

describe('off-policy estimate', () => {
  it("finds a canary's rate at 100% within its interval, from outcomes at two shares", () => {
    let covered = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const random = new Random(seed);
      const examples = [...logged(random, 0, 20_000, 0.05), ...logged(random, 20_000, 4000, 0.5)];
      const e = estimateRate(examples, 'v000002')!;
      assert.equal(e.propensity.min, 0.05);
      assert.ok(e.effectiveOutcomes < e.outcomes, 'unequal weights count for less');
      if (e.lower <= 0.2 && 0.2 <= e.upper) covered++;
    }
    assert.ok(covered >= 35, `95% intervals covered the truth ${covered} of 40 times`);
  });

  it('takes the latest revision of a label, and no shadow, human or other version', () => {
    const examples = [
      served(1, { modelVersion: 'v000002', propensity: 0.5 }),
      served(1, { modelVersion: 'v000002', propensity: 0.5, revision: 1, label: 1, labelSource: 'outcome' }),
      served(2, { modelVersion: 'v000002', propensity: 0.5, arm: 'shadow', label: 1 }),
      served(3, { modelVersion: 'v000002', propensity: 0.5, labelSource: 'human', label: 0 }),
      served(4, { modelVersion: 'v000003', propensity: 0.5 }),
    ];
    const e = estimateRate(examples, 'v000002')!;
    assert.equal(e.outcomes, 1);
    assert.equal(e.estimate, 1);
    assert.equal(estimateRate(examples, 'v000009'), null);
  });
});

describe('experiment report', () => {
  it('is one HTML file with the chart library inlined, its series and every decision, escaped', async () => {
    const file = {
      experiments: [
        {
          ...newExperiment('exp-000001', {
            candidate: 'v000002',
            config: rampFor({ primary: 'purchaseRate', steps: [0.1, 0.5], minOutcomes: 10 }),
            actor: 'ops',
            reason: 'try <b>it</b>',
            now: 0,
          }),
          baselineShare: 0.05,
        },
      ],
      offsets: {},
    };
    tick(file, { champion: 'v000001', now: 1000, summaries: new Map() });
    const arm = (n: number, mean: number) => ({ purchaseRate: { n, mean, m2: n * mean * (1 - mean) } });
    const stats = { control: arm(900, 0.1), candidate: arm(100, 0.3) };
    tick(file, {
      champion: 'v000001',
      now: 2000,
      summaries: new Map([['exp-000001', { stats, strata: { '0.1': stats }, baseline: arm(1000, 0.05) }]]),
    });
    const e = file.experiments[0] as ExperimentRecord;
    const series = reportSeries(e);
    assert.deepEqual(series.times, [2]);
    assert.deepEqual(series.rates['purchaseRate']?.candidate, [0.3]);
    assert.deepEqual(series.rates['purchaseRate']?.baseline, [0.05], 'the baseline arm is drawn too');
    const html = renderReport(e, await chartLibrary());
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /uPlot/);
    assert.match(html, /heuristic baseline serves 5\.0% of users/);
    assert.ok(!html.includes('<b>it</b>'), 'reasons are escaped');
    assert.match(html, /<td>start<\/td><td>rollout<\/td>/);
    assert.match(html, /<td>advance<\/td>/);
    assert.ok(!/<script[^>]+src=/.test(html), 'nothing loaded from elsewhere');
  });
});
