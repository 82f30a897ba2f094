// The whole loop on the real stack, every service in it: the simulated shop sends clicks and
// purchases (purchase propensity for one category jumps two thirds of the way through), the scorer scores
// them, the joiner labels predictions with their outcomes, the trainer learns from the labels
// and promotes gated versions, which the scorer swaps in and serves. The version promoted after
// the drift beats the champion of before the drift on the shop's next hour, which no model saw.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import { createProducer } from '../../services/common/kafka.js';
import { loadJoinerConfig } from '../../services/joiner/config.js';
import { Joiner } from '../../services/joiner/service.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import { loadScorerConfig } from '../../services/scorer/config.js';
import { Scorer } from '../../services/scorer/service.js';
import { simulateLabeledExamples } from '../../services/simulator/dataset.js';
import { runSimulator } from '../../services/simulator/runner.js';
import type { CandidateResult } from '../../services/trainer/candidates.js';
import { loadTrainerConfig } from '../../services/trainer/config.js';
import { Trainer } from '../../services/trainer/service.js';
import { TopicCollector } from '../helpers/collect.js';
import { createTestTopics, testRuntime } from '../helpers/kafka.js';
import { histogramTotals } from '../helpers/metrics.js';
import { logLossOf } from '../helpers/models.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('feedback loop, end to end', () => {
  const runtime = testRuntime('loop');
  const spec = new FeatureSpec();
  let producer: Producer;
  let registryDir: string;
  let trainerDir: string;
  let previousRegistry: string | undefined;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    await initBackend(runtime.logger);
    producer = createProducer(runtime.kafka);
    await producer.connect();
    registryDir = await mkdtemp(join(tmpdir(), 'flywheel-loop-registry-'));
    trainerDir = await mkdtemp(join(tmpdir(), 'flywheel-loop-trainer-'));
    previousRegistry = process.env.FW_REGISTRY_DIR;
    process.env.FW_REGISTRY_DIR = registryDir;
  });
  after(async () => {
    if (previousRegistry === undefined) delete process.env.FW_REGISTRY_DIR;
    else process.env.FW_REGISTRY_DIR = previousRegistry;
    await producer.disconnect();
    for (const cleanup of cleanups) await cleanup();
    await rm(registryDir, { recursive: true, force: true });
    await rm(trainerDir, { recursive: true, force: true });
  });

  it('clicks → scorer → joiner → trainer → promoted versions served; after the drift a new version beats the frozen one', async () => {
    const topics = await createTestTopics(
      runtime,
      ['clicks', 'purchases', 'repartitioned', 'predictions', 'feedback', 'human', 'dlq', 'updates'],
      3,
    );
    cleanups.push(() => topics.cleanup());
    const n = topics.names;
    const group = `test.loop.${n.clicks}`;
    // Six hours of shop traffic, two events per simulated second, ending at least an hour ago;
    // shoes sell far better from the fifth hour on. Four hours before the drift give several
    // candidates a chance to become champion. Windows of 30 minutes of event time.
    // The hour of day is a feature (buckets 0-6, 6-9, ... UTC), so the traffic starts at 20:00
    // UTC in every run: the drift at midnight, and the judged next hour (02:00-03:00) in the
    // bucket the versions after the drift learned. Started at any hour, the next hour could fall
    // in a bucket they never saw, and the test would pass or fail by the time of day.
    const startTime = Math.floor((Date.now() - 27 * HOUR) / DAY) * DAY + 20 * HOUR;
    const driftAt = startTime + 4 * HOUR;
    const simulation = {
      seed: 41,
      startTime,
      trafficRate: 2,
      drift: { atMs: driftAt - startTime, category: 'shoes', shift: 2.5 },
    };

    const scorer = new Scorer({
      runtime,
      http: false,
      config: { ...loadScorerConfig({}), FW_SCORER_GROUP: `${group}.scorer` },
      topics: { clicks: n.clicks, predictions: n.predictions, deadLetters: n.dlq, modelUpdates: n.updates },
    });
    const joiner = new Joiner({
      runtime,
      http: false,
      config: {
        ...loadJoinerConfig({}),
        FW_JOINER_GROUP: `${group}.joiner`,
        FW_JOINER_TRANSACTIONAL_ID: `${group}.joiner`,
        FW_JOIN_WINDOW_MS: 30 * 60_000,
        // The shop runs about 1,300 times faster than the clock here, and the scorer lags the
        // purchases by seconds, which are half an hour of event time: the joiner waits for the
        // scorer's progress, so the lateness only needs to cover disorder within a partition.
        FW_JOIN_ALLOWED_LATENESS_MS: 60_000,
        FW_JOIN_IDLE_MS: 5_000,
        FW_JOIN_IDLE_LAG_MS: 0,
        // The shop's day is yesterday: once every input is idle, the clock closes its last windows.
        FW_JOIN_LIVE_LAG_MS: 2 * DAY,
        FW_SCORER_GROUP: `${group}.scorer`,
        FW_JOIN_PROGRESS_POLL_MS: 100,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
      },
      topics: {
        clicks: n.clicks,
        predictions: n.predictions,
        purchases: n.purchases,
        repartitioned: n.repartitioned,
        feedback: n.feedback,
        deadLetters: n.dlq,
      },
    });
    const trainer = new Trainer({
      runtime,
      http: false,
      config: {
        ...loadTrainerConfig({}),
        FW_TRAINER_GROUP: `${group}.trainer`,
        FW_TRAINER_DIR: trainerDir,
        FW_TRAINER_HOLDOUT: 1500,
        FW_TRAINER_CANDIDATE_EVERY: 2500,
        FW_TRAINER_PROMOTE_TO: 'champion',
        FW_TRAINER_WARM_START: false,
        FW_CONSUMER_SESSION_TIMEOUT_MS: 6_000,
      },
      topics: { feedback: n.feedback, humanLabels: n.human, deadLetters: n.dlq, modelUpdates: n.updates },
    });
    const candidates: CandidateResult[] = [];
    trainer.on('candidate', (c) => candidates.push(c));
    const served = new Set<string>();
    let firstServed = () => undefined as void;
    const trainerVersionServed = new Promise<void>((resolve) => (firstServed = resolve));
    scorer.manager.on('swapped', (set) => {
      if (!set.routing.champion) return;
      served.add(set.routing.champion);
      firstServed();
    });
    // The traffic after the drift waits until a trainer version serves: however slow the machine,
    // the frozen champion is one that learned before the drift and served after it.
    const holdAtDrift = (eventTime: number) =>
      eventTime >= driftAt && served.size === 0
        ? Promise.race([trainerVersionServed, sleep(180_000, undefined, { ref: false })])
        : undefined;
    await scorer.start();
    await joiner.start();
    await trainer.start();
    try {
      const stats = await runSimulator({
        producer,
        codecs: runtime.codecs,
        logger: runtime.logger,
        simulation,
        // Paced, so versions are promoted and served while the traffic still flows.
        rate: 2500,
        maxEvents: null,
        durationMs: 6 * HOUR,
        // The purchases of the last clicks still come: they are not negatives for want of a future.
        settleMs: 30 * 60_000,
        malformedRate: 0,
        maxMessageBytes: runtime.config.FW_MAX_MESSAGE_BYTES,
        showProgress: false,
        clickTopic: n.clicks,
        purchaseTopic: n.purchases,
        hold: holdAtDrift,
      });
      // Every click is scored, joined with its outcome (the idle rule closes the last windows)
      // and taken in by the trainer.
      while (trainer.learned + trainer.heldOut < stats.clicks) await once(trainer, 'batch');
      assert.equal(trainer.learned + trainer.heldOut, stats.clicks, 'one labeled example per click');
      // However far the scorer lagged the purchases, no input came behind the watermark.
      const joined = joiner.counters();
      assert.equal((joined.latePurchases ?? 0) + (joined.latePredictions ?? 0), 0, JSON.stringify(joined));
      assert.equal(joined.corrections, 0, JSON.stringify(joined));
      await trainer.proposeCandidate('operator');
    } finally {
      await trainer.stop();
      await joiner.stop();
      await scorer.stop();
    }

    const registry = new FileModelRegistry(registryDir);
    const versions = await registry.list();
    const learnedTime = (v: (typeof versions)[number]) =>
      v.training.source === 'kafka' ? (v.training.newestLearnedTime ?? 0) : 0;
    const championMoves = (await registry.history()).filter((m) => m.alias === 'champion' && m.to);
    const champions = championMoves.map((m) => versions.find((v) => v.version === m.to)!);
    const frozen = champions.filter((v) => learnedTime(v) < driftAt).at(-1);
    const final = champions.at(-1);
    assert.ok(
      frozen,
      `a champion from before the drift (candidates: ${candidates.map((c) => c.decision.reasons.join('; ') || c.alias).join(' | ')})`,
    );
    assert.ok(final && learnedTime(final) > driftAt, 'a champion that learned from after the drift');

    // The loop closed: the scorer swapped in trainer versions, and their predictions came back
    // as labeled feedback.
    assert.ok(served.has(frozen.version), `the scorer served ${frozen.version}`);
    // Freshness of the versions that went live: the shop ended at least an hour before the wall
    // clock, which the wall clock's histogram counts and the event-time one does not.
    const wall = await histogramTotals(runtime.metrics, 'flywheel_scorer_outcome_to_live_seconds');
    const event = await histogramTotals(runtime.metrics, 'flywheel_scorer_outcome_to_live_event_seconds');
    assert.ok(event.count >= 1 && event.count === wall.count, `${event.count} versions live`);
    assert.ok(event.sum / event.count < 6 * 3600, `${event.sum / event.count} s in event time`);
    assert.ok(
      wall.sum / wall.count > event.sum / event.count + 1800,
      `${wall.sum / wall.count} s on the wall clock, ${event.sum / event.count} s in event time`,
    );
    // The same shop offline, an hour past the traffic: features and labels as they should be.
    const shop = simulateLabeledExamples({
      ...simulation,
      spec,
      clicks: Math.ceil(1.3 * (trainer.learned + trainer.heldOut)),
    });
    const shopClicks = new Map(shop.map((e) => [e.eventId, e]));
    const feedback = await new TopicCollector(runtime.kafka, n.feedback, (b) =>
      runtime.codecs.labeledExample.decode(b),
    ).start();
    try {
      await feedback.atLeast(trainer.learned + trainer.heldOut);
      // (Which trainer version: the one that served while the traffic still flowed. On a loaded
      // machine the trainer lags, and the last version before the drift may go live late.)
      const byVersion = new Set(feedback.records.map((r) => r.value.modelVersion));
      assert.ok(
        champions.some((v) => byVersion.has(v.version)),
        'feedback on predictions of a trainer version',
      );
      // The scorer's session features (Redis) are the offline definition's, for every click.
      const differing = feedback.records.filter(
        ({ value }) =>
          value.features.indices.join() !== shopClicks.get(value.eventId)?.features.indices.join(),
      );
      assert.equal(differing.length, 0, `features differ from the shop's for ${differing[0]?.value.eventId}`);
    } finally {
      await feedback.stop();
    }

    // On the shop's next hour (after the drift, never sent), the new champion is better. The
    // trainer's own last holdout is no judge here: after the clicks stop, the newest labels are
    // the closing of the last windows, not a sample of the shop.
    const nextHour = shop.filter(
      (e) => e.clickTime >= startTime + 6 * HOUR && e.clickTime < startTime + 7 * HOUR,
    );
    assert.ok(nextHour.length > 4000, `${nextHour.length} clicks in the next hour`);
    const frozenLoss = await logLossOf(registry, spec, frozen.version, nextHour);
    const finalLoss = await logLossOf(registry, spec, final.version, nextHour);
    assert.ok(
      finalLoss < frozenLoss,
      `the next hour: ${final.version} ${finalLoss.toFixed(4)} vs frozen ${frozen.version} ${frozenLoss.toFixed(4)}`,
    );
  });
});
