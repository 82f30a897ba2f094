// The pipeline view's reading of the services' /metrics: the exposition format as prom-client
// writes it, summed the way the view shows it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { consumerMetrics } from '../../services/common/consumer-metrics.js';
import { consoleConfigSchema } from '../../services/console/config.js';
import { parseMetrics, parseServiceList, progressOf } from '../../services/console/pipeline.js';

describe('console pipeline', () => {
  it('reads lag per topic, dead letters and consumed records from a registry prom-client wrote', async () => {
    const registry = new Registry();
    registry.setDefaultLabels({ service: 'joiner' });
    const metrics = consumerMetrics(registry);
    metrics.lag.set({ topic: 'fw.predictions', partition: '0' }, 40);
    metrics.lag.set({ topic: 'fw.predictions', partition: '1' }, 2);
    metrics.lag.set({ topic: 'fw.purchases.repartitioned', partition: '0' }, 0);
    metrics.consumed.inc({ topic: 'fw.predictions' }, 900);
    metrics.deadLettered.inc({ topic: 'fw.predictions', code: 'FW_MALFORMED_AVRO' }, 3);
    metrics.deadLettered.inc({ topic: 'fw.purchases.repartitioned', code: 'FW_EMPTY_MESSAGE' }, 1);
    const text =
      (await registry.metrics()) +
      'flywheel_joiner_watermark_lag_seconds{partition="0",service="joiner"} 4.5\n' +
      'flywheel_joiner_watermark_lag_seconds{partition="1",service="joiner"} 12\n' +
      'flywheel_joiner_input_progress_lag_seconds{input="predictions",service="joiner"} 1.25\n' +
      'flywheel_monitor_input_age_seconds{input="labels",service="monitor"} 30\n' +
      'flywheel_scorer_outcome_to_live_seconds_sum{service="scorer"} 90\n' +
      'flywheel_scorer_outcome_to_live_seconds_count{service="scorer"} 3\n';
    const progress = progressOf(text);
    assert.deepEqual(progress.lag, { 'fw.predictions': 42, 'fw.purchases.repartitioned': 0 });
    assert.deepEqual(progress.consumed, { 'fw.predictions': 900 });
    assert.equal(progress.deadLettered, 4);
    assert.deepEqual(progress.behindSeconds, {
      watermark: 12,
      'predictions complete': 1.25,
      'newest labels': 30,
    });
    assert.equal(progress.outcomeToLiveSeconds, 30);
  });

  it('reads escaped label values and skips comments and malformed lines', () => {
    const samples = parseMetrics(
      '# HELP x a "quoted" help\nx{a="say \\"hi\\"",b="back\\\\slash"} 1\nnot a sample\ny 2.5e3\nz{} NaN\n',
    );
    assert.deepEqual(samples, [
      { name: 'x', labels: { a: 'say "hi"', b: 'back\\slash' }, value: 1 },
      { name: 'y', labels: {}, value: 2500 },
    ]);
  });

  it('takes the service list as name=url pairs, as the compose file folds it', () => {
    const list = 'scorer=http://scorer:8080, joiner=http://joiner:8083';
    assert.deepEqual(
      parseServiceList(consoleConfigSchema.parse({ FW_CONSOLE_SERVICES: list }).FW_CONSOLE_SERVICES),
      [
        { name: 'scorer', url: 'http://scorer:8080' },
        { name: 'joiner', url: 'http://joiner:8083' },
      ],
    );
    assert.throws(() => consoleConfigSchema.parse({ FW_CONSOLE_SERVICES: 'scorer:8080' }), /name=url/);
  });
});
