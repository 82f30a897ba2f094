// The retraining loop end to end on the real stack: labeled feedback in Kafka, the trainer
// learning and proposing candidates, the gate, the registry. Drift in purchase propensity is
// followed by promoted versions that beat the model frozen before it, each reproducible from its
// Kafka lineage; flipped labels produce only rejected candidates; a backfill from history (and a
// distilled student) is registered with a lineage that retrains to the same bytes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../../services/common/contracts.js';
import { createProducer, sendInChunks } from '../../services/common/kafka.js';
import { historySource } from '../../services/common/read-ranges.js';
import { initBackend } from '../../services/model/backend.js';
import { FeatureSpec } from '../../services/model/features.js';
import { RegistryAdmin } from '../../services/registry/admin.js';
import { ModelTraining } from '../../services/training/model-training.js';
import { FileModelRegistry } from '../../services/registry/store.js';
import type { CandidateResult } from '../../services/trainer/candidates.js';
import { loadTrainerConfig, type TrainerConfig } from '../../services/trainer/config.js';
import { kafkaHistory, resolveRanges } from '../../services/trainer/history.js';
import { Trainer } from '../../services/trainer/service.js';
import { createTestTopics, testRuntime } from '../helpers/kafka.js';
import { histogramTotals } from '../helpers/metrics.js';
import { logLossOf } from '../helpers/models.js';
import { encodeFeedback, simulatedFeedback } from '../../services/simulator/feedback.js';
import { simulatedTrainingExamples } from '../../services/simulator/dataset.js';

type Roles = 'feedback' | 'human' | 'dlq' | 'updates';

describe('retraining loop', () => {
  const runtime = testRuntime('trainer-loop');
  const spec = new FeatureSpec();
  let producer: Producer;
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    await initBackend(runtime.logger);
    producer = createProducer(runtime.kafka);
    await producer.connect();
  });
  after(async () => {
    await producer.disconnect();
    // Topics go at the end: a KafkaJS producer stalls once a topic it wrote to is deleted.
    for (const cleanup of cleanups) await cleanup();
  });

  /**
   * Own topics, checkpoint folder and registry; the trainer reads FW_REGISTRY_DIR. With one
   * partition the trainer reads examples in the order sent, so its holdout is the same every run.
   */
  async function setUp(name: string, partitions = 3) {
    const topics = await createTestTopics<Roles>(
      runtime,
      ['feedback', 'human', 'dlq', 'updates'],
      partitions,
    );
    const store = await mkdtemp(join(tmpdir(), `flywheel-${name}-`));
    const registryDir = await mkdtemp(join(tmpdir(), `flywheel-${name}-registry-`));
    const previous = process.env.FW_REGISTRY_DIR;
    process.env.FW_REGISTRY_DIR = registryDir;
    const registry = new FileModelRegistry(registryDir);
    const admin = new RegistryAdmin(registry, spec, null, runtime.logger);
    const modelTraining = new ModelTraining(admin.registry, admin.spec, runtime.logger, {
      kafka: kafkaHistory(historySource(runtime), spec),
      simulated: simulatedTrainingExamples,
    });
    return {
      topics,
      registry,
      admin,
      modelTraining,
      trainer: (config: Partial<TrainerConfig>, http = false) =>
        new Trainer({
          runtime,
          http,
          config: {
            ...loadTrainerConfig({}),
            FW_TRAINER_GROUP: `test.trainer.${topics.names.feedback}`,
            FW_TRAINER_DIR: store,
            ...config,
          },
          topics: {
            feedback: topics.names.feedback,
            humanLabels: topics.names.human,
            deadLetters: topics.names.dlq,
            modelUpdates: topics.names.updates,
          },
        }),
      send: async (examples: readonly LabeledExample[]) => {
        const encoded = await encodeFeedback(runtime, examples);
        for (let i = 0; i < encoded.length; i += 200)
          await sendInChunks(producer, topics.names.feedback, encoded.slice(i, i + 200));
      },
      async tearDown() {
        if (previous === undefined) delete process.env.FW_REGISTRY_DIR;
        else process.env.FW_REGISTRY_DIR = previous;
        cleanups.push(() => topics.cleanup());
        await rm(store, { recursive: true, force: true });
        await rm(registryDir, { recursive: true, force: true });
      },
    };
  }

  /** Resolves once the trainer has taken `count` examples in (learned or held out). */
  async function takenIn(trainer: Trainer, count: number): Promise<void> {
    while (trainer.learned + trainer.heldOut < count) await once(trainer, 'batch');
  }

  it('follows drift in purchase propensity: promoted versions beat the model frozen before it, and each retrains to the same bytes', async () => {
    const TOTAL = 16_000;
    // The drift starts at the event time of the middle example: shoes sell far better from then on.
    const probe = simulatedFeedback({ seed: 21, count: TOTAL, startTime: Date.UTC(2026, 10, 26) });
    const driftAt = (probe[TOTAL / 2] as LabeledExample).clickTime - Date.UTC(2026, 10, 26);
    const examples = simulatedFeedback({
      seed: 21,
      count: TOTAL,
      startTime: Date.UTC(2026, 10, 26),
      drift: { atMs: driftAt, category: 'shoes', shift: 2.5 },
    });
    const env = await setUp('drift');
    try {
      const trainer = env.trainer({
        FW_TRAINER_HOLDOUT: 1000,
        FW_TRAINER_CANDIDATE_EVERY: 3000,
        FW_TRAINER_PROMOTE_TO: 'champion',
      });
      const candidates: CandidateResult[] = [];
      trainer.on('candidate', (c) => candidates.push(c));
      await trainer.start();
      try {
        await env.send(examples.slice(0, TOTAL / 2));
        await takenIn(trainer, TOTAL / 2);
        await trainer.proposeCandidate('operator');
        const frozen = (await env.registry.routing()).champion;
        assert.ok(
          frozen,
          `a champion before the drift (candidates: ${JSON.stringify(candidates.map((c) => c.decision.reasons))})`,
        );
        const beforeDrift = candidates.length;

        await env.send(examples.slice(TOTAL / 2));
        await takenIn(trainer, TOTAL);
        await trainer.proposeCandidate('operator');
        const promoted = (await env.registry.routing()).champion as string;
        assert.notEqual(promoted, frozen, 'a version promoted after the drift');
        assert.ok(candidates.slice(beforeDrift).some((c) => c.alias === 'champion'));

        // The trainer's holdout: the newest post-drift examples, which neither model learned from.
        const holdout = trainer.learner.holdout;
        assert.ok(holdout.every((e) => e.labelTime >= Date.UTC(2026, 10, 26) + driftAt));
        const frozenLoss = await logLossOf(env.registry, spec, frozen, holdout);
        const promotedLoss = await logLossOf(env.registry, spec, promoted, holdout);
        assert.ok(
          promotedLoss < frozenLoss,
          `post-drift holdout log loss: promoted ${promotedLoss.toFixed(4)} vs frozen ${frozenLoss.toFixed(4)}`,
        );
      } finally {
        await trainer.stop();
      }

      // Every learned version that became champion has complete lineage and retrains to the
      // same bytes (the baseline served first, until the first learned model beat it).
      const firstLearned = (await env.registry.list()).find((v) => v.kind === 'ftrl')?.version;
      const champions = (await env.registry.history()).filter((m) => m.alias === 'champion' && m.to);
      const learnedChampions: string[] = [];
      for (const move of champions)
        if ((await env.registry.get(move.to as string)).kind === 'ftrl')
          learnedChampions.push(move.to as string);
      assert.ok(learnedChampions.length >= 2);
      for (const name of learnedChampions) {
        const version = await env.registry.get(name);
        assert.equal(version.training.source, 'kafka');
        if (version.training.source !== 'kafka') continue;
        assert.ok(version.training.online?.runs, `${version.version} has its read order`);
        // Each lineage starts from the previous candidate's snapshot: it holds only what was read since.
        if (version.version !== firstLearned)
          assert.match(version.training.online.base ?? '', /^v\d{6}$/, `${version.version} has a base`);
        assert.ok(version.training.newestEventTime, `${version.version} has its freshness`);
        const again = await env.modelTraining.retrain(version.version);
        assert.equal(
          again.identical,
          true,
          `${version.version} reproduced (max difference ${again.maxWeightDifference})`,
        );
      }
    } finally {
      await env.tearDown();
    }
  });

  it('serves the baseline, learned from the first examples, until a learned model beats it', async () => {
    // A replay of a year-old history: freshness in event time reads true, in wall time it cannot.
    const examples = simulatedFeedback({ seed: 23, count: 6000, startTime: Date.UTC(2025, 11, 1) });
    const wallBefore = await histogramTotals(
      runtime.metrics,
      'flywheel_trainer_outcome_to_promotion_seconds',
    );
    const eventBefore = await histogramTotals(
      runtime.metrics,
      'flywheel_trainer_outcome_to_promotion_event_seconds',
    );
    const env = await setUp('baseline', 1);
    try {
      const trainer = env.trainer({
        FW_TRAINER_HOLDOUT: 1000,
        FW_TRAINER_CANDIDATE_EVERY: 0,
        FW_TRAINER_CANDIDATE_MS: 0,
        FW_TRAINER_BASELINE_FIRST: 50,
        FW_TRAINER_PROMOTE_TO: 'challenger',
        // The FTRL alone: at 2,000 examples the side learners tie with it within noise, and
        // which one is taken is side-learners.test.ts's subject, not this test's.
        FW_TRAINER_LEARNERS: [],
      });
      await trainer.start();
      try {
        await env.send(examples.slice(0, 3000));
        await takenIn(trainer, 3000);
        const judged = await trainer.proposeCandidate('count'); // after the baselines queued before it
        assert.deepEqual(judged?.decision.reasons, [], 'the first learned candidate is accepted');
        const baselines = (await env.registry.list()).filter((v) => v.kind === 'baseline');
        // From the first batch of 50 or more examples on, again each time they double: the rates
        // as learned, never a fixed prior.
        const counts = baselines.map((v) => (v.training.source === 'kafka' ? v.training.examples : 0));
        assert.ok(counts.length >= 2, `baseline versions at ${counts.join(', ')} examples`);
        for (let i = 1; i < counts.length; i++)
          assert.ok(counts[i]! >= 2 * counts[i - 1]!, counts.join(', '));
        const last = baselines[baselines.length - 1] as (typeof baselines)[number];
        assert.equal(last.training.source, 'kafka');
        const seen = last.training.source === 'kafka' ? last.training.examples : 0;
        const rate = examples.slice(0, seen).filter((e) => e.label === 1).length / seen;
        const served = await env.registry.loadArtifacts(last.version);
        const state = JSON.parse(String(served.files['baseline.json'])) as {
          global: { n: number; positives: number };
        };
        assert.equal(state.global.n, seen, 'learned every example taken in, the holdout too');
        assert.ok(Math.abs(state.global.positives / state.global.n - rate) < 1e-9);
        // The first learned candidate is judged against the baseline and the constant, and takes
        // the champion alias itself (there is no learned champion to split traffic with).
        const routing = await env.registry.routing();
        const champion = await env.registry.get(routing.champion as string);
        assert.equal(champion.kind, 'ftrl', `the learned candidate is champion (${champion.statusReason})`);
        assert.equal(routing.challenger, null);
        const wall = await histogramTotals(runtime.metrics, 'flywheel_trainer_outcome_to_promotion_seconds');
        const event = await histogramTotals(
          runtime.metrics,
          'flywheel_trainer_outcome_to_promotion_event_seconds',
        );
        assert.equal(event.count - eventBefore.count, 1);
        assert.ok(wall.sum - wallBefore.sum > 300 * 86400, 'the wall clock is a year ahead of this history');
        // The holdout's 1,000 newest examples are newer than what the weights learned: minutes
        // to hours of this shop's event time, not a year.
        assert.ok(event.sum - eventBefore.sum < 86400, `${event.sum - eventBefore.sum} s in event time`);
        // The baseline's serving is over: more examples publish no more baselines.
        await env.send(examples.slice(3000));
        await takenIn(trainer, 6000);
        await trainer.proposeCandidate('count');
        const after = (await env.registry.list()).filter((v) => v.kind === 'baseline');
        assert.equal(after.length, baselines.length);
      } finally {
        await trainer.stop();
      }
    } finally {
      await env.tearDown();
    }
  });

  it('rejects candidates trained on flipped labels; the champion stays', async () => {
    const CLEAN = 6000;
    const examples = simulatedFeedback({ seed: 22, count: 2 * CLEAN });
    const flipped = examples.slice(CLEAN).map((e) => ({
      ...e,
      label: 1 - e.label,
      labelSource: e.label ? ('timeout' as const) : ('outcome' as const),
    }));
    // One partition: the gate's verdicts on the clean labels must not depend on read timing.
    const env = await setUp('flip', 1);
    try {
      const trainer = env.trainer({
        FW_TRAINER_HOLDOUT: 1000,
        FW_TRAINER_CANDIDATE_EVERY: 2000,
        FW_TRAINER_PROMOTE_TO: 'champion',
      });
      const candidates: CandidateResult[] = [];
      trainer.on('candidate', (c) => candidates.push(c));
      await trainer.start();
      let last: CandidateResult | null;
      try {
        await env.send(examples.slice(0, CLEAN));
        await takenIn(trainer, CLEAN);
        await trainer.proposeCandidate('operator');
        assert.ok((await env.registry.routing()).champion, 'a champion from the clean labels');
        await env.send(flipped);
        await takenIn(trainer, 2 * CLEAN);
        last = await trainer.proposeCandidate('operator');
      } finally {
        await trainer.stop();
      }
      assert.ok(last);
      assert.equal(last.alias, null);
      const why = last.decision.reasons.join(' ');
      // Flipped labels make the good champion look worse than a constant (rule 4: failing), so
      // the ranking rule stands aside; the label-rate rule holds the line.
      assert.match(why, /recent label rate .* far from/);
      assert.equal(last.decision.championFailing, true);

      // No version that learned a flipped label ever got an alias.
      const champion = await env.registry.get((await env.registry.routing()).champion as string);
      assert.ok(
        (champion.training.examples ?? 0) <= CLEAN,
        `the champion learned ${champion.training.examples} examples`,
      );
      const poisoned = (await env.registry.list()).filter((v) => (v.training.examples ?? 0) > CLEAN);
      assert.ok(poisoned.length >= 2, 'candidates were proposed on the flipped stream');
      for (const v of poisoned) assert.equal(v.status, 'rejected', `${v.version}: ${v.statusReason}`);
      // The loss jump was noticed as drift and proposed a candidate by itself.
      assert.ok(
        candidates.some((c) => c.trigger === 'drift'),
        'a drift-triggered candidate',
      );
    } finally {
      await env.tearDown();
    }
  });

  it('proposes a candidate when an operator asks over HTTP, with the admin token only', async () => {
    const env = await setUp('operator');
    const previousToken = process.env.FW_ADMIN_TOKEN;
    process.env.FW_ADMIN_TOKEN = 'operator-token-0123456789';
    try {
      const trainer = env.trainer(
        { FW_TRAINER_HTTP_PORT: 0, FW_TRAINER_HOLDOUT: 300, FW_TRAINER_GATE_MIN_HOLDOUT: 300 },
        true,
      );
      await trainer.start();
      try {
        const ask = (token?: string) =>
          fetch(`http://127.0.0.1:${trainer.port}/v1/candidates`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(token ? { authorization: `Bearer ${token}` } : {}),
            },
            body: JSON.stringify({ reason: 'checking the new features' }),
          });
        assert.equal((await ask()).status, 401);
        assert.equal((await ask('wrong-token-0123456789')).status, 401);
        // Bad requests get clear errors, not a candidate.
        const raw = (body: string) =>
          fetch(`http://127.0.0.1:${trainer.port}/v1/candidates`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              authorization: 'Bearer operator-token-0123456789',
            },
            body,
          });
        assert.equal((await raw(JSON.stringify({ reason: '' }))).status, 400);
        assert.equal((await raw(JSON.stringify({ reason: 'x', trigger: 'cron' }))).status, 400);
        assert.equal((await raw('{not json')).status, 400);
        assert.equal((await raw(JSON.stringify({ reason: 'x'.repeat(10_000) }))).status, 413);
        const early = (await (await ask('operator-token-0123456789')).json()) as {
          version: null;
          reasons: string[];
        };
        assert.equal(early.version, null);
        assert.match(early.reasons.join(' '), /not enough holdout examples/);
        await env.send(simulatedFeedback({ seed: 24, count: 3000 }));
        await takenIn(trainer, 3000);
        const response = await ask('operator-token-0123456789');
        assert.equal(response.status, 200);
        const body = (await response.json()) as { version: string; alias: string | null; accepted: boolean };
        assert.match(body.version, /^v\d{6}$/);
        const version = await env.registry.get(body.version);
        assert.equal(version.training.source === 'kafka' && version.training.trigger, 'operator');
      } finally {
        await trainer.stop();
      }
    } finally {
      if (previousToken === undefined) delete process.env.FW_ADMIN_TOKEN;
      else process.env.FW_ADMIN_TOKEN = previousToken;
      await env.tearDown();
    }
  });

  it('backfills from history between two points, and distills a wide & deep teacher into an FTRL student; both retrain exactly', async () => {
    const examples = simulatedFeedback({ seed: 23, count: 6000 });
    const env = await setUp('backfill');
    try {
      await env.send(examples);
      const ranges = await resolveRanges(
        runtime.kafka,
        [env.topics.names.feedback, env.topics.names.human],
        'earliest',
        'latest',
      );
      const training = {
        source: 'kafka' as const,
        ranges,
        examples: 0,
        labelSources: {},
        trigger: 'backfill',
        kinds: {
          [env.topics.names.feedback]: 'labeledExample' as const,
          [env.topics.names.human]: 'humanLabel' as const,
        },
      };
      // The other ways to name the two points: explicit offsets, a time, and a bad one.
      const feedback = env.topics.names.feedback;
      const named = await resolveRanges(runtime.kafka, [feedback], `${feedback}:0@5`, 'latest');
      assert.deepEqual(
        named.map((r) => r.from),
        ['5', '0', '0'],
      );
      const future = await resolveRanges(runtime.kafka, [feedback], String(Date.now() + 3600_000), 'latest');
      assert.ok(
        future.every((r) => r.from === r.to),
        'nothing written after a future time',
      );
      await assert.rejects(resolveRanges(runtime.kafka, [feedback], 'yesterday', 'latest'), /not a time/);

      const backfill = await env.modelTraining.train({
        kind: 'ftrl',
        parent: null,
        seed: 1,
        training,
        actor: 'test',
      });
      assert.equal(backfill.training.examples, 6000);
      assert.ok(backfill.metrics!.logLoss < backfill.metrics!.baselineLogLoss!, 'beats the baseline');
      assert.equal((await env.modelTraining.retrain(backfill.version)).identical, true);

      const { teacher, student, micros } = await env.modelTraining.distill({
        kind: 'ftrl',
        teacherKind: 'wide_deep',
        parent: null,
        seed: 1,
        training,
        actor: 'test',
      });
      assert.equal(teacher.kind, 'wide_deep');
      assert.equal(student.kind, 'ftrl');
      assert.equal(student.parent, teacher.version);
      assert.equal(student.training.source === 'kafka' && student.training.teacher, teacher.version);
      // Judged on the same holdout with the true labels; the student must still beat the baseline.
      assert.equal(student.metrics!.examples, teacher.metrics!.examples);
      assert.ok(student.metrics!.logLoss < student.metrics!.baselineLogLoss!);
      assert.ok(micros.teacher > 0 && micros.student > 0);
      assert.equal((await env.modelTraining.retrain(student.version)).identical, true);

      // A trainer with no checkpoint starts from the champion's FTRL state and reads on after the
      // champion's lineage (the 6,000 it learned are not learned twice); its candidates say so
      // in their lineage and still retrain exactly.
      await env.registry.moveAlias('champion', backfill.version, { actor: 'test', reason: 'backfill' });
      const trainer = env.trainer({ FW_TRAINER_HOLDOUT: 1000, FW_TRAINER_CANDIDATE_EVERY: 0 });
      await trainer.start();
      let candidate: CandidateResult | null;
      try {
        await env.send(simulatedFeedback({ seed: 24, count: 3000 }));
        await takenIn(trainer, 3000);
        assert.equal(trainer.learned + trainer.heldOut, 3000, 'only what came after the champion');
        candidate = await trainer.proposeCandidate('operator');
      } finally {
        await trainer.stop();
      }
      assert.ok(candidate);
      const warm = await env.registry.get(candidate.version);
      assert.equal(warm.training.source === 'kafka' && warm.training.online?.warmStart, backfill.version);
      const starts = warm.training.source === 'kafka' ? warm.training.ranges : [];
      for (const range of starts) {
        const before = ranges.find((r) => r.topic === range.topic && r.partition === range.partition);
        assert.equal(range.from, before?.to, `${range.topic}:${range.partition} resumes after the champion`);
      }
      assert.equal((await env.modelTraining.retrain(candidate.version)).identical, true);
    } finally {
      await env.tearDown();
    }
  });
});
