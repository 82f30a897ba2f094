// Do human labels add information? The shop's history replayed in event time through the real
// scorer, joiner, trainer and labeling service (Redis queue, HTTP API, labels to Kafka), with
// scripted labelers of known accuracy answering review tasks against the truth the simulator
// knows (every purchase, seen or not). Runs, each on its own topics, registry and queue:
//
//   outcomes  a segment's purchases are not seen (censored); nobody labels: its timeouts train as 0
//   labels    the same censored input; a good (95% right), a noisy (75%) and an adversarial (25%)
//             labeler; FW_TRAINER_CENSORED_SEGMENTS names the segment (policy `outcome`)
//   replace   every purchase seen; the adversarial labeler alone; FW_TRAINER_HUMAN_POLICY=replace
//
// Each run's champion at the start of the last hour is scored on that hour's clicks against the
// truth. Results: bench/results/labelers.json.
//
//   npm run bench -- labelers [--minutes 5] [--runs outcomes,labels,replace] [--repeats 3]
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { TokenTable } from '../services/common/auth.js';
import type { ClickEvent, PurchaseEvent } from '../services/common/contracts.js';
import { createProducer } from '../services/common/kafka.js';
import { Random } from '../services/common/random.js';
import { createRedis } from '../services/common/redis.js';
import { queueReviewSink } from '../services/cli/review.js';
import { joinConfigFrom, loadJoinerConfig } from '../services/joiner/config.js';
import { loadLabelingConfig, queueOptionsFrom } from '../services/labeling/config.js';
import { buildLabelingApp, type ReviewPayload } from '../services/labeling/http.js';
import { labelPublisher } from '../services/labeling/publish.js';
import { LabelingQueue } from '../services/labeling/queue.js';
import { fromArtifacts } from '../services/model/artifacts.js';
import { initBackend } from '../services/model/backend.js';
import { logLoss } from '../services/model/evaluation.js';
import { FeatureSpec, segmentOf } from '../services/model/features.js';
import { loadRegistryConfig } from '../services/registry/config.js';
import { ShopSimulation } from '../services/simulator/generator.js';
import { eventInputs, reference } from '../test/helpers/join-reference.js';
import { replayThroughLoop, WINDOW_MS, type LoopRun } from './loop.js';
import { median } from './stats.js';

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    hours: { type: 'string', default: '5' },
    runs: { type: 'string', default: 'outcomes,labels,replace' },
    repeats: { type: 'string', default: '1' },
    out: { type: 'string', default: 'labelers.json' },
  },
});
const HOUR = 3600_000;
const HOURS = Number(flags.hours);
const startTime = Date.now() - (HOURS + 1) * HOUR;
const sim = new ShopSimulation({ seed: 17, startTime, trafficRate: 2 });
const clicks: ClickEvent[] = [];
const purchases: PurchaseEvent[] = [];
const segmentOfUser = new Map<string, string>();
/** The generating probability of each click: the floor no model can beat. */
const generating = new Map<string, number>();
for (;;) {
  const e = sim.next();
  if (e.time >= startTime + HOURS * HOUR) break;
  if (e.type === 'click') {
    clicks.push(e.click);
    segmentOfUser.set(e.click.userId, segmentOf(e.click.country, e.click.device));
    generating.set(e.click.eventId, e.truth.probability);
  } else purchases.push(e.purchase);
}
const joinConfig = joinConfigFrom({ ...loadJoinerConfig({}), FW_JOIN_WINDOW_MS: WINDOW_MS });
// The truth: the join's rule on every purchase, seen or not.
const truth = reference(eventInputs(clicks, purchases), joinConfig);
const clicksBySegment = new Map<string, number>();
for (const c of clicks) {
  const s = segmentOf(c.country, c.device);
  clicksBySegment.set(s, (clicksBySegment.get(s) ?? 0) + 1);
}
// The busiest segment loses its purchases (a shop whose app does not send them, say).
const censored = [...clicksBySegment].sort((a, b) => b[1] - a[1])[0]![0];
const seenPurchases = purchases.filter((p) => segmentOfUser.get(p.userId) !== censored);
const lastHour = clicks.filter((c) => c.eventTime >= startTime + (HOURS - 1) * HOUR);
const floorOf = (part: readonly ClickEvent[]) =>
  logLoss(
    part.map((c) => ({ score: generating.get(c.eventId) as number, label: truth.get(c.eventId) ?? 0 })),
  );
const isCensored = (c: ClickEvent) => segmentOf(c.country, c.device) === censored;
const floor = {
  all: floorOf(lastHour),
  censoredSegment: floorOf(lastHour.filter(isCensored)),
  otherSegments: floorOf(lastHour.filter((c) => !isCensored(c))),
};

interface ScriptedLabeler {
  id: string;
  accuracy: number;
}
const LABELERS: Record<string, ScriptedLabeler[]> = {
  outcomes: [],
  labels: [
    { id: 'good', accuracy: 0.95 },
    { id: 'noisy', accuracy: 0.75 },
    { id: 'adversarial', accuracy: 0.25 },
  ],
  replace: [{ id: 'adversarial', accuracy: 0.25 }],
};

/** Scripted labelers working the labeling API of this run until stopped. */
function labelersAlongside(name: string, labelers: ScriptedLabeler[], queueName: string) {
  return async (
    context: Parameters<NonNullable<Parameters<typeof replayThroughLoop>[0]['alongside']>>[0],
  ) => {
    const { runtime, topics, eventClock } = context;
    const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    await redis.connect();
    const producer = createProducer(runtime.kafka);
    await producer.connect();
    const tokens = new TokenTable();
    for (const l of labelers) tokens.add(`token-${l.id}`, { id: l.id, role: 'labeler' });
    const app = buildLabelingApp({
      queue: new LabelingQueue<ReviewPayload>(redis, queueName, queueOptionsFrom(loadLabelingConfig())),
      tokens,
      guidelines: '',
      publish: labelPublisher(producer, runtime.codecs.humanLabel, topics.humanLabels as string, 15_000),
      // Labels are stamped in the replay's event time, as a live labeler's would be.
      now: () => Math.round(eventClock()),
    });
    let stopped = false;
    const errors: string[] = [];
    const answered = new Map<string, { right: number; wrong: number }>();
    const loops = labelers.map(async (labeler, n) => {
      const rng = new Random(1000 + n + name.length);
      const headers = { authorization: `Bearer token-${labeler.id}` };
      const tally = { right: 0, wrong: 0 };
      answered.set(labeler.id, tally);
      while (!stopped) {
        const next = await app.inject({ method: 'GET', url: '/v1/tasks/next', headers });
        if (next.statusCode !== 200) {
          // 204: nothing to do yet; anything else is counted and tried again, as a person would.
          if (next.statusCode !== 204) errors.push(`next ${next.statusCode}: ${next.body.slice(0, 200)}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
          continue;
        }
        const { task } = next.json<{ task: { id: string; eventId: string } }>();
        const real = truth.get(task.eventId) ?? 0;
        const right = rng.next() < labeler.accuracy;
        const answer = await app.inject({
          method: 'POST',
          url: `/v1/tasks/${encodeURIComponent(task.id)}/label`,
          headers,
          payload: { label: right ? real : 1 - real },
        });
        if (answer.statusCode === 200) tally[right ? 'right' : 'wrong']++;
        else errors.push(`label ${answer.statusCode}: ${answer.body.slice(0, 200)}`);
      }
    });
    return async () => {
      stopped = true;
      await Promise.all(loops);
      await app.close();
      await producer.disconnect();
      await redis.quit();
      scripted.set(name, {
        answered: Object.fromEntries(answered),
        errors: errors.length,
        firstErrors: errors.slice(0, 5),
      });
    };
  };
}
const scripted = new Map<string, unknown>();

const spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
/** Log loss against the truth of `version` on the last hour's clicks: all, censored segment, rest. */
async function lastHourLoss(run: LoopRun, version: string) {
  const model = await fromArtifacts((await run.registry.loadArtifacts(version)).files, spec);
  try {
    const predictions = lastHour.map((c) => run.served.get(c.eventId)!);
    const scores = model.predict(
      predictions.map((p) => ({ features: p.features, itemId: p.itemId, segment: p.segment })),
    );
    const scored = lastHour.map((c, i) => ({
      score: scores[i] as number,
      label: truth.get(c.eventId) ?? 0,
      censored: segmentOf(c.country, c.device) === censored,
    }));
    return {
      all: logLoss(scored),
      censoredSegment: logLoss(scored.filter((s) => s.censored)),
      otherSegments: logLoss(scored.filter((s) => !s.censored)),
    };
  } finally {
    model.dispose();
  }
}

const rateOf = (part: readonly ClickEvent[]) =>
  part.filter((c) => truth.get(c.eventId) === 1).length / part.length;

const medianLosses = (list: readonly Losses[]): Losses => ({
  all: median(list.map((l) => l.all)),
  censoredSegment: median(list.map((l) => l.censoredSegment)),
  otherSegments: median(list.map((l) => l.otherSegments)),
});

function writeResults(): void {
  const output = {
    simulation: {
      seed: 17,
      hours: HOURS,
      trafficRate: 2,
      clicks: clicks.length,
      purchases: purchases.length,
    },
    censoredSegment: censored,
    censoredPurchases: purchases.length - seenPurchases.length,
    lastHourClicks: lastHour.length,
    lastHourPurchaseRate: {
      censoredSegment: rateOf(lastHour.filter(isCensored)),
      otherSegments: rateOf(lastHour.filter((c) => !isCensored(c))),
    },
    floor,
    medians: Object.fromEntries(
      Object.entries(results).map(([name, runs]) => [
        name,
        {
          repeats: runs.length,
          champion: medianLosses(runs.map((r) => r.championLastHour)),
          served: medianLosses(runs.map((r) => r.servedLastHour)),
          trust: Object.fromEntries(
            [...new Set(runs.flatMap((r) => r.labelers.map((l) => l.labeler)))].map((labeler) => [
              labeler,
              median(runs.map((r) => r.labelers.find((l) => l.labeler === labeler)?.trust ?? 0)),
            ]),
          ),
          gate: Object.fromEntries(
            (['acceptedBetter', 'acceptedWorse', 'refusedBetter', 'refusedWorse'] as const).map((k) => [
              k,
              runs.reduce((sum, r) => sum + r.gate[k], 0),
            ]),
          ),
        },
      ]),
    ),
    runs: results,
  };
  mkdirSync(join(import.meta.dirname, 'results'), { recursive: true });
  writeFileSync(join(import.meta.dirname, 'results', flags.out), `${JSON.stringify(output, null, 2)}\n`);
}

await initBackend((await import('../services/common/logger.js')).createLogger('bench-labelers', 'warn'));
const results: Record<string, RunResult[]> = {};

interface Losses {
  all: number;
  censoredSegment: number;
  otherSegments: number;
}
type RunResult = Awaited<ReturnType<typeof runOnce>>;

/** Log loss against the truth of what was served in the last hour (any version, any arm). */
function servedLastHour(run: LoopRun): Losses {
  const of = (part: readonly ClickEvent[]) =>
    logLoss(part.map((c) => ({ score: run.served.get(c.eventId)!.score, label: truth.get(c.eventId) ?? 0 })));
  return {
    all: of(lastHour),
    censoredSegment: of(lastHour.filter(isCensored)),
    otherSegments: of(lastHour.filter((c) => !isCensored(c))),
  };
}

/**
 * Each candidate against the champion serving when it was made (from the alias history; the
 * baseline too), both on the last hour's truth: was a worse one ever accepted, a better one refused?
 */
async function gateRecord(run: LoopRun, candidates: { version: string; status: string; lastHour: Losses }[]) {
  const record = { acceptedBetter: 0, acceptedWorse: 0, refusedBetter: 0, refusedWorse: 0 };
  const moves = (await run.registry.history()).filter((m) => m.alias === 'champion');
  const losses = new Map<string, Losses>();
  for (const c of candidates) {
    const createdAt = run.versions.find((v) => v.version === c.version)!.createdAt;
    const champion = moves.filter((m) => m.at < createdAt && m.to !== c.version).at(-1)?.to;
    if (!champion) continue;
    if (!losses.has(champion)) losses.set(champion, await lastHourLoss(run, champion));
    const worse = c.lastHour.all > losses.get(champion)!.all;
    record[`${c.status === 'registered' ? 'accepted' : 'refused'}${worse ? 'Worse' : 'Better'}`]++;
  }
  return record;
}

async function runOnce(name: string) {
  const labelers = LABELERS[name];
  if (!labelers) throw new Error(`unknown run ${name}: outcomes, labels or replace`);
  const queueName = `bench-labelers-${name}-${randomUUID().slice(0, 8)}`;
  // The review sink and the labeling API read the labeling settings from the environment.
  Object.assign(process.env, {
    FW_LABELING_QUEUE: queueName,
    // The replay compresses hours into minutes: the hourly budget is the wall clock's.
    FW_LABELING_TASKS_PER_HOUR: '1000000',
    FW_LABELING_LABELS_REQUIRED: labelers.length > 1 ? '2' : '1',
    FW_LABELING_MAX_LABELS: String(Math.max(1, labelers.length)),
  });
  const sinkRuntime = (await import('../services/common/runtime.js')).createRuntime('bench-labelers-sink', {
    ...process.env,
    LOG_LEVEL: 'warn',
  });
  const sinkRedis = createRedis(sinkRuntime.config.REDIS_URL, sinkRuntime.logger);
  await sinkRedis.connect();
  const run = await replayThroughLoop({
    name: `labelers-${name}`,
    clicks,
    purchases: name === 'replace' ? purchases : seenPurchases,
    wallMs: Number(flags.minutes) * 60_000,
    trainer: {
      FW_TRAINER_HOLDOUT: 1500,
      FW_TRAINER_CANDIDATE_EVERY: 2500,
      FW_TRAINER_CANDIDATE_MS: 0,
      FW_TRAINER_PROMOTE_TO: 'champion',
      FW_TRAINER_HUMAN_POLICY: name === 'replace' ? 'replace' : 'outcome',
      FW_TRAINER_CENSORED_SEGMENTS: name === 'labels' ? [censored] : [],
    },
    // A random 5% of clicks reviewed besides the uncertain ones: gold tasks in every segment
    // (uncertainty alone never picks a segment the model learned to score near 0).
    scorer: { FW_REVIEW_AUDIT_RATE: labelers.length > 0 ? 0.05 : 0 },
    ...(labelers.length > 0
      ? {
          reviewSink: queueReviewSink(sinkRedis, sinkRuntime.logger, new Registry()),
          alongside: labelersAlongside(name, labelers, queueName),
        }
      : {}),
  });
  await sinkRedis.quit();
  // The version serving the last hour's first click (its champion arm).
  const first = lastHour.find((c) => run.served.get(c.eventId)?.arm === 'champion')!;
  const champion = run.served.get(first.eventId)!.modelVersion;
  const candidates = [];
  for (const v of run.versions.filter((v) => v.kind !== 'baseline'))
    candidates.push({
      version: v.version,
      status: v.status,
      reason: v.statusReason,
      lastHour: await lastHourLoss(run, v.version),
    });
  const result = {
    labelers: run.labelers.labelers,
    scripted: scripted.get(name) ?? {},
    counters: run.labelers.counters,
    champion,
    championLastHour: await lastHourLoss(run, champion),
    servedLastHour: servedLastHour(run),
    gate: await gateRecord(run, candidates),
    candidates,
    replay: { wallSeconds: run.wallSeconds, speed: run.speed },
  };
  console.log(
    `\n== ${name}: champion ${champion}`,
    JSON.stringify(result.championLastHour),
    'served',
    JSON.stringify(result.servedLastHour),
    JSON.stringify(result.gate),
  );
  for (const l of run.labelers.labelers)
    console.log(
      `  ${l.labeler.padEnd(12)} judged ${l.judged}  agreed ${(l.agreed / Math.max(1, l.judged)).toFixed(3)}  sens ${l.sensitivity.toFixed(3)}  spec ${l.specificity.toFixed(3)}  weight ${l.trust.toFixed(3)}${l.untrusted ? `  (${l.untrusted})` : ''}`,
    );
  console.log('  merger', JSON.stringify(run.labelers.counters));
  for (const c of candidates)
    console.log(`  ${c.version} ${c.status} ${c.lastHour.all.toFixed(4)} ${c.reason ?? ''}`.slice(0, 240));
  await run.cleanup();
  return result;
}

for (let repeat = 1; repeat <= Number(flags.repeats); repeat++)
  for (const name of flags.runs.split(',')) {
    console.log(`\n-- repeat ${repeat} of ${flags.repeats}: ${name}`);
    (results[name] ??= []).push(await runOnce(name));
    // Written after each run: a later run's failure keeps the earlier ones.
    writeResults();
  }

process.exit(0);
