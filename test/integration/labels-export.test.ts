// `flywheel labels export` on the real broker: the human labels of one topic joined with the
// newest outcome of their predictions in another, written whole to the file (nothing beside it).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { exportLabels, type ExportRow } from '../../services/cli/labels-export.js';
import { createProducer } from '../../services/common/kafka.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { sampleRecords, servedLabel } from '../helpers/records.js';

describe('labels export', () => {
  const runtime = testRuntime('labels');
  let topics: TestTopics<'human' | 'feedback'>;
  let producer: Producer;
  let dir: string;

  before(async () => {
    topics = await createTestTopics(runtime, ['human', 'feedback'], 2);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    dir = await mkdtemp(join(tmpdir(), 'fw-labels-export-'));
  });
  after(async () => {
    await producer.disconnect();
    await topics.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('joins each human label with its newest outcome and writes the file whole', async () => {
    const now = Date.now();
    const human = (labelId: string, predictionId: string, label: 0 | 1) => ({
      ...sampleRecords(now).humanLabel,
      labelId,
      taskId: predictionId,
      predictionId,
      label,
      labelTime: now - 1000,
    });
    await producer.send({
      topic: topics.names.human,
      messages: await Promise.all(
        [human('l1', 'p1', 1), human('l2', 'p2', 1), human('l3', 'p3', 0)].map(async (l) => ({
          key: l.predictionId,
          value: await runtime.codecs.humanLabel.encode(l),
        })),
      ),
    });
    const outcome = (predictionId: string, label: 0 | 1, revision: number) =>
      servedLabel({
        predictionId,
        label,
        revision,
        labelSource: label ? 'outcome' : 'timeout',
        clickTime: now - 60_000,
        labelTime: now - 30_000,
      });
    await producer.send({
      topic: topics.names.feedback,
      messages: await Promise.all(
        [outcome('p1', 0, 0), outcome('p1', 1, 1), outcome('p2', 0, 0), outcome('other', 1, 0)].map(
          async (e) => ({
            key: e.predictionId,
            value: await runtime.codecs.labeledExample.encode(e),
          }),
        ),
      ),
    });
    const out = join(dir, 'labels.ndjson');
    await exportLabels(runtime, {
      labelsTopic: topics.names.human,
      feedbackTopic: topics.names.feedback,
      out,
      format: 'ndjson',
    });
    const rows = (await readFile(out, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ExportRow);
    assert.deepEqual(
      rows.map((r) => [r.predictionId, r.label, r.outcome, r.agreesWithOutcome]).sort(),
      [
        ['p1', 1, 1, true],
        ['p2', 1, 0, false],
        ['p3', 0, null, null],
      ],
      'p1 takes its correction, p3 has no outcome yet',
    );
    assert.deepEqual(await readdir(dir), ['labels.ndjson'], 'no temporary file left beside it');
  });
});
