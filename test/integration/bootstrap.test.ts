// `flywheel bootstrap`: three days old history from a file (with bad lines in it) replayed as
// fast as the broker takes it through the real scorer, joiner and trainer. Every click the
// history can close is labeled as an independent brute-force join of the file's events says, the
// trainer takes in each label once, a champion serves and a checkpoint is left; live traffic
// then closes the history's last windows (labeled as the reference says too) and is scored by
// that champion.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readHistory, replayHistory } from '../../services/cli/bootstrap.js';
import type {
  ClickEvent,
  LabeledExample,
  Prediction,
  PurchaseEvent,
} from '../../services/common/contracts.js';
import { createProducer } from '../../services/common/kafka.js';
import { partitionOf } from '../../services/common/partitioner.js';
import { loadJoinerConfig } from '../../services/joiner/config.js';
import { Joiner } from '../../services/joiner/service.js';
import { initBackend } from '../../services/model/backend.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { loadScorerConfig } from '../../services/scorer/config.js';
import { MemoryReviewSink } from '../../services/scorer/review.js';
import { Scorer } from '../../services/scorer/service.js';
import { ShopSimulation } from '../../services/simulator/generator.js';
import { loadTrainerConfig } from '../../services/trainer/config.js';
import { Trainer } from '../../services/trainer/service.js';
import { TopicCollector } from '../helpers/collect.js';
import { eventInputs, reference } from '../helpers/join-reference.js';
import { createTestTopics, testRuntime } from '../helpers/kafka.js';

const HOUR = 3600_000;
const PARTITIONS = 3;

describe('bootstrap from history', () => {
  const runtime = testRuntime('bootstrap');
  let dir: string;
  let previousRegistry: string | undefined;

  before(async () => {
    await initBackend(runtime.logger);
    dir = await mkdtemp(join(tmpdir(), 'flywheel-bootstrap-'));
    previousRegistry = process.env.FW_REGISTRY_DIR;
    process.env.FW_REGISTRY_DIR = join(dir, 'registry');
  });
  after(async () => {
    if (previousRegistry === undefined) delete process.env.FW_REGISTRY_DIR;
    else process.env.FW_REGISTRY_DIR = previousRegistry;
    await rm(dir, { recursive: true, force: true });
  });

  it('labels the history as a brute-force join does, leaves a champion and a checkpoint, and live traffic goes on from there', async () => {
    const startTime = Date.now() - 72 * HOUR;
    const simulation = new ShopSimulation({ seed: 61, startTime, trafficRate: 0.3 });
    const clicks: ClickEvent[] = [];
    const purchases: PurchaseEvent[] = [];
    while (clicks.length + purchases.length < 5000) {
      const e = simulation.next();
      if (e.type === 'click') clicks.push(e.click);
      else purchases.push(e.purchase);
    }
    // Lines as a shop's export would have them, interleaved, with three a bootstrap must skip.
    const file = join(dir, 'history.jsonl');
    const lines = [...clicks, ...purchases]
      .sort((a, b) => a.eventTime - b.eventTime)
      .map((e) => JSON.stringify(e));
    lines.splice(10, 0, '{not json');
    lines.splice(20, 0, JSON.stringify({ ...clicks[0], eventId: 'no-user', userId: undefined }));
    lines.splice(30, 0, JSON.stringify({ ...purchases[0], eventId: 'absurd', quantity: -3 }));
    await writeFile(file, `${lines.join('\n')}\n`);

    const history = await readHistory([file], runtime, {
      now: Date.now(),
      maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
    });
    assert.equal(history.clicks.length, clicks.length);
    assert.equal(history.purchases.length, purchases.length);
    assert.deepEqual(
      history.invalid.map((i) => i.line),
      [11, 21, 31],
    );
    assert.match(history.invalid[1]!.reason, /userId/);
    assert.match(history.invalid[2]!.reason, /quantity/);

    const topics = await createTestTopics(
      runtime,
      ['clicks', 'purchases', 'repartitioned', 'predictions', 'feedback', 'human', 'dlq', 'updates'],
      PARTITIONS,
    );
    const n = topics.names;
    const group = `test.bootstrap.${n.clicks}`;
    const joinerConfig = {
      ...loadJoinerConfig({}),
      FW_JOINER_GROUP: `${group}.joiner`,
      FW_JOINER_TRANSACTIONAL_ID: `${group}.joiner`,
      FW_SCORER_GROUP: `${group}.scorer`,
      FW_JOIN_IDLE_MS: 2_000,
      FW_JOIN_PROGRESS_POLL_MS: 100,
      FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
    };
    const scorer = new Scorer({
      runtime,
      http: false,
      reviewSink: new MemoryReviewSink(),
      config: { ...loadScorerConfig({}), FW_SCORER_GROUP: `${group}.scorer` },
      topics: { clicks: n.clicks, predictions: n.predictions, deadLetters: n.dlq, modelUpdates: n.updates },
    });
    const joiner = new Joiner({
      runtime,
      http: false,
      config: joinerConfig,
      topics: {
        clicks: n.clicks,
        predictions: n.predictions,
        purchases: n.purchases,
        repartitioned: n.repartitioned,
        feedback: n.feedback,
        deadLetters: n.dlq,
      },
    });
    const trainerDir = join(dir, 'trainer');
    const trainer = new Trainer({
      runtime,
      http: false,
      config: {
        ...loadTrainerConfig({}),
        FW_TRAINER_GROUP: `${group}.trainer`,
        FW_TRAINER_DIR: trainerDir,
        FW_TRAINER_HOLDOUT: 500,
        FW_TRAINER_WARM_START: false,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
      },
      topics: { feedback: n.feedback, humanLabels: n.human, deadLetters: n.dlq, modelUpdates: n.updates },
    });
    const feedback = await new TopicCollector<LabeledExample>(runtime.kafka, n.feedback, (b) =>
      runtime.codecs.labeledExample.decode(b),
    ).start();
    const predictions = await new TopicCollector<Prediction>(runtime.kafka, n.predictions, (b) =>
      runtime.codecs.prediction.decode(b),
    ).start();
    await scorer.start();
    await joiner.start();
    await trainer.start();
    const producer = createProducer(runtime.kafka);
    await producer.connect();
    try {
      const report = await replayHistory({
        runtime,
        history,
        topics: {
          clicks: n.clicks,
          purchases: n.purchases,
          repartitioned: n.repartitioned,
          predictions: n.predictions,
          feedback: n.feedback,
        },
        groups: {
          scorer: `${group}.scorer`,
          joiner: `${group}.joiner`,
          repartition: `${group}.joiner.repartition`,
          trainer: `${group}.trainer`,
        },
        settleMs: joinerConfig.FW_JOIN_IDLE_MS + 3_000,
        timeoutMs: 300_000,
      });

      // The independent reference: every click's label from the file's events, all at once.
      const inputs = eventInputs(clicks, purchases);
      const expected = reference(inputs, {
        windowMs: joinerConfig.FW_JOIN_WINDOW_MS,
        match: joinerConfig.FW_JOIN_MATCH,
        attribution: joinerConfig.FW_JOIN_ATTRIBUTION,
      });
      const labelsOf = () => {
        const latest = new Map<string, LabeledExample>();
        for (const { value } of feedback.records) {
          const seen = latest.get(value.eventId);
          if (!seen || value.revision > seen.revision) latest.set(value.eventId, value);
        }
        return latest;
      };
      const labeled = labelsOf();
      assert.equal(report.labeled, labeled.size);
      assert.equal(report.labeled + report.open, clicks.length);
      assert.ok(report.labeled > 0.7 * clicks.length, `${report.labeled} of ${clicks.length} labeled`);
      for (const [eventId, e] of labeled)
        assert.equal(
          e.label,
          expected.get(eventId),
          `label of ${eventId} (revision ${e.revision}; joiner ${JSON.stringify(joiner.counters())})`,
        );
      // What is left open is the history's end, never a gap in it.
      const lastTime = Math.max(...clicks.map((c) => c.eventTime), ...purchases.map((p) => p.eventTime));
      for (const c of clicks)
        if (!labeled.has(c.eventId))
          assert.ok(c.eventTime > lastTime - 4 * joinerConfig.FW_JOIN_WINDOW_MS, `${c.eventId} left open`);
      // Each label taken in once by the trainer, which leaves a champion and a checkpoint.
      assert.equal(trainer.learned + trainer.heldOut, feedback.records.length);
      const judged = await trainer.proposeCandidate('operator');
      assert.ok(judged, 'a candidate was judged');
      // A refused candidate has the baseline published after it: the champion is read after that.
      await trainer.registryChangesSettled();
      const registry = new FileModelRegistry(join(dir, 'registry'));
      const champion = (await registry.routing()).champion;
      assert.ok(champion, 'a champion serves');
      await trainer.checkpoint();
      assert.ok(existsSync(join(trainerDir, 'trainer.ckpt')));

      // Live traffic: one click and purchase for a user of each partition, now. It moves event
      // time past the history's last windows, and is scored by the champion.
      while (scorer.manager.current.routing.champion !== champion) await once(scorer.manager, 'swapped');
      const live: ClickEvent[] = [];
      for (let i = 0; live.length < PARTITIONS; i++) {
        const userId = `live-${i}`;
        if (partitionOf(userId, PARTITIONS) !== live.length) continue;
        live.push({
          ...clicks[0]!,
          eventId: `live-click-${i}`,
          userId,
          sessionId: userId,
          eventTime: Date.now(),
        });
      }
      await producer.send({
        topic: n.clicks,
        messages: await Promise.all(
          live.map(async (c) => ({ key: c.userId, value: await runtime.codecs.click.encode(c) })),
        ),
      });
      await producer.send({
        topic: n.purchases,
        messages: await Promise.all(
          live.map(async (c, i) => ({
            key: c.userId,
            value: await runtime.codecs.purchase.encode({
              eventId: `live-purchase-${i}`,
              userId: c.userId,
              sessionId: c.sessionId,
              itemId: c.itemId,
              category: c.category,
              price: c.price,
              quantity: 1,
              eventTime: c.eventTime + 1,
            }),
          })),
        ),
      });
      const liveIds = new Set(live.map((c) => c.eventId));
      await predictions.until(
        (records) => records.filter((r) => liveIds.has(r.value.eventId)).length >= live.length,
        'the live clicks scored',
        60_000,
      );
      for (const { value } of predictions.records.filter((r) => liveIds.has(r.value.eventId)))
        assert.equal(value.modelVersion, champion, 'live traffic is scored by the champion');
      await feedback.until(
        () => clicks.every((c) => labelsOf().has(c.eventId)),
        'every history click labeled once live traffic came',
        120_000,
      );
      for (const [eventId, e] of labelsOf())
        if (!liveIds.has(eventId)) assert.equal(e.label, expected.get(eventId), `label of ${eventId}`);
    } finally {
      await producer.disconnect();
      await trainer.stop();
      await joiner.stop();
      await scorer.stop();
      await feedback.stop();
      await predictions.stop();
      await topics.cleanup();
    }
  });
});
