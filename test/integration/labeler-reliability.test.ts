// Labelers measured against outcomes by the real trainer on Kafka: a labeler who is always right
// is trusted and one who is always wrong is not, a censored timeout takes the trusted labels as a
// soft label, a click most labelers flag is not trained on, and the record survives a restart
// (checkpoint layout 8) and is served to admins on GET /v1/trainer/labelers.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { HumanLabel, LabeledExample } from '../../services/common/contracts.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { CheckpointStore } from '../../services/trainer/checkpoint.js';
import { loadTrainerConfig } from '../../services/trainer/config.js';
import { Trainer } from '../../services/trainer/service.js';
import { simulatedFeedback } from '../../services/simulator/feedback.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { sampleRecords } from '../helpers/records.js';

const ADMIN = 'admin-reliability-token-0123';
const JUDGED = 60;

describe('labeler reliability in the trainer', () => {
  const runtime = testRuntime('trainer');
  let topics: TestTopics<'feedback' | 'human' | 'dlq' | 'updates'>;
  let producer: Producer;
  let store: string;

  const token = process.env.FW_ADMIN_TOKEN;
  before(async () => {
    // The trainer's admin routes take the registry's token from the environment.
    process.env.FW_ADMIN_TOKEN = ADMIN;
    topics = await createTestTopics(runtime, ['feedback', 'human', 'dlq', 'updates'], 3);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    store = await mkdtemp(join(tmpdir(), 'flywheel-reliability-'));
  });
  after(async () => {
    if (token === undefined) delete process.env.FW_ADMIN_TOKEN;
    else process.env.FW_ADMIN_TOKEN = token;
    await producer.disconnect();
    await topics.cleanup();
    await rm(store, { recursive: true, force: true });
  });

  const trainer = () =>
    new Trainer({
      runtime,
      config: {
        ...loadTrainerConfig({}),
        FW_TRAINER_GROUP: `test.reliability.${topics.names.feedback}`,
        FW_TRAINER_DIR: store,
        FW_TRAINER_WARM_START: false,
        FW_TRAINER_HTTP_PORT: 0,
        FW_TRAINER_HOLDOUT: 10_000,
        FW_TRAINER_CENSORED_SEGMENTS: ['XX/censored'],
        FW_TRAINER_CHECKPOINT_EVERY: 1,
      },
      topics: {
        feedback: topics.names.feedback,
        humanLabels: topics.names.human,
        deadLetters: topics.names.dlq,
        modelUpdates: topics.names.updates,
      },
    });
  const send = async (topic: string, records: { key: string; value: Promise<Buffer> }[]) =>
    sendInChunks(
      producer,
      topic,
      await Promise.all(records.map(async (r) => ({ key: r.key, value: await r.value }))),
    );
  const label = (e: LabeledExample, labelerId: string, value: number, flags: string[] = []): HumanLabel => ({
    ...sampleRecords(Date.now()).humanLabel,
    labelId: `${e.predictionId}|${labelerId}`,
    taskId: e.predictionId,
    predictionId: e.predictionId,
    eventId: e.eventId,
    userId: e.userId,
    itemId: e.itemId,
    label: value,
    labelerId,
    labelTime: e.labelTime,
    flags,
  });

  it('trusts the labeler who matches the outcomes, weighs a censored click by trust, drops a flagged one, and keeps the record', async () => {
    const base = simulatedFeedback({ seed: 11, count: JUDGED + 3 });
    const judged = base.slice(0, JUDGED);
    // Two censored timeouts both labelers label (ann: purchase, bob: none), and one both flag.
    const censored = base.slice(JUDGED, JUDGED + 2).map((e) => ({
      ...e,
      segment: 'XX/censored',
      label: 0,
      labelSource: 'timeout' as const,
    }));
    const flagged = base[JUDGED + 2] as LabeledExample;
    const labels = [
      ...judged.flatMap((e) => [label(e, 'ann', e.label), label(e, 'bob', 1 - e.label)]),
      ...censored.flatMap((e) => [label(e, 'ann', 1), label(e, 'bob', 0)]),
      label(flagged, 'ann', 1, ['bot']),
      label(flagged, 'bob', 1, ['broken']),
    ];
    const first = trainer();
    await first.start();
    // Labels first, so each waits for its outcome, as in a live shop.
    await send(
      topics.names.human,
      labels.map((l) => ({ key: l.userId, value: runtime.codecs.humanLabel.encode(l) })),
    );
    while (first.waitingHumanLabels < JUDGED + 3) await once(first, 'batch');
    // Judged outcomes before the censored ones: the censored labels meet measured labelers.
    await send(
      topics.names.feedback,
      judged.map((e) => ({ key: e.userId, value: runtime.codecs.labeledExample.encode(e) })),
    );
    while (first.heldOut < JUDGED) await once(first, 'batch');
    await send(
      topics.names.feedback,
      [...censored, flagged].map((e) => ({ key: e.userId, value: runtime.codecs.labeledExample.encode(e) })),
    );
    while (first.labelers().counters.flagged < 1 || first.labelers().counters.humanExamples < 2)
      await once(first, 'batch');

    const { labelers, counters } = first.labelers();
    const [ann, bob] = labelers;
    assert.equal(ann?.labeler, 'ann');
    assert.equal(ann?.judged, JUDGED);
    assert.ok(ann.trust > 0.8, `ann is trusted (${ann.trust})`);
    assert.equal(bob?.trust, 0, 'bob is always wrong');
    assert.equal(counters.humanExamples, 2, 'the two censored clicks, by the trusted label');
    assert.equal(counters.flagged, 1);
    const response = await fetch(`http://127.0.0.1:${first.port}/v1/trainer/labelers`, {
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(response.status, 200);
    const served = (await response.json()) as { labelers: { labeler: string; untrusted: string | null }[] };
    assert.match(
      served.labelers.find((l) => l.labeler === 'bob')?.untrusted ?? '',
      /wrong as often as right/,
    );
    assert.equal((await fetch(`http://127.0.0.1:${first.port}/v1/trainer/labelers`)).status, 401);
    await first.stop();

    // The soft labels: each censored click twice, mostly a purchase (ann's word, bob ignored).
    const checkpoint = (await new CheckpointStore(store).load())!;
    for (const e of censored) {
      const pair = (checkpoint.reference ?? []).filter((r) =>
        r.exampleId.startsWith(`human:${e.predictionId}:`),
      );
      const weight = (l: number) => pair.find((r) => r.label === l)?.weight ?? 0;
      assert.ok(weight(1) > weight(0), `${e.predictionId}: ${weight(1)} against ${weight(0)}`);
    }
    assert.ok(
      !checkpoint.state.holdout.some((h) => h.exampleId === flagged.exampleId),
      'the flagged click is not held out',
    );

    // A restart reads the record back from the checkpoint.
    const second = trainer();
    await second.start();
    try {
      assert.deepEqual(second.labelers().labelers, labelers);
    } finally {
      await second.stop();
    }
  });
});
