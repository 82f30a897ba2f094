// Experiments on the admin API: admin role only; start (queue) with a validated ramp, list and
// show, an operator's actions in the experiment's decisions, clear codes for what cannot be.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { TokenTable } from '../../services/common/auth.js';
import { toArtifacts } from '../../services/model/artifacts.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { LogisticRegression } from '../../services/model/models.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ExperimentAdmin } from '../../services/registry/experiment-admin.js';
import { ExperimentStore, type ExperimentRecord } from '../../services/registry/experiments.js';
import { tick } from '../../services/rollout/controller.js';
import { withFileLock } from '../../services/registry/file-lock.js';
import { buildRegistryApp } from '../../services/registry/http.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { testRuntime } from '../helpers/kafka.js';

const ADMIN = 'admin-token-0123456789';
const LABELER = 'labeler-token-0123456789';
const spec = new FeatureSpec();

describe('experiments on the admin API', () => {
  let dir: string;
  let app: FastifyInstance;
  let admin: RegistryAdmin;
  const headers = (token = ADMIN) => ({ authorization: `Bearer ${token}` });
  const code = (body: string) => (JSON.parse(body) as { error: { code: string } }).error.code;

  before(async () => {
    await initBackend(undefined, 'wasm');
    dir = await mkdtemp(join(tmpdir(), 'flywheel-experiment-http-'));
    const registry = new FileModelRegistry(dir);
    admin = new RegistryAdmin(registry, spec, null, testRuntime().logger);
    const tokens = new TokenTable()
      .add(ADMIN, { id: 'ops', role: 'admin' })
      .add(LABELER, { id: 'ann', role: 'labeler' });
    app = buildRegistryApp({ admin, tokens });
    const model = new LogisticRegression(spec.dimension, spec.maxNonZero);
    const artifacts = await toArtifacts(model, spec);
    model.dispose();
    for (const description of ['champion', 'candidate', 'second', 'third'])
      await registry.register({
        artifacts,
        parent: null,
        seed: 0,
        training: { source: 'upload', description, examples: 0 },
        metrics: null,
        createdBy: 'test',
      });
    await admin.promote('v000001', 'champion', { actor: 'test', reason: 'set-up' });
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('queues a candidate with its ramp, lists and shows it, and takes an abort with its reason', async () => {
    const labeler = await app.inject({ method: 'GET', url: '/v1/experiments', headers: headers(LABELER) });
    assert.equal(labeler.statusCode, 403);
    const started = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: {
        candidate: 'v000002',
        reason: 'try it',
        primary: 'purchaseRate',
        steps: [0.1, 0.5],
        minStepSeconds: 30,
      },
    });
    assert.equal(started.statusCode, 201, started.body);
    const record = started.json<ExperimentRecord>();
    assert.equal(record.state, 'queued');
    assert.equal(record.createdBy, 'ops');
    assert.deepEqual(record.config.steps, [0.1, 0.5]);
    assert.equal(record.config.minStepMs, 30_000);
    assert.deepEqual(Object.keys(record.config.metrics), ['purchaseRate']);

    const again = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: { candidate: 'v000002', reason: 'twice' },
    });
    assert.equal(again.statusCode, 409);
    assert.equal(code(again.body), 'FW_EXPERIMENT_CONFLICT');

    const listed = await app.inject({ method: 'GET', url: '/v1/experiments', headers: headers() });
    assert.deepEqual(
      listed.json<{ experiments: ExperimentRecord[] }>().experiments.map((e) => e.id),
      [record.id],
    );
    const shown = await app.inject({
      method: 'GET',
      url: `/v1/experiments/${record.id}`,
      headers: headers(),
    });
    assert.equal(shown.json<ExperimentRecord>().candidate, 'v000002');

    const aborted = await app.inject({
      method: 'POST',
      url: `/v1/experiments/${record.id}/abort`,
      headers: headers(),
      payload: { reason: 'changed my mind' },
    });
    assert.equal(aborted.statusCode, 200, aborted.body);
    const ended = aborted.json<ExperimentRecord>();
    assert.equal(ended.state, 'aborted');
    assert.deepEqual(
      ended.decisions.map((d) => `${d.action}:${d.actor}:${d.reasons.join()}`),
      ['abort:ops:changed my mind'],
    );
    const resumed = await app.inject({
      method: 'POST',
      url: `/v1/experiments/${record.id}/resume`,
      headers: headers(),
      payload: { reason: 'no' },
    });
    assert.equal(resumed.statusCode, 409, 'an ended experiment takes no action');
  });

  it('refuses to move the challenger outside a running experiment, until it ends', async () => {
    const started = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: { candidate: 'v000002', reason: 'runs' },
    });
    const { id } = started.json<ExperimentRecord>();
    // As the controller starts it (its own moves carry the experiment's id).
    await new ExperimentStore(dir).transact((file) => {
      tick(file, { champion: 'v000001', now: Date.now(), summaries: new Map() });
    });
    const promote = () =>
      app.inject({
        method: 'POST',
        url: '/v1/models/v000002/promote',
        headers: headers(),
        payload: { alias: 'challenger', reason: 'by hand', challengerWeight: 0.5 },
      });
    const refused = await promote();
    assert.equal(refused.statusCode, 409, refused.body);
    assert.match(refused.body, new RegExp(`experiment ${id} routes the challenger`));
    await app.inject({
      method: 'POST',
      url: `/v1/experiments/${id}/abort`,
      headers: headers(),
      payload: { reason: 'done' },
    });
    assert.equal((await promote()).statusCode, 200, 'free again once it ended');
    await app.inject({
      method: 'DELETE',
      url: '/v1/aliases/challenger',
      headers: headers(),
      payload: { reason: 'clean up' },
    });
  });

  /** As the controller starts the queued experiments and routes what changed. */
  async function startAsTheController(): Promise<ExperimentAdmin> {
    const experiments = new ExperimentAdmin(new ExperimentStore(dir), admin);
    await experiments.store.transact(async (file) => {
      const result = tick(file, { champion: 'v000001', now: Date.now(), summaries: new Map() });
      for (const e of result.changed) await experiments.route(file, e, 'rollout', 'start');
    });
    return experiments;
  }

  it('starts several candidates as a group with a baseline arm in segments; one promoted ends the rest', async () => {
    const started = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: {
        candidates: ['v000003', 'v000004'],
        reason: 'two at once',
        steps: [0.1, 0.3],
        alpha: 0.1,
        baselineShare: 0.05,
        segments: ['DE/*', '*/tablet'],
      },
    });
    assert.equal(started.statusCode, 201, started.body);
    const group = started.json<{ experiments: ExperimentRecord[] }>().experiments;
    assert.deepEqual(
      group.map((e) => [e.candidate, e.group, e.config.alpha, e.baselineShare]),
      [
        ['v000003', group[0]?.id, 0.05, 0.05],
        ['v000004', group[0]?.id, 0.05, 0.05],
      ],
      'one group, alpha shared out between its candidates',
    );
    const registry = new FileModelRegistry(dir);
    const experiments = await startAsTheController();
    const routing = await registry.routing();
    assert.deepEqual(routing.challengers, [
      { version: 'v000003', weight: 0.1 },
      { version: 'v000004', weight: 0.1 },
    ]);
    assert.equal(routing.challenger, 'v000003', 'the first also in the v1 fields');
    assert.equal(routing.baselineWeight, 0.05);
    assert.deepEqual(routing.segments, ['DE/*', '*/tablet']);

    const promoted = await app.inject({
      method: 'POST',
      url: `/v1/experiments/${group[1]?.id}/promote`,
      headers: headers(),
      payload: { reason: 'the better one' },
    });
    assert.equal(promoted.statusCode, 200, promoted.body);
    const after = await registry.routing();
    assert.equal(after.champion, 'v000004');
    assert.deepEqual([after.challengers, after.baselineWeight, after.segments], [[], 0, []]);
    const first = await experiments.get(group[0]?.id as string);
    assert.equal(first.state, 'aborted');
    assert.match(first.endReason ?? '', /v000004 of the same group was promoted/);
    await admin.promote('v000001', 'champion', { actor: 'test', reason: 'back for the next tests' });

    const crowded = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: { candidates: ['v000003', 'v000004'], reason: 'too much', steps: [0.3, 0.5] },
    });
    assert.equal(crowded.statusCode, 400);
    assert.match(crowded.body, /leave the control nothing/);
  });

  it('routes a shadow experiment as the shadow alone, which no one else may move until it ends', async () => {
    const started = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: { candidate: 'v000003', reason: 'look first', mode: 'shadow' },
    });
    assert.equal(started.statusCode, 201, started.body);
    const record = started.json<ExperimentRecord>();
    assert.equal(record.mode, 'shadow');
    const registry = new FileModelRegistry(dir);
    await startAsTheController();
    const routing = await registry.routing();
    assert.deepEqual([routing.shadow, routing.challenger, routing.challengers], ['v000003', null, []]);
    const byHand = await app.inject({
      method: 'POST',
      url: '/v1/models/v000004/promote',
      headers: headers(),
      payload: { alias: 'shadow', reason: 'by hand' },
    });
    assert.equal(byHand.statusCode, 409, byHand.body);
    assert.match(byHand.body, /routes the shadow/);
    await app.inject({
      method: 'POST',
      url: `/v1/experiments/${record.id}/abort`,
      headers: headers(),
      payload: { reason: 'enough' },
    });
    assert.equal((await registry.routing()).shadow, null, 'the shadow leaves with its experiment');
    const two = await app.inject({
      method: 'POST',
      url: '/v1/experiments',
      headers: headers(),
      payload: { candidates: ['v000003', 'v000004'], reason: 'both', mode: 'shadow' },
    });
    assert.equal(two.statusCode, 400, 'one candidate per shadow');
  });

  it('holds its lock file only while it is its own', async () => {
    // Another process took the lock over (it found it stale): the first holder leaves it alone.
    await withFileLock(dir, 'test.lock', async () => {
      await writeFile(join(dir, 'test.lock'), 'someone else');
    });
    assert.equal(await readFile(join(dir, 'test.lock'), 'utf8'), 'someone else');
    await rm(join(dir, 'test.lock'));
    await withFileLock(dir, 'test.lock', () => Promise.resolve());
    await assert.rejects(readFile(join(dir, 'test.lock')), /ENOENT/, 'its own lock is removed');
  });

  it('answers what cannot be with clear codes', async () => {
    const cases: { url: string; payload?: object; status: number; error: string }[] = [
      { url: '/v1/experiments/exp-999999', status: 404, error: 'FW_UNKNOWN_EXPERIMENT' },
      { url: '/v1/experiments/nope', status: 400, error: 'FW_BAD_REQUEST' },
      {
        url: '/v1/experiments',
        payload: { candidate: 'v000001', reason: 'the champion' },
        status: 409,
        error: 'FW_EXPERIMENT_CONFLICT',
      },
      {
        url: '/v1/experiments',
        payload: { candidate: 'v000042', reason: 'unknown' },
        status: 404,
        error: 'FW_UNKNOWN_VERSION',
      },
      {
        url: '/v1/experiments',
        payload: { candidate: 'v000002', reason: 'down', steps: [0.5, 0.1] },
        status: 400,
        error: 'FW_BAD_REQUEST',
      },
      {
        url: '/v1/experiments',
        payload: { candidate: 'v000002', reason: 'all of it', steps: [0.5, 1] },
        status: 400,
        error: 'FW_BAD_REQUEST',
      },
      {
        url: '/v1/experiments',
        payload: { candidate: 'v000002', reason: 'cannot finish', minOutcomes: 5000, budget: 10000 },
        status: 400,
        error: 'FW_BAD_REQUEST',
      },
      {
        url: '/v1/experiments',
        payload: { candidate: 'v000002', reason: 'x', primary: 'clicks' },
        status: 400,
        error: 'FW_BAD_REQUEST',
      },
      {
        url: '/v1/experiments/exp-000001/explode',
        payload: { reason: 'x' },
        status: 400,
        error: 'FW_BAD_REQUEST',
      },
    ];
    for (const c of cases) {
      const response = await app.inject({
        method: c.payload ? 'POST' : 'GET',
        url: c.url,
        headers: headers(),
        ...(c.payload ? { payload: c.payload } : {}),
      });
      assert.equal(response.statusCode, c.status, `${c.url} ${JSON.stringify(c.payload)}: ${response.body}`);
      assert.equal(code(response.body), c.error, c.url);
    }
  });
});
