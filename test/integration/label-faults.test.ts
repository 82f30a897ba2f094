// Labels under faults, on the real stack, counted by a reader of the labeled topic against the
// labels a brute force computes from the events sent: live traffic, paced, while the scorer is
// killed with SIGKILL and restarted after twice the allowed lateness, Redis is shut down and
// started again, and the joiner is killed mid-batch (once at a random point, once between its
// Redis write and its Kafka commit). No label is missing, none is published twice, none is wrong,
// and none needed a correction. FW_FAULT_SCALE multiplies traffic and outage lengths (CI runs 1;
// 3 is the 300 events/s, 30 s outage version).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { createRedis } from '../../services/common/redis.js';
import type { SimEvent } from '../../services/simulator/generator.js';
import { runSimulator } from '../../services/simulator/runner.js';
import { Countdown, testRuntime } from '../helpers/kafka.js';
import { LabelPipeline, expectedLabels } from '../helpers/pipeline.js';

const SCALE = Number(process.env.FW_FAULT_SCALE ?? 1);
const RATE = 100 * SCALE; // events per second, event time following the clock
const TRAFFIC_MS = 40_000 * SCALE;
const LATENESS_MS = 3_000;
const REDIS_DOWN_MS = 10_000 * SCALE;
const ROOT = join(import.meta.dirname, '..', '..');

describe('labels under faults', () => {
  const runtime = testRuntime('faults');
  let producer: Producer;
  let pipeline: LabelPipeline;

  before(async () => {
    producer = createProducer(runtime.kafka);
    await producer.connect();
    pipeline = await LabelPipeline.create(runtime, {
      windowMs: 20_000,
      latenessMs: LATENESS_MS,
      idleMs: 2_000,
    });
  });
  after(async () => {
    await pipeline.close();
    await producer.disconnect();
  });

  it('kill -9 of the scorer, Redis down, kill -9 of the joiner: 0 missing, 0 duplicated, 0 wrong labels', async (t) => {
    const sent: SimEvent[] = [];
    let progress = new Countdown(0, 'events');
    const sentAtLeast = (share: number) => {
      const target = Math.floor((RATE * TRAFFIC_MS * share) / 1000);
      progress = new Countdown(target - sent.length, `${target} events sent`, TRAFFIC_MS * 2);
      return progress.done;
    };
    let scorer = await pipeline.startProcess('scorer');
    let joiner = await pipeline.startProcess('joiner');
    const traffic = runSimulator({
      producer,
      codecs: runtime.codecs,
      logger: runtime.logger,
      simulation: { seed: 61, startTime: Date.now(), trafficRate: RATE, purchaseDelayScale: 0.02 },
      rate: RATE,
      maxEvents: null,
      durationMs: TRAFFIC_MS,
      // The purchases of the last clicks still come, within the window.
      settleMs: 20_000,
      malformedRate: 0,
      maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
      showProgress: false,
      clickTopic: pipeline.topics.names.clicks,
      purchaseTopic: pipeline.topics.names.purchases,
      onEvent: (event) => {
        sent.push(event);
        progress.add(1);
      },
    });

    // The scorer dies and stays away for twice the allowed lateness while clicks keep coming.
    await sentAtLeast(0.15);
    scorer.child.kill('SIGKILL');
    await scorer.exited;
    await sleep(2 * LATENESS_MS);
    scorer = await pipeline.startProcess('scorer');

    // Redis goes away (both the scorer's sessions and the joiner's state live there).
    await sentAtLeast(0.35);
    const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await redis.connect();
    await redis.call('SHUTDOWN').catch(() => undefined); // it answers by closing the connection
    redis.disconnect();
    await sleep(REDIS_DOWN_MS);
    execFileSync(process.execPath, ['--import', 'tsx', 'services/cli/index.ts', 'stack', 'up'], {
      cwd: ROOT,
      stdio: 'ignore',
    });

    // The joiner dies at a random point of its work, and again between its Redis write and its
    // Kafka commit.
    await sentAtLeast(0.6);
    joiner.child.kill('SIGKILL');
    await joiner.exited;
    const crashing = await pipeline.startProcessWith('joiner', { CRASH_AFTER_STATE_WRITE: '5' }, false);
    await crashing.exited;
    joiner = await pipeline.startProcess('joiner');

    const stats = await traffic;
    const clicks = sent.flatMap((e) => (e.type === 'click' ? [e.click.eventId] : []));
    assert.equal(clicks.length, stats.clicks);
    const latest = await pipeline.labelsOf(clicks, 180_000);

    const expected = expectedLabels(sent, pipeline.joinerConfig);
    const records = pipeline.labels.records.map((r) => r.value);
    const byExample = new Map<string, LabeledExample[]>();
    for (const e of records) byExample.set(e.exampleId, [...(byExample.get(e.exampleId) ?? []), e]);
    const missing = clicks.filter((id) => !latest.has(id));
    const duplicated = [...byExample.values()].filter((list) => list.length > 1);
    const wrong = clicks.filter((id) => latest.get(id)?.label !== expected.get(id));
    const positives = [...expected.values()].filter((l) => l === 1).length;
    assert.deepEqual(
      { missing: missing.length, duplicated: duplicated.length, wrong: wrong.length },
      { missing: 0, duplicated: 0, wrong: 0 },
      `wrong: ${wrong.slice(0, 5).join(', ')}`,
    );
    assert.equal(records.filter((e) => e.revision > 0).length, 0, 'no label needed a correction');
    assert.ok(positives > 100, `${positives} positives among ${clicks.length} clicks`);
    t.diagnostic(`${clicks.length} clicks, ${positives} positives, ${records.length} labels read`);
    joiner.child.kill('SIGTERM');
    scorer.child.kill('SIGTERM');
    await Promise.all([joiner.exited, scorer.exited]);
  });
});
