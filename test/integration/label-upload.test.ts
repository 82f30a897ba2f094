// Uploading labeled data on the real stack: POST /v1/labels and `flywheel labels import` publish
// to the feedback topic; a bad upload publishes nothing and says why.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import { runLabels } from '../../services/cli/labels.js';
import { TokenTable } from '../../services/common/auth.js';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { buildRegistryApp } from '../../services/registry/http.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { TopicCollector } from '../helpers/collect.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';

const ADMIN = 'admin-token-0123456789';
const LABELER = 'labeler-token-0123456789';

describe('labeled-data upload', () => {
  const runtime = testRuntime('labels');
  let topics: TestTopics<'feedback'>;
  let producer: Producer;
  let app: FastifyInstance;
  let dir: string;
  let collector: TopicCollector<LabeledExample>;
  const now = Date.now();
  const example = (n: number, label = n % 2) => ({
    userId: `u${n}`,
    itemId: `i${n}`,
    label,
    clickTime: now - n * 1000,
    click: { sessionId: `s${n}`, category: 'books', price: 10 + n, device: 'desktop', country: 'FR' },
  });
  const post = (payload: string, contentType: string, token = ADMIN) =>
    app.inject({
      method: 'POST',
      url: '/v1/labels',
      payload,
      headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
    });

  before(async () => {
    topics = await createTestTopics(runtime, ['feedback']);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    dir = await mkdtemp(join(tmpdir(), 'flywheel-labels-'));
    const admin = new RegistryAdmin(
      new FileModelRegistry(dir),
      new FeatureSpec(),
      { producer, codecs: runtime.codecs, feedbackTopic: topics.names.feedback },
      runtime.logger,
    );
    const tokens = new TokenTable()
      .add(ADMIN, { id: 'ops', role: 'admin' })
      .add(LABELER, { id: 'ann', role: 'labeler' });
    app = buildRegistryApp({ admin, tokens, labelsBodyLimit: 64 * 1024 });
    collector = await new TopicCollector(runtime.kafka, topics.names.feedback, (b) =>
      runtime.codecs.labeledExample.decode(b),
    ).start();
  });
  after(async () => {
    await collector.stop();
    await app.close();
    await producer.disconnect();
    await topics.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes NDJSON and JSON-array uploads; refuses bad ones whole, with reasons', async () => {
    const ndjson = [1, 2, 3].map((n) => JSON.stringify(example(n))).join('\n');
    const first = await post(ndjson, 'application/x-ndjson');
    assert.equal(first.statusCode, 202, first.body);
    assert.deepEqual(first.json(), { published: 3, topic: topics.names.feedback });

    const bad = await post(JSON.stringify([example(4), { ...example(5), label: 7 }]), 'application/json');
    assert.equal(bad.statusCode, 422);
    const error = bad.json<{ error: { code: string; message: string } }>().error;
    assert.equal(error.code, 'FW_INVALID_LABELS');
    assert.match(error.message, /1 of 2 examples are invalid, nothing was published: example 2: label/);

    const tooBig = await post(JSON.stringify(Array(1000).fill(example(6))), 'application/json');
    assert.equal(tooBig.statusCode, 413);
    assert.equal((await post(ndjson, 'application/xml')).statusCode, 415);
    assert.equal((await post(ndjson, 'text/plain')).statusCode, 202, 'NDJSON sent as plain text is fine');
    assert.equal((await post(ndjson, 'application/x-ndjson', LABELER)).statusCode, 403);
    assert.equal((await post('{"not": "an array"}', 'application/json')).statusCode, 400);

    const second = await post(JSON.stringify([example(7), example(8)]), 'application/json');
    assert.equal(second.statusCode, 202, second.body);
    await collector.atLeast(8);
    const users = collector.records.map((r) => r.value.userId).sort();
    // Example 4 came with a bad one: it was not published either.
    assert.deepEqual(users, ['u1', 'u1', 'u2', 'u2', 'u3', 'u3', 'u7', 'u8']);
    const resent = collector.records.filter((r) => r.value.userId === 'u1').map((r) => r.value.exampleId);
    assert.equal(resent[0], resent[1], 'an example uploaded twice keeps its id');
    for (const { value } of collector.records) {
      assert.equal(value.labelSource, 'upload');
      assert.match(value.exampleId, /^upload:[0-9a-f]{32}$/);
      assert.equal(value.segment, 'FR/desktop');
    }
  });

  it('`flywheel labels import` publishes a file with the same checks', async () => {
    const file = join(dir, 'labels.ndjson');
    await writeFile(file, [10, 11, 12, 13].map((n) => JSON.stringify(example(n))).join('\n'));
    const before = collector.records.length;
    assert.equal(await runLabels(['import', file, '--topic', topics.names.feedback]), 0);
    await collector.atLeast(before + 4);
    const imported = collector.records.slice(before).map((r) => r.value);
    assert.deepEqual(imported.map((e) => e.userId).sort(), ['u10', 'u11', 'u12', 'u13']);
    await writeFile(
      file,
      `${JSON.stringify(example(14))}\n${JSON.stringify({ ...example(15), itemId: '' })}`,
    );
    await assert.rejects(runLabels(['import', file, '--topic', topics.names.feedback]), /example 2: itemId/);
  });
});
