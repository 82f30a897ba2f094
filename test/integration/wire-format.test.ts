// Our Avro bytes as an independent reader sees them: fetched from the broker by kcat
// (librdkafka) and decoded by Apache Avro for Python, with neither KafkaJS nor avsc involved.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SCHEMAS_DIR } from '../../services/common/avro/registry.js';
import { createProducer } from '../../services/common/kafka.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { sampleRecords } from '../helpers/records.js';

const DECODER = join(import.meta.dirname, '..', 'fixtures', 'decode_confluent.py');
// Debian's interpreter, which has python3-avro (a pyenv python on PATH may not).
const PYTHON = '/usr/bin/python3';

describe('wire format seen by independent clients', () => {
  const runtime = testRuntime();
  let topics: TestTopics<'wire'>;
  before(async () => {
    topics = await createTestTopics(runtime, ['wire'], 1);
  });
  after(() => topics.cleanup());

  it('kcat + python-avro read magic byte, schema id and body of a ClickEvent and a Prediction', async () => {
    const topic = topics.names.wire;
    const samples = sampleRecords(1_800_000_000_000);
    const producer = createProducer(runtime.kafka);
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { key: 'user-1', value: await runtime.codecs.click.encode(samples.click) },
        { key: 'user-1', value: await runtime.codecs.prediction.encode(samples.prediction) },
      ],
    });
    await producer.disconnect();

    const readAt = (offset: number) => {
      const raw = execFileSync(
        'kcat',
        [
          '-C',
          '-b',
          runtime.config.KAFKA_BROKERS.join(','),
          '-t',
          topic,
          '-p',
          '0',
          '-o',
          String(offset),
          '-c',
          '1',
          '-e',
          '-q',
          '-f',
          '%s',
        ],
        { maxBuffer: 1 << 20 },
      );
      return JSON.parse(execFileSync(PYTHON, [DECODER, SCHEMAS_DIR], { input: raw, encoding: 'utf8' })) as {
        schemaId: number;
        subject: string;
        record: Record<string, unknown>;
      };
    };
    const click = readAt(0);
    assert.equal(click.schemaId, 8);
    assert.equal(click.subject, 'fw.events.click-value');
    assert.deepEqual(click.record, samples.click);

    const prediction = readAt(1);
    assert.equal(prediction.schemaId, 12, 'Prediction v3');
    assert.equal(prediction.subject, 'fw.predictions-value');
    assert.equal(prediction.record.propensity, samples.prediction.propensity);
    assert.equal(prediction.record.predictionId, samples.prediction.predictionId);
    assert.equal(prediction.record.score, samples.prediction.score);
    assert.deepEqual(prediction.record.features, samples.prediction.features);
  });
});
