// The registry admin API through fastify's inject: auth, validation, limits and the operations.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { TokenTable } from '../../services/common/auth.js';
import { ERROR_CODES, type ErrorCode } from '../../services/common/error-codes.js';
import { toArtifacts } from '../../services/model/artifacts.js';
import { initBackend } from '../../services/model/backend.js';
import { HeuristicBaseline } from '../../services/model/baseline.js';
import { FeatureSpec } from '../../services/model/features.js';
import { LogisticRegression } from '../../services/model/models.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { buildRegistryApp } from '../../services/registry/http.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { testRuntime } from '../helpers/kafka.js';

const ADMIN = 'admin-token-0123456789';
const LABELER = 'labeler-token-0123456789';
const spec = new FeatureSpec();

describe('registry admin API', () => {
  let dir: string;
  let app: FastifyInstance;
  let files: Record<string, string>;
  const auth = (token = ADMIN) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    await initBackend(undefined, 'wasm');
    dir = await mkdtemp(join(tmpdir(), 'flywheel-http-'));
    const admin = new RegistryAdmin(new FileModelRegistry(dir), spec, null, testRuntime().logger);
    const tokens = new TokenTable()
      .add(ADMIN, { id: 'ops', role: 'admin' })
      .add(LABELER, { id: 'ann', role: 'labeler' });
    app = buildRegistryApp({ admin, tokens, bodyLimit: 2 * 1024 * 1024 });
    const model = new LogisticRegression(spec.dimension, spec.maxNonZero);
    const artifacts = await toArtifacts(model, spec);
    model.dispose();
    files = Object.fromEntries(Object.entries(artifacts.files).map(([n, b]) => [n, b.toString('base64')]));
  });
  after(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses requests without a token, with an unknown token, or with the wrong role', async () => {
    const none = await app.inject({ method: 'GET', url: '/v1/models' });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<{ error: { code: string } }>().error.code, 'FW_UNAUTHORIZED');
    assert.equal(
      (await app.inject({ method: 'GET', url: '/v1/models', headers: auth('nope') })).statusCode,
      401,
    );
    const labeler = await app.inject({ method: 'GET', url: '/v1/models', headers: auth(LABELER) });
    assert.equal(labeler.statusCode, 403);
    assert.match(labeler.json<{ error: { message: string } }>().error.message, /role labeler/);
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });

  it('uploads a model, promotes it, rolls back, and keeps the history', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/v1/models',
      headers: auth(),
      payload: { files, description: 'zero model' },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json<{ version: string }>().version, 'v000001');
    const second = await app.inject({
      method: 'POST',
      url: '/v1/models',
      headers: auth(),
      payload: { files, description: 'again' },
    });
    assert.equal(second.json<{ version: string }>().version, 'v000002');

    const promote = (version: string) =>
      app.inject({
        method: 'POST',
        url: `/v1/models/${version}/promote`,
        headers: auth(),
        payload: { alias: 'champion', reason: 'test' },
      });
    assert.equal((await promote('v000001')).statusCode, 200);
    const moved = await promote('v000002');
    assert.deepEqual(moved.json<{ from: string; to: string }>(), {
      ...moved.json(),
      from: 'v000001',
      to: 'v000002',
    });
    const back = await app.inject({
      method: 'POST',
      url: '/v1/aliases/champion/rollback',
      headers: auth(),
      payload: { reason: 'bad' },
    });
    assert.equal(back.json<{ routing: { champion: string } }>().routing.champion, 'v000001');
    const history = await app.inject({ method: 'GET', url: '/v1/aliases/history', headers: auth() });
    assert.deepEqual(
      history.json<{ actor: string; to: string }[]>().map((m) => [m.actor, m.to]),
      [
        ['ops', 'v000001'],
        ['ops', 'v000002'],
        ['ops', 'v000001'],
      ],
    );
    const list = await app.inject({ method: 'GET', url: '/v1/models', headers: auth() });
    assert.equal(list.json<{ versions: unknown[] }>().versions.length, 2);
  });

  it('answers bad input with clear codes and changes nothing', async () => {
    const expect = async (request: InjectOptions, status: number, code: string) => {
      const response = await app.inject(request);
      assert.equal(response.statusCode, status, response.body);
      const body = response.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, code);
      assert.equal(ERROR_CODES[code as ErrorCode].status, status);
      return body.error.message;
    };
    const headers = auth();
    assert.match(
      await expect(
        {
          method: 'POST',
          url: '/v1/models/v000099/promote',
          headers,
          payload: { alias: 'champion', reason: 'x' },
        },
        404,
        'FW_UNKNOWN_VERSION',
      ),
      /v000099/,
    );
    await expect({ method: 'GET', url: '/v1/models/latest', headers }, 400, 'FW_BAD_REQUEST');
    await expect(
      { method: 'POST', url: '/v1/models/v000001/promote', headers, payload: { alias: 'king', reason: 'x' } },
      400,
      'FW_BAD_REQUEST',
    );
    await expect(
      {
        method: 'POST',
        url: '/v1/models/v000001/promote',
        headers,
        payload: { alias: 'challenger', reason: 'x', challengerWeight: 7 },
      },
      400,
      'FW_BAD_REQUEST',
    );
    await expect(
      { method: 'POST', url: '/v1/aliases/shadow/rollback', headers, payload: { reason: 'x' } },
      409,
      'FW_NOTHING_TO_ROLL_BACK',
    );
    await expect(
      { method: 'POST', url: '/v1/models', headers, payload: 'plain text' },
      415,
      'FW_UNSUPPORTED_MEDIA_TYPE',
    );
    await expect(
      {
        method: 'POST',
        url: '/v1/models',
        headers: { ...headers, 'content-type': 'application/json' },
        payload: '{"files": ',
      },
      400,
      'FW_BAD_REQUEST',
    );
    await expect(
      {
        method: 'POST',
        url: '/v1/models',
        headers,
        payload: { files: { 'manifest.json': 'x'.repeat(3 * 1024 * 1024) }, description: 'big' },
      },
      413,
      'FW_BODY_TOO_LARGE',
    );

    const foreign = await toArtifacts(new HeuristicBaseline(), new FeatureSpec({ hashBits: 12 }));
    const foreignFiles = Object.fromEntries(
      Object.entries(foreign.files).map(([n, b]) => [n, b.toString('base64')]),
    );
    assert.match(
      await expect(
        {
          method: 'POST',
          url: '/v1/models',
          headers,
          payload: { files: foreignFiles, description: 'other spec' },
        },
        422,
        'FW_FEATURE_SPEC_MISMATCH',
      ),
      /feature spec/,
    );
    const truncated = {
      ...files,
      'weights.bin': Buffer.from(files['weights.bin']!, 'base64').subarray(0, 100).toString('base64'),
    };
    await expect(
      { method: 'POST', url: '/v1/models', headers, payload: { files: truncated, description: 'cut' } },
      500,
      'FW_ARTIFACT_CORRUPT',
    );
    await expect({ method: 'GET', url: '/nowhere', headers }, 404, 'FW_NOT_FOUND');

    const list = await app.inject({ method: 'GET', url: '/v1/models', headers });
    assert.equal(list.json<{ versions: unknown[] }>().versions.length, 2, 'no version was added');
    assert.equal(list.json<{ routing: { champion: string } }>().routing.champion, 'v000001');
  });
});
