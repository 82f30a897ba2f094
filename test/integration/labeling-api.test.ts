// The labeler API on real Redis and Kafka: auth and roles, leases between labelers, labels
// published to the human-label topic as Avro, clear errors.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { TokenTable } from '../../services/common/auth.js';
import { readTopicToEnd } from '../../services/common/read-topic.js';
import { testRuntime } from '../helpers/kafka.js';
import { reviewPayload, startLabeling, type LabelingHarness } from '../helpers/labeling.js';

const ANN = 'ann-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abc';

describe('labeler API', () => {
  const runtime = testRuntime('labeling');
  let harness: LabelingHarness;
  let app: FastifyInstance;
  let labels: LabelingHarness['labels'];

  const call = (method: 'GET' | 'POST', url: string, token?: string, body?: object) =>
    app.inject({
      method,
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body ? { payload: body } : {}),
    });
  const errorCode = (response: { json: <T>() => T }) =>
    response.json<{ error: { code: string } }>().error.code;

  before(async () => {
    const tokens = new TokenTable()
      .add(ANN, { id: 'ann', role: 'labeler' })
      .add(BOB, { id: 'bob', role: 'labeler' })
      .add(ADMIN, { id: 'ops', role: 'admin' });
    harness = await startLabeling(runtime, {
      tokens,
      labelsRequired: 2,
      guidelines: 'Will this visit end in a purchase?',
    });
    ({ app, labels } = harness);
    for (let n = 1; n <= 3; n++)
      await harness.queue.add({ id: `task-${n}`, priority: n / 10, payload: reviewPayload(n) });
  });
  after(() => harness.close());

  it('refuses requests without a token, with an unknown token, or with the wrong role', async () => {
    const none = await call('GET', '/v1/tasks/next');
    assert.equal(none.statusCode, 401);
    assert.equal(errorCode(none), 'FW_UNAUTHORIZED');
    assert.equal((await call('GET', '/v1/tasks/next', 'not-a-token-at-all-000')).statusCode, 401);
    const admin = await call('GET', '/v1/tasks/next', ADMIN);
    assert.equal(admin.statusCode, 403);
    assert.equal(errorCode(admin), 'FW_FORBIDDEN');
    assert.equal((await call('GET', '/v1/queue/stats', ADMIN)).statusCode, 200);
  });

  it('labels a leased task, publishes the label, and keeps leases apart between labelers', async () => {
    const next = await call('GET', '/v1/tasks/next', ANN);
    assert.equal(next.statusCode, 200);
    const { task, guidelines, question, flags } = next.json<{
      task: { id: string; predictionId: string; score?: number };
      guidelines: string;
      question: string;
      flags: { id: string }[];
    }>();
    assert.equal(question, 'Will this visit end in a purchase?');
    assert.deepEqual(
      flags.map((f) => f.id),
      ['bot', 'broken'],
    );
    assert.equal(task.id, 'task-3', 'highest priority first');
    assert.equal(task.score, undefined, 'blind review: no score before the answer');
    assert.equal(task.predictionId, 'pred-3');
    assert.match(guidelines, /purchase/);

    // bob has no lease on ann's task.
    const stolen = await call('POST', `/v1/tasks/${task.id}/label`, BOB, { label: 1 });
    assert.equal(stolen.statusCode, 409);
    assert.equal(errorCode(stolen), 'FW_LEASE_EXPIRED');
    assert.equal((await call('POST', `/v1/tasks/${task.id}/label`, ANN, { label: 2 })).statusCode, 400);
    // Only configured flags, each once.
    for (const bad of [['spam'], ['bot', 'bot']])
      assert.equal(
        (await call('POST', `/v1/tasks/${task.id}/label`, ANN, { label: 1, flags: bad })).statusCode,
        400,
        JSON.stringify(bad),
      );

    const labeled = await call('POST', `/v1/tasks/${task.id}/label`, ANN, {
      label: 1,
      note: 'cart page, repeat visitor',
    });
    assert.equal(labeled.statusCode, 200);
    assert.deepEqual(labeled.json(), {
      complete: false,
      labels: 1,
      required: 2,
      agreement: null,
      score: 0.5,
    });
    const again = await call('POST', `/v1/tasks/${task.id}/label`, ANN, { label: 1 });
    assert.equal(errorCode(again), 'FW_ALREADY_LABELED');
    assert.equal(
      (await call('POST', '/v1/tasks/task-404/label', ANN, { label: 1 })).json<{ error: { code: string } }>()
        .error.code,
      'FW_UNKNOWN_TASK',
    );

    // bob gets the same task (two labels required), disagrees; the task completes.
    const bobTask = (await call('GET', '/v1/tasks/next', BOB)).json<{ task: { id: string } }>().task;
    assert.equal(bobTask.id, 'task-3');
    const done = await call('POST', `/v1/tasks/${bobTask.id}/label`, BOB, { label: 0, flags: ['broken'] });
    assert.deepEqual(done.json(), { complete: true, labels: 2, required: 2, agreement: 0.5, score: 0.5 });

    await labels.atLeast(2);
    const published = labels.records.map((r) => r.value);
    assert.deepEqual(
      published.map((l) => [l.labelId, l.labelerId, l.label, l.predictionId, l.flags]),
      [
        ['task-3|ann', 'ann', 1, 'pred-3', []],
        ['task-3|bob', 'bob', 0, 'pred-3', ['broken']],
      ],
    );
    assert.equal(published[0]?.note, 'cart page, repeat visitor');
    assert.equal(published[1]?.agreement, 0.5);
  });

  it('skip and unclear give the task back to others, not to the same labeler', async () => {
    const first = (await call('GET', '/v1/tasks/next', ANN)).json<{ task: { id: string } }>().task;
    assert.equal((await call('POST', `/v1/tasks/${first.id}/skip`, ANN)).statusCode, 200);
    const second = (await call('GET', '/v1/tasks/next', ANN)).json<{ task: { id: string } }>().task;
    assert.notEqual(second.id, first.id);
    assert.equal((await call('POST', `/v1/tasks/${second.id}/unclear`, ANN)).statusCode, 200);
    assert.equal((await call('GET', '/v1/tasks/next', ANN)).statusCode, 204, 'nothing left for ann');
    assert.equal(
      (await call('GET', '/v1/tasks/next', BOB)).json<{ task: { id: string } }>().task.id,
      first.id,
    );
    const stats = (await call('GET', '/v1/queue/stats', ADMIN)).json<{ counters: Record<string, number> }>();
    assert.equal(stats.counters.skipped, 1);
    assert.equal(stats.counters.unclear, 1);
  });

  it('shows admins depth, oldest task age, per-labeler throughput and agreement, and exports labels', async () => {
    assert.equal(
      (await call('GET', '/v1/admin/queue', ANN)).statusCode,
      403,
      'labelers do not see the admin view',
    );
    const view = (await call('GET', '/v1/admin/queue', ADMIN)).json<{
      ready: number;
      leased: number;
      oldestWaitingMs: number | null;
      labelers: { id: string; labeled: number; judged: number; agreement: number | null }[];
    }>();
    assert.equal(view.leased, 1, 'bob still holds the task ann skipped');
    assert.ok(view.oldestWaitingMs === null || view.oldestWaitingMs >= 0);
    // task-3 ended 1 to 1: a tie has no majority, so neither labeler agreed with one.
    assert.deepEqual(view.labelers, [
      { id: 'ann', labeled: 1, judged: 1, agreement: 0 },
      { id: 'bob', labeled: 1, judged: 1, agreement: 0 },
    ]);
    const exported = await call('GET', '/v1/admin/labels.ndjson', ADMIN);
    assert.match(String(exported.headers['content-type']), /^application\/x-ndjson/);
    const lines = exported.body
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            taskId: string;
            labels: Record<string, number>;
            payload: { predictionId: string };
          },
      );
    assert.deepEqual(
      lines.map((l) => [l.taskId, l.labels, l.payload.predictionId]),
      [['task-3', { ann: 1, bob: 0 }, 'pred-3']],
    );
  });

  it('exports the queue depth, the answers and the label latency on /metrics, without a token', async () => {
    const view = (await call('GET', '/v1/admin/queue', ADMIN)).json<{ ready: number; leased: number }>();
    const text = (await call('GET', '/metrics')).body;
    const value = (series: string) =>
      Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    assert.equal(value('flywheel_labeling_tasks{state="ready",service="labeling"}'), view.ready);
    assert.equal(value('flywheel_labeling_tasks{state="leased",service="labeling"}'), view.leased);
    assert.equal(value('flywheel_labeling_answers_total{answer="label",service="labeling"}'), 2);
    assert.equal(value('flywheel_labeling_answers_total{answer="skip",service="labeling"}'), 1);
    assert.equal(value('flywheel_labeling_answers_total{answer="unclear",service="labeling"}'), 1);
    assert.equal(value('flywheel_labeling_label_latency_seconds_count{service="labeling"}'), 2);
  });
});

describe('labeler API while Kafka refuses the label', () => {
  const runtime = testRuntime('labeling');
  let harness: LabelingHarness;
  // Not created yet: the broker (auto-creation off) refuses every send to it, as a Kafka that is down.
  const topic = `test.labels.later.${randomUUID().slice(0, 8)}`;

  before(async () => {
    harness = await startLabeling(runtime, {
      tokens: new TokenTable().add(ANN, { id: 'ann', role: 'labeler' }),
      labelsRequired: 1,
      guidelines: 'g',
      publishTopic: topic,
      publishTimeoutMs: 3000,
    });
    await harness.queue.add({ id: 'task-k', priority: 1, payload: reviewPayload(7) });
  });
  after(() => harness.close());

  it('answers 503 and records nothing; the same request once Kafka takes it publishes the label once', async () => {
    const call = (method: 'GET' | 'POST', url: string, body?: object) =>
      harness.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${ANN}` },
        ...(body ? { payload: body } : {}),
      });
    assert.equal((await call('GET', '/v1/tasks/next')).statusCode, 200);
    const refused = await call('POST', '/v1/tasks/task-k/label', { label: 1 });
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'FW_KAFKA_UNAVAILABLE');
    assert.deepEqual(await harness.queue.labelsOf('task-k'), {}, 'nothing recorded');

    const admin = runtime.kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    try {
      const published = await call('POST', '/v1/tasks/task-k/label', { label: 1 });
      assert.equal(published.statusCode, 200, published.body);
      assert.deepEqual(await harness.queue.labelsOf('task-k'), { ann: 1 });
      const labels = (await readTopicToEnd(runtime.kafka, topic)).length;
      assert.equal(labels, 1, 'published once');
      assert.equal((await call('POST', '/v1/tasks/task-k/label', { label: 1 })).statusCode, 409);
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
