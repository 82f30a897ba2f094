// The monitor against a drift nobody tells it of, and against none. The simulated shop; the
// trainer's learner (FTRL, every label as it lands, a fifth held out) takes the first two hours
// and its snapshot serves the next four; predictions and labels go to the monitor's pure core in
// event time (a label when the join would publish it: at the purchase, or when the attribution
// window closes); a look every minute. With drift (a campaign sends a share of the clicks to one
// category, which also sells better): once with alerts only, the clicks from the drift to the
// first drift alert and the groups it names, and when the estimate and the realised log loss
// moved; once with each retrain request answered by a snapshot of the learner, how many requests
// (the cooldown) and whether the last version recovers what the frozen champion loses. Without
// drift, many seeds: false drift alarms per day against the budget. Results:
// bench/results/monitor.json.
//
//   npm run bench -- monitor [--seeds 60]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FeatureVector, LabeledExample, Prediction } from '../services/common/contracts.js';
import { createLogger } from '../services/common/logger.js';
import { Progress } from '../services/common/progress.js';
import { evaluate } from '../services/model/evaluation.js';
import { FeatureSpec, segmentOf } from '../services/model/features.js';
import { DEFAULT_FTRL, FtrlProximal } from '../services/model/ftrl.js';
import { ProfileReader, versionReference } from '../services/model/profile.js';
import { SessionTracker } from '../services/model/session.js';
import { MonitorCore, type Look, type VersionReference } from '../services/monitor/core.js';
import { ShopSimulation, type DriftConfig } from '../services/simulator/generator.js';
import { sampleRecords } from '../test/helpers/records.js';

const { values: flags } = parseArgs({ options: { seeds: { type: 'string', default: '60' } } });
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const WINDOW = 30 * MINUTE;
// Training and serving within one hour-of-day bucket (0-6 UTC): a model trained on hours of one
// bucket shifts its scores when the next begins, which the monitor flags (BENCHMARKS.md).
const TRAIN_HOURS = 2;
const SERVE_HOURS = 4;
const DRIFT_AFTER = HOUR; // into the serving hours
const TRAFFIC = 3; // events per simulated second: ~8,000 clicks an hour
const BUDGET_PER_DAY = 0.1;
const COOLDOWN = HOUR;
const DRIFT_RUNS = 5;
const HELD = 2000;
const CAMPAIGN: Omit<DriftConfig, 'atMs'> = { category: 'shoes', shift: 1.5, share: 0.3 };
const spec = new FeatureSpec();

interface Click {
  eventId: string;
  userId: string;
  time: number;
  features: FeatureVector;
  category: string;
  segment: string;
  label: 0 | 1;
  /** When the join publishes its label. */
  labelTime: number;
  delayMs: number | null;
}

function shopClicks(seed: number, startTime: number, drift: boolean): Click[] {
  const atMs = TRAIN_HOURS * HOUR + DRIFT_AFTER;
  const sim = new ShopSimulation({
    seed,
    startTime,
    trafficRate: TRAFFIC,
    drift: drift ? { ...CAMPAIGN, atMs } : null,
  });
  const sessions = new SessionTracker();
  const end = startTime + (TRAIN_HOURS + SERVE_HOURS) * HOUR;
  const clicks: Click[] = [];
  for (;;) {
    const event = sim.next();
    if (event.time >= end) return clicks;
    if (event.type !== 'click') continue;
    const { click, truth } = event;
    const bought = truth.purchaseTime !== null && truth.purchaseTime - click.eventTime <= WINDOW;
    clicks.push({
      eventId: click.eventId,
      userId: click.userId,
      time: click.eventTime,
      features: spec.vectorize(click, sessions.observe(click)),
      category: click.category,
      segment: segmentOf(click.country, click.device),
      label: bought ? 1 : 0,
      labelTime: bought ? truth.purchaseTime! : click.eventTime + WINDOW,
      delayMs: bought ? truth.purchaseTime! - click.eventTime : null,
    });
  }
}

interface Version {
  name: string;
  model: FtrlProximal;
  reference: VersionReference;
}

/**
 * The trainer as it runs: one FTRL learner taking each label as it lands, every fifth example
 * held out (the newest HELD kept); a candidate is a snapshot of the learner, and its reference
 * the held examples as the snapshot scores them.
 */
class OnlineTrainer {
  private readonly learner = new FtrlProximal(spec.dimension, DEFAULT_FTRL);
  private readonly held: Click[] = [];
  private readonly byLabelTime: Click[];
  private taken = 0;

  constructor(clicks: readonly Click[]) {
    this.byLabelTime = [...clicks].sort((a, b) => a.labelTime - b.labelTime);
  }

  learnUntil(now: number): void {
    for (; this.taken < this.byLabelTime.length; this.taken++) {
      const c = this.byLabelTime[this.taken]!;
      if (c.labelTime >= now) return;
      if (this.taken % 5 === 4) {
        this.held.push(c);
        if (this.held.length > HELD) this.held.shift();
      } else this.learner.learn(c.features, c.label);
    }
  }

  candidate(name: string): Version {
    const { z, n } = this.learner;
    const model = new FtrlProximal(spec.dimension, DEFAULT_FTRL, {
      z: Float64Array.from(z),
      n: Float64Array.from(n),
    });
    const reference = versionReference(
      spec,
      this.held.map((c) => ({ ...c, score: model.predict(c.features) })),
    );
    return { name, model, reference };
  }
}

function monitorCore(references: Map<string, VersionReference>): MonitorCore {
  return new MonitorCore(
    {
      bucketMs: MINUTE,
      windowMs: 15 * MINUTE,
      labelLagMs: WINDOW + 5 * MINUTE,
      retentionMs: 3 * HOUR,
      historyMs: 0,
      drift: {
        falseAlarmsPerDay: BUDGET_PER_DAY,
        looksPerDay: 1440,
        minRecords: 500,
        minDistance: 0.1,
        ignore: ['hourOfDay'],
      },
      alerts: {
        thresholds: { maxLogLoss: null, minAuc: null, maxEce: null, minLabels: 200 },
        cooldownMs: COOLDOWN,
        retrainOn: ['drift', 'performance'],
      },
    },
    new ProfileReader(spec),
    (version) => references.get(version) ?? null,
  );
}

interface Served extends Click {
  version: string;
  score: number;
  frozenScore: number;
}

function records(c: Served): { prediction: Prediction; label: LabeledExample } {
  const { prediction, labeledExample } = sampleRecords(c.time);
  const common = {
    eventId: c.eventId,
    userId: c.userId,
    predictionId: `p-${c.eventId}`,
    features: c.features,
  };
  return {
    prediction: {
      ...prediction,
      ...common,
      category: c.category,
      segment: c.segment,
      modelVersion: c.version,
      score: c.score,
      eventTime: c.time,
      serveTime: c.time,
    },
    label: {
      ...labeledExample,
      ...common,
      category: c.category,
      segment: c.segment,
      modelVersion: c.version,
      score: c.score,
      label: c.label,
      labelSource: c.label ? 'outcome' : 'timeout',
      clickTime: c.time,
      labelTime: c.labelTime,
      delayMs: c.delayMs,
    },
  };
}

interface RunResult {
  seed: number;
  drift: boolean;
  looks: number;
  driftAlerts: { at: number; version: string; subject: string }[];
  retrains: number[];
  /** Minutes after the drift: first drift alert, estimate moved, realised log loss moved. */
  firstAlertMinutes: number | null;
  clicksToFirstAlert: number | null;
  estimateMovedMinutes: number | null;
  realisedMovedMinutes: number | null;
  alertGroups: string[];
  /** Log loss of the last serving hour: what was served, and the frozen champion on the same clicks. */
  lastHour: { served: number; frozen: number; version: string };
}

/** Serves the clicks after training, minute by minute: the monitor looks, a retrain request trains the next version. */
function serve(
  seed: number,
  clicks: Click[],
  startTime: number,
  drift: boolean,
  retrain: boolean,
): RunResult {
  const serveFrom = startTime + TRAIN_HOURS * HOUR;
  const driftAt = serveFrom + DRIFT_AFTER;
  const trainer = new OnlineTrainer(clicks);
  trainer.learnUntil(serveFrom);
  const champion = trainer.candidate('v1');
  const references = new Map([[champion.name, champion.reference]]);
  const core = monitorCore(references);
  let serving = champion;
  const served: Served[] = [];
  const labelQueue: Served[] = [];
  const result: RunResult = {
    seed,
    drift,
    looks: 0,
    driftAlerts: [],
    retrains: [],
    firstAlertMinutes: null,
    clicksToFirstAlert: null,
    estimateMovedMinutes: null,
    realisedMovedMinutes: null,
    alertGroups: [],
    lastHour: { served: 0, frozen: 0, version: '' },
  };
  const baseline = { estimate: [] as number[], realised: [] as number[] };
  let next = 0;
  while (clicks[next] && clicks[next]!.time < serveFrom) next++;
  for (let now = serveFrom + MINUTE; now <= serveFrom + SERVE_HOURS * HOUR; now += MINUTE) {
    const predictions: Prediction[] = [];
    for (; next < clicks.length && clicks[next]!.time < now; next++) {
      const c = clicks[next]!;
      const s: Served = {
        ...c,
        version: serving.name,
        score: serving.model.predict(c.features),
        frozenScore: champion.model.predict(c.features),
      };
      served.push(s);
      labelQueue.push(s);
      predictions.push(records(s).prediction);
    }
    core.takePredictions(predictions);
    trainer.learnUntil(now);
    labelQueue.sort((a, b) => a.labelTime - b.labelTime);
    const landed = labelQueue.splice(0, labelQueue.findIndex((s) => s.labelTime >= now) >>> 0);
    core.takeLabels(landed.map((s) => records(s).label));
    const look = core.look(now);
    result.looks++;
    track(result, look, baseline, serving.name, now, driftAt, served);
    if (look.judgement.retrain) result.retrains.push(now);
    if (retrain && look.judgement.retrain) {
      serving = trainer.candidate(`v${result.retrains.length + 1}`);
      references.set(serving.name, serving.reference);
    }
  }
  const last = served.filter((s) => s.time >= serveFrom + (SERVE_HOURS - 1) * HOUR);
  result.lastHour = {
    served: evaluate(last.map((s) => ({ score: s.score, label: s.label }))).logLoss,
    frozen: evaluate(last.map((s) => ({ score: s.frozenScore, label: s.label }))).logLoss,
    version: serving.name,
  };
  return result;
}

/** First alert, and when the estimate and the realised log loss left their range of before the drift. */
function track(
  r: RunResult,
  look: Look,
  base: { estimate: number[]; realised: number[] },
  version: string,
  now: number,
  driftAt: number,
  served: Served[],
): void {
  for (const alert of look.judgement.alerts)
    if (alert.kind === 'drift') {
      r.driftAlerts.push({ at: now, version: alert.version, subject: alert.subject });
      if (r.firstAlertMinutes === null && now >= driftAt) {
        r.firstAlertMinutes = (now - driftAt) / MINUTE;
        r.clicksToFirstAlert = served.filter((s) => s.time >= driftAt).length;
      }
      if (now >= driftAt && r.firstAlertMinutes === (now - driftAt) / MINUTE)
        r.alertGroups.push(alert.subject);
    }
  const o = look.observations.find((x) => x.version === 'v1' && x.arm === 'champion');
  if (!o || version !== 'v1') return;
  const moved = (values: number[], value: number | null) => {
    if (value === null || values.length < 10) return false;
    const mean = values.reduce((a, b) => a + b) / values.length;
    const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
    return Math.abs(value - mean) > 4 * sd;
  };
  const minutes = (now - driftAt) / MINUTE;
  if (now < driftAt) {
    if (o.quality.estimate.logLoss !== null) base.estimate.push(o.quality.estimate.logLoss);
    if (o.quality.logLoss !== null && look.quality.to <= driftAt) base.realised.push(o.quality.logLoss);
    return;
  }
  if (r.estimateMovedMinutes === null && moved(base.estimate, o.quality.estimate.logLoss))
    r.estimateMovedMinutes = minutes;
  if (r.realisedMovedMinutes === null && moved(base.realised, o.quality.logLoss))
    r.realisedMovedMinutes = minutes;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? null
    : s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const medianOf = (runs: RunResult[], value: (r: RunResult) => number | null) =>
  median(runs.flatMap((r) => (value(r) === null ? [] : [value(r) as number])));

async function main(): Promise<void> {
  const seeds = Number(flags.seeds);
  const startTime = Date.UTC(2026, 10, 2, 0);
  const progress = new Progress({
    label: 'monitor runs',
    total: seeds + DRIFT_RUNS,
    logger: createLogger('bench'),
  }).start();
  // Each run is synchronous: give the progress timer its turn between runs.
  const advance = () => {
    progress.add(1);
    return new Promise((resolve) => setImmediate(resolve));
  };
  // With drift: once with the alerts only (the champion serves on: when the alert, the estimate
  // and the realised log loss moved), once with the trainer answering each retrain request.
  const watched: RunResult[] = [];
  const drifted: RunResult[] = [];
  for (let seed = 1; seed <= DRIFT_RUNS; seed++) {
    const clicks = shopClicks(seed, startTime, true);
    watched.push(serve(seed, clicks, startTime, true, false));
    drifted.push(serve(seed, clicks, startTime, true, true));
    await advance();
  }
  const quiet: RunResult[] = [];
  for (let seed = 101; seed < 101 + seeds; seed++) {
    quiet.push(serve(seed, shopClicks(seed, startTime, false), startTime, false, true));
    await advance();
  }
  progress.stop();
  const days = (quiet.length * SERVE_HOURS) / 24;
  const falseAlarms = quiet.reduce((n, r) => n + r.driftAlerts.length, 0);
  const summary = {
    setup: {
      trafficPerSecond: TRAFFIC,
      trainHours: TRAIN_HOURS,
      serveHours: SERVE_HOURS,
      driftAfterServingHours: DRIFT_AFTER / HOUR,
      campaign: CAMPAIGN,
      windowMinutes: 15,
      lookEveryMinutes: 1,
      budgetPerDay: BUDGET_PER_DAY,
      cooldownMinutes: COOLDOWN / MINUTE,
    },
    drift: {
      runs: drifted.length,
      flagged: watched.filter((r) => r.firstAlertMinutes !== null).length,
      medianMinutesToAlert: medianOf(watched, (r) => r.firstAlertMinutes),
      medianClicksToAlert: medianOf(watched, (r) => r.clicksToFirstAlert),
      firstAlertGroups: watched.map((r) => r.alertGroups),
      medianMinutesEstimateMoved: medianOf(watched, (r) => r.estimateMovedMinutes),
      medianMinutesRealisedMoved: medianOf(watched, (r) => r.realisedMovedMinutes),
      requestsPerRunAlertsOnly: watched.map((r) => r.retrains.length),
      retrainsPerRun: drifted.map((r) => r.retrains.length),
      minMinutesBetweenRetrains: Math.min(
        ...drifted.flatMap((r) => r.retrains.slice(1).map((t, i) => (t - r.retrains[i]!) / MINUTE)),
      ),
      lastHourServedLogLoss: medianOf(drifted, (r) => r.lastHour.served),
      lastHourFrozenLogLoss: medianOf(drifted, (r) => r.lastHour.frozen),
      lastHourRecoveredRuns: drifted.filter((r) => r.lastHour.served < r.lastHour.frozen).length,
    },
    noDrift: {
      runs: quiet.length,
      simulatedDays: days,
      driftAlerts: falseAlarms,
      falseAlarmsPerDay: falseAlarms / days,
      retrains: quiet.reduce((n, r) => n + r.retrains.length, 0),
    },
    runs: [...watched, ...drifted, ...quiet],
  };
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'monitor.json'), `${JSON.stringify(summary, null, 2)}\n`);
  console.log(
    JSON.stringify({ setup: summary.setup, drift: summary.drift, noDrift: summary.noDrift }, null, 2),
  );
}

await main();
