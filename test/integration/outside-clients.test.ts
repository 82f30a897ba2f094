// Events written by clients nobody here wrote: the same simulated shop produced by Flywheel's own
// producer (KafkaJS, Kafka's murmur2 partitioner), by librdkafka with its default partitioner
// (python3-confluent-kafka, CRC32-based consistent_random) and with two partitioners at once
// (clicks on murmur2_random, purchases on random, ignoring the key), with Apache Avro for Python
// framing the values. Through the real scorer and joiner, every run gives the same label for
// every click, and that is the label a brute force computes from the events.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { SCHEMAS_DIR } from '../../services/common/avro/registry.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { partitionOf } from '../../services/common/partitioner.js';
import { initBackend } from '../../services/model/backend.js';
import type { SimEvent } from '../../services/simulator/generator.js';
import { testRuntime } from '../helpers/kafka.js';
import { LabelPipeline, expectedLabels, shopEvents } from '../helpers/pipeline.js';

const PRODUCER = join(import.meta.dirname, '..', 'fixtures', 'produce_confluent.py');
// Debian's interpreter, which has python3-confluent-kafka and python3-avro (a pyenv one may not).
const PYTHON = '/usr/bin/python3';
const PARTITIONS = 3;

interface OutsideRun {
  clicks: number;
  purchases: number;
  partitions: Record<string, Record<string, number>>;
}

/** Produces the events with librdkafka, each topic through its own partitioner. */
async function produceOutside(
  brokers: string,
  events: SimEvent[],
  topics: { clicks: string; purchases: string },
  partitioners: { clicks: string; purchases: string },
): Promise<OutsideRun> {
  const child = spawn(
    PYTHON,
    [
      PRODUCER,
      SCHEMAS_DIR,
      brokers,
      topics.clicks,
      partitioners.clicks,
      topics.purchases,
      partitioners.purchases,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  for (const e of events) {
    const line = JSON.stringify(
      e.type === 'click' ? { type: 'click', value: e.click } : { type: 'purchase', value: e.purchase },
    );
    if (!child.stdin.write(`${line}\n`)) await new Promise((resolve) => child.stdin.once('drain', resolve));
  }
  child.stdin.end();
  assert.equal(await exited, 0, 'the librdkafka producer finished');
  return JSON.parse(out) as OutsideRun;
}

describe('labels with outside producers and their partitioners', () => {
  const runtime = testRuntime('outside');
  const brokers = runtime.config.KAFKA_BROKERS.join(',');
  // Two hours of a shop, ending an hour ago.
  const events = shopEvents(51, 4000, Date.now() - 3 * 3600_000, 2);
  const clickIds = events.flatMap((e) => (e.type === 'click' ? [e.click.eventId] : []));
  let producer: Producer;
  const runs = new Map<string, Map<string, 0 | 1>>();
  const pipelines: LabelPipeline[] = [];

  before(async () => {
    await initBackend(undefined, 'wasm');
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  after(async () => {
    for (const p of pipelines) await p.close();
    await producer.disconnect();
  });

  /** One run on topics of its own: produce, score, join; the latest label of each click. */
  const run = async (produce: (pipeline: LabelPipeline) => Promise<void>) => {
    const pipeline = await LabelPipeline.create(runtime, { partitions: PARTITIONS });
    pipelines.push(pipeline);
    await produce(pipeline);
    await pipeline.startInProcess();
    const labels = await pipeline.labelsOf(clickIds);
    assert.equal(pipeline.labels.records.filter((r) => r.value.revision > 0).length, 0, 'no corrections');
    return { pipeline, labels: new Map([...labels].map(([id, e]) => [id, e.label as 0 | 1])) };
  };

  it('Flywheel’s own producer (murmur2): the brute-force labels', async () => {
    const { labels, pipeline } = await run(async (p) => {
      const encode = async (e: SimEvent) =>
        e.type === 'click'
          ? { key: e.click.userId, value: await runtime.codecs.click.encode(e.click) }
          : { key: e.purchase.userId, value: await runtime.codecs.purchase.encode(e.purchase) };
      const clicks = events.filter((e) => e.type === 'click');
      const purchases = events.filter((e) => e.type === 'purchase');
      await sendInChunks(producer, p.topics.names.clicks, await Promise.all(clicks.map(encode)));
      await sendInChunks(producer, p.topics.names.purchases, await Promise.all(purchases.map(encode)));
    });
    const expected = expectedLabels(events, pipeline.joinerConfig);
    assert.equal(labels.size, clickIds.length);
    assert.deepEqual(labels, expected);
    assert.ok([...labels.values()].filter((l) => l === 1).length > 50, 'enough positives to mean something');
    runs.set('murmur2', labels);
  });

  for (const [name, partitioners] of [
    ['librdkafka’s default (consistent_random) on both topics', { clicks: 'default', purchases: 'default' }],
    ['clicks on murmur2_random, purchases on random', { clicks: 'murmur2_random', purchases: 'random' }],
  ] as const) {
    it(`${name}: the same label for every click`, async () => {
      let placed: OutsideRun | undefined;
      const { labels } = await run(async (p) => {
        placed = await produceOutside(brokers, events, p.topics.names, partitioners);
      });
      // The producer really put purchases where murmur2 would not: the joiner had to move them.
      const purchases = events.flatMap((e) => (e.type === 'purchase' ? [e.purchase] : []));
      const byId = placed?.partitions[pipelines.at(-1)!.topics.names.purchases] ?? {};
      const moved = purchases.filter((q) => byId[q.eventId] !== partitionOf(q.userId, PARTITIONS)).length;
      assert.ok(
        moved > purchases.length / 4,
        `${moved} of ${purchases.length} purchases off murmur2's partition`,
      );
      const reference = runs.get('murmur2');
      assert.ok(reference, 'the murmur2 run came first');
      const differing = [...reference].filter(([id, label]) => labels.get(id) !== label);
      assert.deepEqual(differing, [], 'every click labeled as in the murmur2 run');
    });
  }
});
