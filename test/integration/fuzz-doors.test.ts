// Absurd values in every field of every record type (times out of the date range, NaN, 2^53,
// empty and 100 kB strings, huge arrays) through every consumer on the real stack: the scorer
// (clicks), the repartitioner (purchases), the joiner (predictions), the trainer (labeled
// examples and human labels). Each message is dead-lettered or taken, counted per topic; every
// consumer is still ready and takes the good records sent after. Then every HTTP door (predict,
// labels upload, labeler) answers such values with a 4xx, never a 5xx.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import type avro from 'avsc';
import type { Producer } from 'kafkajs';
import { EmbeddedSchemaRegistry } from '../../services/common/avro/registry.js';
import { TokenTable } from '../../services/common/auth.js';
import type { DeadLetter, RecordKind } from '../../services/common/contracts.js';
import { DEAD_LETTER_CODES } from '../../services/common/errors.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { countRecords, readTopicToEnd } from '../../services/common/read-topic.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { buildRegistryApp } from '../../services/registry/http.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { loadTrainerConfig } from '../../services/trainer/config.js';
import { Trainer } from '../../services/trainer/service.js';
import { NUMBERS, mutations } from '../helpers/fuzz.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { reviewPayload, startLabeling } from '../helpers/labeling.js';
import { LabelPipeline } from '../helpers/pipeline.js';
import { sampleRecords } from '../helpers/records.js';

const ADMIN = 'admin-token-0123456789';
const ANN = 'ann-token-0123456789abcdef';
// Above FW_MAX_MESSAGE_BYTES (dead-lettered unread), below the broker's message size.
const LONGEST = 100_000;
const embedded = new EmbeddedSchemaRegistry();

describe('absurd values through every consumer and HTTP door', () => {
  const runtime = testRuntime('fuzz');
  const spec = new FeatureSpec();
  const now = Date.now();
  let producer: Producer;
  let pipeline: LabelPipeline;
  let extra: TestTopics<'human' | 'uploads'>;
  let trainer: Trainer;
  let trainerDir: string;

  before(async () => {
    await initBackend(undefined, 'wasm');
    producer = createProducer(runtime.kafka);
    await producer.connect();
    // Short windows: the good click (half a minute old) is labeled as soon as all is idle.
    pipeline = await LabelPipeline.create(runtime, { windowMs: 5_000 });
    extra = await createTestTopics(runtime, ['human', 'uploads'], 3);
    await pipeline.startInProcess({ http: true });
    trainerDir = await mkdtemp(join(tmpdir(), 'flywheel-fuzz-trainer-'));
    trainer = new Trainer({
      runtime,
      http: false,
      config: {
        ...loadTrainerConfig({}),
        FW_TRAINER_GROUP: `test.fuzz.trainer.${extra.names.human}`,
        FW_TRAINER_DIR: trainerDir,
        FW_TRAINER_WARM_START: false,
        FW_TRAINER_CANDIDATE_EVERY: 0,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
      },
      topics: {
        feedback: pipeline.topics.names.feedback,
        humanLabels: extra.names.human,
        deadLetters: pipeline.topics.names.dlq,
        modelUpdates: pipeline.topics.names.updates,
      },
    });
    await trainer.start();
  });
  after(async () => {
    await trainer.stop();
    await pipeline.close();
    await producer.disconnect();
    await extra.cleanup();
    await rm(trainerDir, { recursive: true, force: true });
  });

  /** Every mutation of a kind's sample, Avro-encoded as a producer would send it. */
  const fuzzed = async (kind: RecordKind, subject: string, sample: Record<string, unknown>) => {
    const type = embedded.latest(subject).type as avro.types.RecordType;
    const codec = runtime.codecs[kind];
    const id = await codec.schemaId();
    return mutations(type, sample, LONGEST).map(({ value }) => ({
      key: typeof value.userId === 'string' ? value.userId : 'u',
      value: (codec as { encodeWith(id: number, v: unknown): Buffer }).encodeWith(id, value),
    }));
  };

  it('Kafka: each message dead-lettered or taken, per topic; every consumer goes on', async () => {
    const s = sampleRecords(now - 60_000);
    const n = pipeline.topics.names;
    const sent = {
      clicks: await fuzzed('click', 'fw.events.click-value', { ...s.click }),
      purchases: await fuzzed('purchase', 'fw.events.purchase-value', { ...s.purchase }),
      predictions: await fuzzed('prediction', 'fw.predictions-value', {
        ...s.prediction,
        featureSpecHash: spec.hash,
      }),
      feedback: await fuzzed('labeledExample', 'fw.feedback.labeled-value', {
        ...s.labeledExample,
        featureSpecHash: spec.hash,
      }),
      human: await fuzzed('humanLabel', 'fw.labels.human-value', {
        ...s.humanLabel,
        predictionId: 'pr-human',
      }),
    };
    for (const [topic, messages] of [
      [n.clicks, sent.clicks],
      [n.purchases, sent.purchases],
      [n.predictions, sent.predictions],
      [n.feedback, sent.feedback],
      [extra.names.human, sent.human],
    ] as const)
      await sendInChunks(producer, topic, messages);
    // Good records after the bad: the consumers must still take them.
    const good = { ...s.click, eventId: 'good-click', userId: 'good-user', eventTime: now - 30_000 };
    await producer.send({
      topic: n.clicks,
      messages: [{ key: good.userId, value: await runtime.codecs.click.encode(good) }],
    });
    const goodExample = { ...s.labeledExample, exampleId: 'good-example', featureSpecHash: spec.hash };
    await producer.send({
      topic: n.feedback,
      messages: [{ key: goodExample.userId, value: await runtime.codecs.labeledExample.encode(goodExample) }],
    });

    // The good click is scored and labeled (the clock closes its window once all is idle).
    await pipeline.labelsOf(['good-click']);
    const letters = async () =>
      Promise.all(
        (await readTopicToEnd(runtime.kafka, n.dlq)).map((m) => runtime.codecs.deadLetter.decode(m.value)),
      );
    const from = (all: DeadLetter[], topic: string) => all.filter((l) => l.sourceTopic === topic).length;
    // The trainer takes in every labeled example that is not dead-lettered (a human label whose
    // prediction id a fuzzed prediction shares may add one more).
    const feedbackTaken = async (all: DeadLetter[]) =>
      trainer.learned + trainer.heldOut >=
      (await countRecords(runtime.kafka, n.feedback)) - from(all, n.feedback);
    let all = await letters();
    while (!(await feedbackTaken(all))) {
      await once(trainer, 'batch');
      all = await letters();
    }

    assert.ok(
      all.every((l) => (DEAD_LETTER_CODES as readonly string[]).includes(l.errorCode)),
      'known codes only',
    );
    const scored = (await countRecords(runtime.kafka, n.predictions)) - sent.predictions.length;
    assert.equal(scored + from(all, n.clicks), sent.clicks.length + 1, 'each click scored or dead-lettered');
    assert.equal(
      (await countRecords(runtime.kafka, n.repartitioned)) + from(all, n.purchases),
      sent.purchases.length,
      'each purchase repartitioned or dead-lettered',
    );
    const joined = pipeline.joiner!.counters();
    assert.equal(
      (joined.predictions ?? 0) + (joined.duplicatePredictions ?? 0) + from(all, n.predictions),
      scored + sent.predictions.length,
      'each prediction joined or dead-lettered',
    );
    for (const topic of [n.clicks, n.purchases, n.predictions, n.feedback, extra.names.human])
      assert.ok(from(all, topic) > 0, `${topic}: some values were refused`);
    assert.ok(scored > 1 && trainer.learned + trainer.heldOut > 1, 'some values were taken');
    assert.deepEqual(
      [pipeline.scorer!.readiness(), pipeline.joiner!.readiness()].map((r) => r.ready),
      [true, true],
    );
  });

  it('HTTP: predict, labels upload and labeler answer absurd values with a 4xx, never a 5xx', async () => {
    const statuses = new Map<string, Set<number>>();
    const note = (door: string, status: number) => {
      statuses.set(door, (statuses.get(door) ?? new Set()).add(status));
      assert.ok(status < 500, `${door} answered ${status}`);
    };
    // Predict: every click mutation, as JSON (NaN and Infinity become null there).
    const port = pipeline.scorer!.port;
    const type = embedded.latest('fw.events.click-value').type as avro.types.RecordType;
    const clicks = mutations(type, { ...sampleRecords(now).click }, 300_000).map((m) => m.value);
    clicks.push({ ...sampleRecords(now).click, eventTime: 2 ** 53 });
    for (const event of clicks) {
      const response = await fetch(`http://127.0.0.1:${port}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ event }),
      });
      note('predict', response.status);
    }
    assert.ok(statuses.get('predict')?.has(400) && statuses.get('predict')?.has(200));

    // Labels upload: every field of an upload example with every absurd value.
    const dir = await mkdtemp(join(tmpdir(), 'flywheel-fuzz-registry-'));
    const admin = new RegistryAdmin(
      new FileModelRegistry(dir),
      spec,
      { producer, codecs: runtime.codecs, feedbackTopic: extra.names.uploads },
      runtime.logger,
    );
    const app = buildRegistryApp({
      admin,
      tokens: new TokenTable().add(ADMIN, { id: 'ops', role: 'admin' }),
      bodyLimit: 2 * 1024 * 1024,
    });
    const base = {
      userId: 'u1',
      itemId: 'i1',
      label: 1,
      clickTime: now - 1000,
      click: { sessionId: 's1', category: 'books', price: 12, device: 'desktop', country: 'FR' },
    };
    const values: unknown[] = [...NUMBERS, '', 'x'.repeat(100_000), null, {}, [], true];
    const uploads: unknown[] = [];
    for (const key of Object.keys(base)) for (const value of values) uploads.push({ ...base, [key]: value });
    for (const key of Object.keys(base.click))
      for (const value of values) uploads.push({ ...base, click: { ...base.click, [key]: value } });
    try {
      for (const example of uploads) {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/labels',
          payload: JSON.stringify(example),
          headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' },
        });
        note('labels upload', response.statusCode);
      }
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
    assert.ok(statuses.get('labels upload')?.has(422));

    // Labeler: absurd labels and notes on a leased task.
    const labeling = await startLabeling(runtime, {
      tokens: new TokenTable().add(ANN, { id: 'ann', role: 'labeler' }),
      labelsRequired: 1,
      guidelines: 'g',
    });
    try {
      await labeling.queue.add({ id: 'task-f', priority: 1, payload: reviewPayload(3) });
      const call = (method: 'GET' | 'POST', url: string, payload?: string) =>
        labeling.app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${ANN}`, 'content-type': 'application/json' },
          ...(payload === undefined ? {} : { payload }),
        });
      assert.equal((await call('GET', '/v1/tasks/next')).statusCode, 200);
      for (const value of [...values, '1', 0.5, 2])
        note(
          'labeler',
          (await call('POST', '/v1/tasks/task-f/label', JSON.stringify({ label: value }))).statusCode,
        );
      for (const value of values)
        note(
          'labeler',
          (await call('POST', '/v1/tasks/task-f/label', JSON.stringify({ label: 1, note: value })))
            .statusCode,
        );
      note('labeler', (await call('POST', '/v1/tasks/task-f/label', '{"label":')).statusCode);
    } finally {
      await labeling.close();
    }
  });
});
