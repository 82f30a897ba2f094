// The operator console in headless Chromium (Debian's, driven by playwright-core), against real
// parts: a registry with trained versions, an alias history and an experiment the controller's
// core ticked; a monitor reading predictions and labels from Kafka; a labeling API on Redis with
// a labeled task; dead letters the monitor itself wrote for garbage on its input; the registry's
// admin API for the console's promote button. Every view is opened and checked for its data;
// screenshots go to test-artifacts/. A wrong token is refused and the login is shown again.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TokenTable } from '../../services/common/auth.js';
import { createProducer } from '../../services/common/kafka.js';
import { buildConsoleApp } from '../../services/console/app.js';
import { FeatureSpec } from '../../services/model/features.js';
import { versionReference } from '../../services/model/profile.js';
import { loadMonitorConfig } from '../../services/monitor/config.js';
import { Monitor } from '../../services/monitor/service.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { rampFor } from '../../services/registry/experiment-admin.js';
import { buildRegistryApp } from '../../services/registry/http.js';
import { ExperimentStore, newExperiment } from '../../services/registry/experiments.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { tick } from '../../services/rollout/controller.js';
import { buildTrainerApp } from '../../services/trainer/http.js';
import { DEFAULT_LABEL_POLICY, LabelMerger } from '../../services/trainer/label-policy.js';
import { heldExamples, registerTrained } from '../helpers/held-examples.js';
import { createTestTopics, testRuntime, type TestTopics } from '../helpers/kafka.js';
import { reviewPayload, startLabeling, type LabelingHarness } from '../helpers/labeling.js';
import { servedOutcomes, servedPredictions } from '../helpers/monitor.js';
import { sampleRecords } from '../helpers/records.js';

const ADMIN = 'console-admin-token-0123456789';
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const MINUTE = 60_000;

/** An experiment file as the controller leaves it after two looks. */
function experimentsFile(champion: string, candidate: string) {
  const record = newExperiment('exp-000001', {
    candidate,
    config: rampFor({ primary: 'purchaseRate', steps: [0.1, 0.5], minOutcomes: 10 }),
    actor: 'ops',
    reason: 'the trainer gate passed it',
    now: 0,
  });
  const file = { experiments: [record], offsets: {} };
  const arm = (n: number, mean: number) => ({ purchaseRate: { n, mean, m2: n * mean * (1 - mean) } });
  tick(file, { champion, now: Date.now() - 3 * MINUTE, summaries: new Map() });
  for (const [k, at] of [
    [1, 2],
    [2, 1],
    [3, 0],
  ] as const) {
    const stats = { control: arm(300 * k, 0.1), candidate: arm(40 * k, 0.14) };
    tick(file, {
      champion,
      now: Date.now() - at * MINUTE,
      summaries: new Map([['exp-000001', { stats, strata: { '0.1': stats } }]]),
    });
  }
  return file;
}

describe('operator console', () => {
  const runtime = testRuntime('console');
  const spec = new FeatureSpec();
  let dir: string;
  let topics: TestTopics<'predictions' | 'feedback' | 'dlq' | 'updates'>;
  let producer: Producer;
  let monitor: Monitor;
  let labeling: LabelingHarness;
  let app: FastifyInstance;
  let registryApp: FastifyInstance;
  let trainerApp: FastifyInstance;
  let registry: FileModelRegistry;
  let candidate: string;
  let browser: Browser;
  let base: string;
  let champion: string;
  let sawChampion: () => void;
  const monitorSawChampion = new Promise<void>((resolve) => (sawChampion = resolve));
  let lookWaiters: (() => void)[] = [];
  const nextLook = () => new Promise<void>((resolve) => lookWaiters.push(resolve));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fw-console-'));
    registry = new FileModelRegistry(join(dir, 'registry'));
    const held = heldExamples(spec, 3000);
    // The champion's reference: traffic of four categories alike; the live traffic below leans on one.
    const now = Date.now();
    const referenceTraffic = servedPredictions(spec, {
      seed: 1,
      n: 4000,
      from: now - 120 * MINUTE,
      spanMs: 60 * MINUTE,
      weights: [1, 1, 1, 1],
    });
    const metrics = (logLoss: number) => ({
      examples: 600,
      logLoss,
      auc: 0.71,
      calibrationError: 0.012,
      lift: 2.1,
      baselineLogLoss: 0.351,
    });
    champion = await registerTrained(registry, spec, held.slice(0, 1500), {
      by: 'trainer',
      metrics: metrics(0.3322),
      reference: versionReference(
        spec,
        referenceTraffic.map((p) => ({ ...p, label: 0 })),
      ),
    });
    candidate = await registerTrained(registry, spec, held, {
      by: 'trainer',
      metrics: metrics(0.3217),
      parent: champion,
    });
    await registry.moveAlias('champion', champion, { actor: 'ops', reason: 'first model' });
    await writeFile(
      join(dir, 'registry', 'experiments.json'),
      JSON.stringify(experimentsFile(champion, candidate)),
    );

    topics = await createTestTopics(runtime, ['predictions', 'feedback', 'dlq', 'updates'], 2);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    monitor = new Monitor({
      runtime,
      onLook: (look) => {
        for (const resolve of lookWaiters) resolve();
        lookWaiters = [];
        if (look.observations.some((o) => o.version === champion && o.drift?.drifted.length)) sawChampion();
      },
      registryDir: join(dir, 'registry'),
      config: {
        ...loadMonitorConfig({}),
        FW_MONITOR_DIR: join(dir, 'monitor'),
        FW_MONITOR_HTTP_PORT: 0,
        FW_MONITOR_LOOK_MS: 200,
        FW_MONITOR_GROUP: `test.console.${topics.names.predictions}`,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 6000,
      },
      topics: {
        predictions: topics.names.predictions,
        feedback: topics.names.feedback,
        deadLetters: topics.names.dlq,
      },
    });
    await monitor.start();
    const live = servedPredictions(spec, {
      seed: 2,
      n: 3000,
      from: now - 40 * MINUTE,
      spanMs: 40 * MINUTE,
      weights: [1, 1, 1, 6],
      version: champion,
    });
    await producer.send({
      topic: topics.names.predictions,
      messages: await Promise.all(
        live.map(async (p) => ({ key: p.userId, value: await runtime.codecs.prediction.encode(p) })),
      ),
    });
    // Garbage on the monitor's input: it dead-letters both, then reads them back for the console.
    await producer.send({
      topic: topics.names.predictions,
      messages: [
        { key: 'garbage-json', value: Buffer.from('{"score": 0.5, "not": "avro"}') },
        { key: 'garbage-schema', value: Buffer.from([0, 0, 0, 0x7f, 0x7f, 1, 2, 3]) },
      ],
    });
    // Their outcomes, as the joiner writes them: a purchase for about one click in ten.
    const labels = servedOutcomes(live, { every: 10, timeoutMs: 30 * MINUTE, now });
    await producer.send({
      topic: topics.names.feedback,
      messages: await Promise.all(
        labels.map(async (l) => ({ key: l.userId, value: await runtime.codecs.labeledExample.encode(l) })),
      ),
    });

    labeling = await startLabeling(runtime, {
      tokens: new TokenTable()
        .add('ann-console-token-0123456', { id: 'ann', role: 'labeler' })
        .add(ADMIN, { id: 'ops', role: 'admin' }),
      labelsRequired: 1,
      guidelines: 'g',
    });
    for (let n = 1; n <= 4; n++)
      await labeling.queue.add({ id: `task-${n}`, priority: n, payload: reviewPayload(n) });
    const leased = await labeling.queue.next('ann');
    await labeling.queue.submit(leased!.id, 'ann', { label: 1 });
    await labeling.app.listen({ host: '127.0.0.1', port: 0 });

    // The trainer's API over a label merger that judged two labelers against 40 outcomes: ann
    // always right, bob always wrong.
    const merger = new LabelMerger(DEFAULT_LABEL_POLICY);
    for (let i = 0; i < 40; i++) {
      const example = {
        ...labels[i % labels.length]!,
        predictionId: `judged-${i}`,
        label: i % 3 === 0 ? 1 : 0,
        // Over three days: agreement per day is drawn.
        labelTime: Date.now() - (i % 3) * 86_400_000,
      };
      for (const [labelerId, right] of [
        ['ann', true],
        ['bob', false],
      ] as const)
        merger.addHumanLabel({
          ...sampleRecords(Date.now()).humanLabel,
          labelId: `judged-${i}|${labelerId}`,
          predictionId: example.predictionId,
          labelerId,
          label: right ? example.label : 1 - example.label,
        });
      merger.addExample({ ...example, labelSource: example.label ? 'outcome' : 'timeout' });
    }
    trainerApp = buildTrainerApp({
      metrics: new Registry(),
      adminToken: ADMIN,
      logger: runtime.logger,
      health: () => ({ ok: true }),
      readiness: () => ({ ready: true }),
      propose: () => Promise.resolve(null),
      labelers: () => ({ labelers: merger.reliability.reports(), counters: { ...merger.counters } }),
    });
    await trainerApp.listen({ host: '127.0.0.1', port: 0 });

    registryApp = buildRegistryApp({
      admin: new RegistryAdmin(
        registry,
        spec,
        { producer, codecs: runtime.codecs, topic: topics.names.updates },
        runtime.logger,
      ),
      tokens: new TokenTable().add(ADMIN, { id: 'ops', role: 'admin' }),
    });
    await registryApp.listen({ host: '127.0.0.1', port: 0 });
    app = await buildConsoleApp({
      registry,
      experiments: new ExperimentStore(join(dir, 'registry')),
      tokens: new TokenTable().add(ADMIN, { id: 'ops', role: 'admin' }),
      adminToken: ADMIN,
      monitorUrl: `http://127.0.0.1:${monitor.port}`,
      labelingUrl: `http://127.0.0.1:${(labeling.app.server.address() as { port: number }).port}`,
      trainerUrl: `http://127.0.0.1:${(trainerApp.server.address() as { port: number }).port}`,
      registryUrl: `http://127.0.0.1:${(registryApp.server.address() as { port: number }).port}`,
      services: [
        { name: 'monitor', url: `http://127.0.0.1:${monitor.port}` },
        { name: 'gone', url: 'http://127.0.0.1:9' },
      ],
      upstreamTimeoutMs: 3000,
      metrics: runtime.metrics,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
    mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await registryApp?.close();
    await trainerApp?.close();
    await labeling?.close();
    await monitor?.stop();
    await producer?.disconnect();
    await topics?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(page: Page, view: string): Promise<void> {
    await page.click(`#tabs button[data-view="${view}"]`);
    await page.waitForSelector(`#view[data-loaded="${view}"]`);
    await page.screenshot({ path: join(ARTIFACTS, `console-${view}.png`), fullPage: true });
  }

  it('refuses a wrong token, then shows every view with its data', { timeout: 180_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(base);
    await page.fill('#token', 'not-the-admin-token-000000');
    await page.click('#login-form button');
    await page.waitForFunction("document.getElementById('login-error').textContent !== ''");
    assert.equal(await page.isVisible('#login'), true, 'the login is shown again');

    await page.fill('#token', ADMIN);
    await page.click('#login-form button');
    await page.waitForSelector('#view[data-loaded="models"]');
    await page.screenshot({ path: join(ARTIFACTS, 'console-models.png'), fullPage: true });
    const versions = await page.locator('#versions tbody tr').count();
    assert.equal(versions, 2, `${versions} versions listed`);
    assert.match(await page.locator('#versions').innerText(), new RegExp(`${champion}\\s+champion`));
    assert.match(
      await page.locator('#versions').innerText(),
      new RegExp(`${candidate}\\s+ftrl\\s+${champion}[^\\n]+0\\.3217[^\\n]+0\\.3510`),
      'its parent, and its holdout log loss beside the baseline',
    );
    assert.match(await page.locator('#alias-history').innerText(), /first model/);

    await open(page, 'experiments');
    assert.match(await page.locator('#experiments').innerText(), /exp-000001/);
    assert.ok((await page.locator('.uplot').count()) >= 2, 'the interval and the share are drawn');

    // The monitor has read the predictions once a look names the champion with its drift, and
    // the labels once its series counts them all.
    await monitorSawChampion;
    const labelsSeen = async () => {
      const response = await fetch(`http://127.0.0.1:${monitor.port}/v1/monitor/series`);
      const { series } = (await response.json()) as { series: { points: { labels: number }[] }[] };
      return series.flatMap((x) => x.points).reduce((n, p) => n + p.labels, 0);
    };
    while ((await labelsSeen()) < 3000) await nextLook();
    await open(page, 'monitoring');
    assert.ok((await page.locator('.uplot').count()) >= 3, 'log loss, purchase rate and volume are drawn');
    const labeled = await page.evaluate(
      "fetch('/v1/console/monitoring', { headers: { authorization: 'Bearer ' + sessionStorage.getItem('flywheel.console.token') } })" +
        '.then((r) => r.json()).then((b) => b.series.body.series[0].points.reduce((n, p) => n + p.labels, 0))',
    );
    assert.equal(labeled, 3000, 'every label is in the series');
    const drift = await page.locator(`#drift-${champion}-champion`).innerText();
    assert.match(drift, /category[^\n]*drifted/, 'the shifted category is flagged');

    await open(page, 'labeling');
    assert.match(await page.locator('#queue').innerText(), /\b3\b/, 'three of four tasks wait');
    assert.match(await page.locator('#labelers').innerText(), /ann\s+1\b/);
    assert.ok((await page.locator('.uplot').count()) >= 1, 'labels per hour are drawn');
    // Against outcomes: ann is trusted, bob (always wrong) is not.
    const reliability = await page.locator('#reliability').innerText();
    assert.match(reliability, /ann\s+40\s+1\.000/);
    assert.match(reliability, /bob\s+40\s+0\.000[^\n]*\b0\s+wrong as often as right/);
    assert.equal(await page.locator('.u-title', { hasText: 'agreement with outcomes per day' }).count(), 1);

    // Both garbage records were dead-lettered by the monitor and read back from the dead-letter topic.
    const lettersSeen = async () => {
      const response = await fetch(`http://127.0.0.1:${monitor.port}/v1/monitor/dead-letters`);
      return ((await response.json()) as { newest: unknown[] }).newest.length;
    };
    while ((await lettersSeen()) < 2) await nextLook();
    await open(page, 'dead-letters');
    const totals = await page.locator('#dead-letter-totals').innerText();
    assert.match(totals, new RegExp(`${topics.names.predictions}\\s+FW_BAD_MAGIC_BYTE\\s+monitor\\s+1`));
    assert.match(totals, /FW_UNKNOWN_SCHEMA_ID/);
    const newest = await page.locator('#dead-letters').innerText();
    assert.match(newest, /garbage-json[\s\S]*\{"score": 0\.5, "not": "avro"\}/, 'text is shown as text');
    assert.match(newest, /0000007f7f010203/, 'bytes are shown as hex');

    await open(page, 'pipeline');
    const pipeline = await page.locator('#pipeline').innerText();
    assert.match(
      pipeline,
      /monitor\s+ready\s[^\n]*newest predictions: \d/,
      'the monitor, ready, with its input ages',
    );
    assert.match(
      pipeline,
      new RegExp(`monitor[^\\n]+${topics.names.predictions}: \\d+`),
      'and its consumer lag',
    );
    assert.match(pipeline, /gone\s+unreachable/);

    // Promote from the console: the registry's admin API moves the alias, in the operator's name.
    page.once('dialog', (dialog) => void dialog.accept('the console test promotes the candidate'));
    await open(page, 'models');
    await page.click(`#versions button[data-action="/v1/console/models/${candidate}/promote#champion"]`);
    await page.waitForFunction(
      "document.getElementById('alias-history')?.innerText.includes('the console test promotes')",
    );
    assert.equal((await registry.routing()).champion, candidate);
    const move = (await registry.history()).at(-1);
    assert.equal(move?.actor, 'ops');
    assert.match(await page.locator('#versions').innerText(), new RegExp(`${candidate}\\s+champion`));

    await page.click('#logout');
    assert.equal(await page.isVisible('#login'), true);
    assert.equal(await page.evaluate("sessionStorage.getItem('flywheel.console.token')"), null);
    assert.deepEqual(errors, []);
  });

  it('shows a service that does not answer as unreachable, and answers no JSON without the token', async () => {
    const denied = await app.inject({ method: 'GET', url: '/v1/console/models' });
    assert.equal(denied.statusCode, 401);
    const experiments = await app.inject({
      method: 'GET',
      url: '/v1/console/experiments',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    const [drawn] = experiments.json<{
      experiments: { looks: number; timeline: unknown[]; stats?: unknown }[];
    }>().experiments;
    assert.equal(drawn?.timeline.length, drawn?.looks, 'the newest experiment comes with its timeline');
    assert.equal(drawn?.stats, undefined, "the arms' sums stay on the server");
    const broken = await buildConsoleApp({
      registry: new FileModelRegistry(join(dir, 'registry')),
      experiments: new ExperimentStore(join(dir, 'registry')),
      tokens: new TokenTable().add(ADMIN, { id: 'ops', role: 'admin' }),
      adminToken: ADMIN,
      monitorUrl: 'http://127.0.0.1:9',
      labelingUrl: 'http://127.0.0.1:9',
      trainerUrl: 'http://127.0.0.1:9',
      registryUrl: 'http://127.0.0.1:9',
      upstreamTimeoutMs: 500,
      metrics: runtime.metrics,
    });
    const response = await broken.inject({
      method: 'GET',
      url: '/v1/console/monitoring',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    assert.equal(response.statusCode, 200);
    const body = response.json<{ series: { available: boolean; error: string } }>();
    assert.equal(body.series.available, false);
    assert.match(body.series.error, /127\.0\.0\.1:9/);
    await broken.close();
  });
});
