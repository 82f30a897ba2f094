// `flywheel rollout`: experiments and canary rollouts. `controller` runs the service that decides
// them on live outcomes; the other actions are an operator's, on the registry's experiments.
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { Producer } from 'kafkajs';
import type { LabeledExample } from '../common/contracts.js';
import { createProducer } from '../common/kafka.js';
import { readTopicToEnd } from '../common/read-topic.js';
import { TOPICS } from '../common/topics.js';
import { createRuntime } from '../common/runtime.js';
import { FeatureSpec } from '../model/features.js';
import { RegistryAdmin } from '../registry/admin.js';
import { loadRegistryConfig } from '../registry/config.js';
import {
  ExperimentAdmin,
  OPERATOR_ACTIONS,
  firstCount,
  rampFor,
  shareOf,
  type OperatorAction,
} from '../registry/experiment-admin.js';
import {
  ExperimentStore,
  METRIC_PRESETS,
  calibrationError,
  type ExperimentRecord,
  type PrimaryMetric,
} from '../registry/experiments.js';
import { FileModelRegistry } from '../registry/store.js';
import { estimateRate } from '../rollout/estimate.js';
import { chartLibrary } from '../common/charts.js';
import { renderReport } from '../rollout/report.js';
import { runRollout } from '../rollout/service.js';
import { UsageError, numberFlag, parseFlags } from './args.js';

export const ROLLOUT_USAGE = `flywheel rollout controller
flywheel rollout start VERSION [VERSION ...] [--primary logLoss|purchaseRate] [--steps 0.05,0.25,0.5]
                       [--min-outcomes N] [--min-step-seconds S] [--budget N] [--alpha A] [--reason TEXT]
                       [--baseline-share S] [--segments DE/*,*/tablet] [--mode split|shadow]
    several versions start together as a group against the champion (alpha shared out);
    --baseline-share serves the heuristic baseline to S of users as a permanent control arm;
    --segments restricts the split to those country/device segments;
    --mode shadow scores the version beside the champion on every click, serving no one, decides
    on log loss, and queues the canary (the ramp given) if it passes
flywheel rollout ls [--json]
flywheel rollout status ID [--json]
flywheel rollout pause|resume|abort|promote ID [--reason TEXT]
flywheel rollout estimate VERSION [--before ISO-TIME] [--json]
flywheel rollout report ID [--out FILE]`;

const FLAGS = {
  primary: { type: 'string' },
  steps: { type: 'string' },
  'min-outcomes': { type: 'string' },
  'min-step-seconds': { type: 'string' },
  budget: { type: 'string' },
  alpha: { type: 'string' },
  reason: { type: 'string' },
  'baseline-share': { type: 'string' },
  mode: { type: 'string' },
  segments: { type: 'string' },
  actor: { type: 'string' },
  json: { type: 'boolean' },
  before: { type: 'string' },
  out: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseFlags<typeof FLAGS>>['values'];

export async function runRolloutCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS, true);
  const [action, target, ...more] = positionals;
  if (action === 'controller') return runRollout(createRuntime('rollout'));
  if (action === 'estimate') return estimate(needed(target, 'a version id'), values);
  if (!action) throw new UsageError(ROLLOUT_USAGE);
  const config = loadRegistryConfig();
  const store = new ExperimentStore(config.FW_REGISTRY_DIR);
  if (action === 'ls') return list(await store.list(), values.json === true);
  if (action === 'status') return status(await store.get(needed(target, 'an experiment id')), values.json);
  if (action === 'report') return report(await store.get(needed(target, 'an experiment id')), values.out);
  const isOperator = OPERATOR_ACTIONS.includes(action as OperatorAction);
  if (action !== 'start' && !isOperator)
    throw new UsageError(`unknown action '${action}'\n\n${ROLLOUT_USAGE}`);
  const runtime = createRuntime('rollout-cli');
  const producer: Producer = createProducer(runtime.kafka);
  await producer.connect();
  try {
    const registry = new FileModelRegistry(config.FW_REGISTRY_DIR);
    const spec = new FeatureSpec({ hashBits: config.FW_FEATURE_HASH_BITS });
    const admin = new RegistryAdmin(registry, spec, { producer, codecs: runtime.codecs }, runtime.logger);
    const experiments = new ExperimentAdmin(store, admin);
    const actor = values.actor ?? `${userInfo().username}@cli`;
    const reason = values.reason ?? 'operator command';
    if (action === 'start') {
      const versions = [needed(target, 'a version id'), ...more];
      const records = await experiments.startGroup(versions, {
        actor,
        reason,
        config: rampOf(values),
        ...groupOf(values),
      });
      for (const record of records)
        console.log(
          `${record.id} queued: ${record.candidate}, ramp ${record.config.steps.join(' → ')}${record.group ? ` (group ${record.group}, alpha ${record.config.alpha})` : ''}; the controller starts it`,
        );
      return 0;
    }
    const record = await experiments.act(needed(target, 'an experiment id'), action as OperatorAction, {
      actor,
      reason,
    });
    console.log(`${record.id} is ${record.state}; ${record.candidate} serves ${pct(shareOf(record))}`);
    return 0;
  } finally {
    await producer.disconnect();
  }
}

async function report(e: ExperimentRecord, out: string | undefined): Promise<number> {
  const path = out ?? `experiment-${e.id}.html`;
  await writeFile(path, renderReport(e, await chartLibrary()));
  console.log(`${path}: ${e.id}, ${e.timeline.length} looks, ${e.decisions.length} decisions`);
  return 0;
}

/** The version's purchase rate at 100% estimated from the feedback it was logged with. */
async function estimate(version: string, values: Values): Promise<number> {
  const before = values.before === undefined ? Infinity : Date.parse(values.before);
  if (Number.isNaN(before)) throw new UsageError(`--before must be an ISO time, got '${values.before}'`);
  const runtime = createRuntime('rollout-cli');
  const examples: LabeledExample[] = [];
  for (const message of await readTopicToEnd(runtime.kafka, TOPICS.feedback)) {
    if (!message.value) continue;
    const decoded = await runtime.codecs.labeledExample.decode(message.value).catch(() => null);
    if (decoded && decoded.clickTime < before) examples.push(decoded);
  }
  const result = estimateRate(examples, version);
  if (values.json) console.log(JSON.stringify(result));
  else if (!result) console.log(`${version}: no served outcomes in ${TOPICS.feedback}`);
  else
    console.log(
      `${version}: purchase rate if it served everyone ${result.estimate.toFixed(4)} [${result.lower.toFixed(4)}, ${result.upper.toFixed(4)}] (95%, self-normalised inverse propensity) from ${result.outcomes} outcomes served at shares ${result.propensity.min}–${result.propensity.max} (effective ${Math.round(result.effectiveOutcomes)})`,
    );
  return result ? 0 : 1;
}

function needed(value: string | undefined, what: string): string {
  if (!value) throw new UsageError(`${what} is needed\n\n${ROLLOUT_USAGE}`);
  return value;
}

function rampOf(values: Values) {
  const primary = values.primary;
  if (primary !== undefined && !(primary in METRIC_PRESETS))
    throw new UsageError(
      `--primary must be one of ${Object.keys(METRIC_PRESETS).join(', ')}, got '${primary}'`,
    );
  const steps = values.steps?.split(',').map((s, i) => numberFlag(s.trim(), `steps[${i}]`, 0, 0, 1));
  const seconds = values['min-step-seconds'];
  return rampFor({
    primary: primary as PrimaryMetric | undefined,
    steps,
    minOutcomes: values['min-outcomes']
      ? numberFlag(values['min-outcomes'], 'min-outcomes', 0, 1)
      : undefined,
    minStepMs: seconds ? numberFlag(seconds, 'min-step-seconds', 0, 0) * 1000 : undefined,
    budget: values.budget ? numberFlag(values.budget, 'budget', 0, 1) : undefined,
    alpha: values.alpha ? numberFlag(values.alpha, 'alpha', 0.05, 1e-6, 0.5) : undefined,
  });
}

function groupOf(values: Values): { baselineShare?: number; segments?: string[]; mode?: 'shadow' } {
  const share = values['baseline-share'];
  if (values.mode !== undefined && values.mode !== 'split' && values.mode !== 'shadow')
    throw new UsageError(`--mode must be split or shadow, got '${values.mode}'`);
  return {
    ...(values.mode === 'shadow' ? { mode: 'shadow' as const } : {}),
    ...(share !== undefined ? { baselineShare: numberFlag(share, 'baseline-share', 0, 0, 0.2) } : {}),
    ...(values.segments ? { segments: values.segments.split(',').map((s) => s.trim()) } : {}),
  };
}

const pct = (share: number) => `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}%`;

function list(experiments: ExperimentRecord[], json: boolean): number {
  if (json) {
    console.log(
      JSON.stringify(
        experiments.map(({ timeline: _t, ...rest }) => rest),
        null,
        2,
      ),
    );
    return 0;
  }
  if (experiments.length === 0) {
    console.log('no experiments (flywheel rollout start VERSION)');
    return 0;
  }
  console.log('id          candidate  control   state         share  outcomes (control/candidate)');
  for (const e of experiments)
    console.log(
      `${e.id}  ${e.candidate}    ${(e.control ?? '-').padEnd(8)}  ${e.state.padEnd(12)}  ${pct(shareOf(e)).padStart(5)}  ${firstCount(e, 'control')}/${firstCount(e, 'candidate')}`,
    );
  return 0;
}

function status(e: ExperimentRecord, json: boolean | undefined): number {
  if (json) {
    console.log(JSON.stringify(e, null, 2));
    return 0;
  }
  console.log(`${e.id}: ${e.candidate} against ${e.control ?? '(the champion when it starts)'}, ${e.state}`);
  console.log(`  created by ${e.createdBy}: ${e.reason}`);
  if (e.mode === 'shadow')
    console.log('  shadow: scored beside the champion on every click, serving no one; decided on log loss');
  if (e.group)
    console.log(`  group ${e.group}: its candidates started together, each at alpha ${e.config.alpha}`);
  if (e.segments?.length) console.log(`  only in segments ${e.segments.join(', ')}`);
  console.log(`  ramp ${e.config.steps.map(pct).join(' → ')}, step ${e.step + 1} (${pct(shareOf(e))} now)`);
  for (const arm of ['control', 'candidate'] as const) {
    const means = Object.entries(e.stats[arm]).map(([m, s]) => `${m} ${s.mean.toFixed(4)}`);
    const ece = calibrationError(e.calibration?.[arm] ?? []);
    if (ece !== null) means.push(`calibration error ${ece.toFixed(4)}`);
    console.log(`  ${arm.padEnd(9)} ${String(firstCount(e, arm)).padStart(7)} outcomes  ${means.join('  ')}`);
  }
  const waiting = (e.pending ?? []).reduce((n, p) => n + (Object.values(p.stats)[0]?.n ?? 0), 0);
  if (waiting > 0) console.log(`  ${waiting} more outcomes wait for their attribution window to close`);
  if (e.baseline) {
    const means = Object.entries(e.baseline).map(([m, s]) => `${m} ${s.mean.toFixed(4)}`);
    const n = Object.values(e.baseline)[0]?.n ?? 0;
    console.log(
      `  ${'baseline'.padEnd(9)} ${String(n).padStart(7)} outcomes  ${means.join('  ')}  (${pct(e.baselineShare ?? 0)} of users)`,
    );
    for (const [metric, i] of Object.entries(e.timeline.at(-1)?.baselineIntervals ?? {}))
      console.log(
        `  ${metric}: control − baseline ${i.estimate.toFixed(5)} in [${i.lower?.toFixed(5) ?? '-∞'}, ${i.upper?.toFixed(5) ?? '∞'}]`,
      );
  }
  // Pooled means mix the steps' periods; the decisions compare within each split.
  const strata = Object.keys(e.strata ?? {}).length;
  if (strata > 1)
    console.log(
      `  (means over all; the intervals compare the arms within each of the ${strata} traffic splits)`,
    );
  for (const [metric, i] of Object.entries(e.timeline.at(-1)?.intervals ?? {}))
    console.log(
      `  ${metric}: candidate − control ${i.estimate.toFixed(5)} in [${i.lower?.toFixed(5) ?? '-∞'}, ${i.upper?.toFixed(5) ?? '∞'}] (always valid, alpha ${e.config.alpha})`,
    );
  for (const d of e.decisions)
    console.log(
      `  ${new Date(d.at).toISOString()} ${d.action} by ${d.actor} → ${pct(d.share)}: ${d.reasons.join('; ')}`,
    );
  if (e.endReason) console.log(`  ended: ${e.endReason}`);
  return 0;
}
