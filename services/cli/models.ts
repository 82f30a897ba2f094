// `flywheel models ls | show V | promote V --to ALIAS | rollback | upload DIR | diff V1 V2 |
// train | retrain V`: the registry from a terminal. Alias changes are published to Kafka.
import { userInfo } from 'node:os';
import type { Producer } from 'kafkajs';
import { createProducer } from '../common/kafka.js';
import { historySource } from '../common/read-ranges.js';
import { kafkaHistory } from '../trainer/history.js';
import { createRuntime } from '../common/runtime.js';
import { initBackend } from '../model/backend.js';
import { FeatureSpec } from '../model/features.js';
import { RegistryAdmin } from '../registry/admin.js';
import { ModelTraining } from '../training/model-training.js';
import { loadRegistryConfig } from '../registry/config.js';
import { ALIASES, FileModelRegistry, type Alias } from '../registry/store.js';
import { UsageError, numberFlag, parseFlags } from './args.js';
import { formatMetrics, versionTable } from './version-table.js';
import { simulatedTrainingExamples } from '../simulator/dataset.js';

const USAGE = `flywheel models <action>
  ls                                  versions, newest last, with aliases and holdout metrics
  show V                              one version's metadata and lineage (JSON)
  promote V --to ALIAS [--weight W]   point champion|challenger|shadow at V (W: challenger share)
  demote ALIAS                        remove an alias
  rollback [--alias ALIAS]            move the alias back to its previous version (default champion)
  upload DIR [--feature-spec HASH]    register a model folder after checking it against the feature
                                      spec (HASH: for an external tfjs Layers model, the spec it used)
  diff V1 V2                          metadata, metrics and weight differences
  train --kind K [--parent V] [--seed S] [--clicks N] [--data-seed D]   train on simulated data
  retrain V                           train V again from its lineage and compare
  history                             every alias move
common flags: --reason TEXT --actor NAME`;

const FLAGS = {
  to: { type: 'string' },
  weight: { type: 'string' },
  alias: { type: 'string' },
  reason: { type: 'string' },
  actor: { type: 'string' },
  kind: { type: 'string' },
  parent: { type: 'string' },
  seed: { type: 'string' },
  clicks: { type: 'string' },
  'data-seed': { type: 'string' },
  'feature-spec': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** What every action gets: the parsed command line and the registry it works on. */
interface ModelsCommand {
  values: { [K in keyof typeof FLAGS]?: (typeof FLAGS)[K]['type'] extends 'boolean' ? boolean : string };
  rest: string[];
  runtime: ReturnType<typeof createRuntime>;
  registry: FileModelRegistry;
  admin: RegistryAdmin;
  training: ModelTraining;
  actor: string;
  reason: string;
}

const NEEDS_KAFKA = ['promote', 'demote', 'rollback'];

export async function runModels(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, FLAGS, true);
  const [action, ...rest] = positionals;
  if (!action) throw new UsageError(USAGE);
  const run = ACTIONS[action];
  if (!run) throw new UsageError(`unknown action '${action}'\n\n${USAGE}`);
  const runtime = createRuntime('models');
  const config = loadRegistryConfig();
  const registry = new FileModelRegistry(config.FW_REGISTRY_DIR);
  const spec = new FeatureSpec({ hashBits: config.FW_FEATURE_HASH_BITS });
  let producer: Producer | null = null;
  if (NEEDS_KAFKA.includes(action)) {
    producer = createProducer(runtime.kafka);
    await producer.connect();
  }
  const admin = new RegistryAdmin(
    registry,
    spec,
    producer ? { producer, codecs: runtime.codecs } : null,
    runtime.logger,
  );
  const training = new ModelTraining(registry, spec, runtime.logger, {
    kafka: kafkaHistory(historySource(runtime), spec),
    simulated: simulatedTrainingExamples,
  });
  try {
    return await run({
      values,
      rest,
      runtime,
      registry,
      admin,
      training,
      actor: values.actor ?? `${userInfo().username}@cli`,
      reason: values.reason ?? 'operator command',
    });
  } finally {
    await producer?.disconnect();
  }
}

function aliasNamed(name: string | undefined): Alias {
  if (!ALIASES.includes(name as Alias))
    throw new UsageError(`alias must be one of ${ALIASES.join(', ')}, got '${name}'`);
  return name as Alias;
}

function versionAt(command: ModelsCommand, i = 0): string {
  const v = command.rest[i];
  if (!v) throw new UsageError(`a version id is needed\n\n${USAGE}`);
  return v;
}

const ACTIONS: Record<string, (command: ModelsCommand) => Promise<number>> = {
  ls: async ({ admin, registry }) => {
    for (const line of versionTable(await admin.list(), await registry.routing())) console.log(line);
    return 0;
  },
  show: async (command) => {
    console.log(JSON.stringify(await command.admin.show(versionAt(command)), null, 2));
    return 0;
  },
  history: async ({ registry }) => {
    for (const m of await registry.history()) {
      console.log(
        `${m.at}  ${m.alias.padEnd(10)} ${String(m.from ?? '-').padEnd(8)} → ${String(m.to ?? '-').padEnd(8)} ${m.actor}: ${m.reason}`,
      );
    }
    return 0;
  },
  promote: async (command) => {
    const { values, actor, reason } = command;
    const weight = values.weight === undefined ? undefined : numberFlag(values.weight, 'weight', 0.1, 0, 1);
    const result = await command.admin.promote(versionAt(command), aliasNamed(values.to ?? 'champion'), {
      actor,
      reason,
      challengerWeight: weight,
    });
    console.log(
      `${result.alias}: ${result.from ?? '-'} → ${result.to}; routing ${JSON.stringify(result.routing)}`,
    );
    return 0;
  },
  demote: async ({ admin, rest, actor, reason }) => {
    const result = await admin.removeAlias(aliasNamed(rest[0]), { actor, reason });
    console.log(`${result.alias}: ${result.from ?? '-'} → -; routing ${JSON.stringify(result.routing)}`);
    return 0;
  },
  rollback: async ({ admin, values, actor, reason }) => {
    const result = await admin.rollback(aliasNamed(values.alias ?? 'champion'), { actor, reason });
    console.log(
      `${result.alias}: ${result.from ?? '-'} → ${result.to ?? '-'}; routing ${JSON.stringify(result.routing)}`,
    );
    return 0;
  },
  upload: async (command) => {
    await initBackend(command.runtime.logger);
    const metadata = await command.admin.uploadDirectory(versionAt(command), {
      actor: command.actor,
      featureSpecHash: command.values['feature-spec'],
    });
    console.log(`registered ${metadata.version} (${metadata.kind}, sha256 ${metadata.sha256.slice(0, 12)}…)`);
    return 0;
  },
  diff: async (command) => {
    const diff = await command.admin.diff(versionAt(command, 0), versionAt(command, 1));
    if (command.values.json) console.log(JSON.stringify(diff, null, 2));
    else printDiff(diff);
    return 0;
  },
  train: async ({ training: trainer, runtime, values, actor }) => {
    await initBackend(runtime.logger);
    const kind = values.kind ?? 'logreg';
    if (kind !== 'logreg' && kind !== 'wide_deep' && kind !== 'ftrl')
      throw new UsageError(`--kind must be logreg, wide_deep or ftrl`);
    const clicks = numberFlag(values.clicks, 'clicks', 50_000, 1000, 10_000_000);
    const metadata = await trainer.train({
      kind,
      parent: values.parent ?? null,
      seed: numberFlag(values.seed, 'seed', 1, 0),
      training: {
        source: 'simulated',
        seed: numberFlag(values['data-seed'], 'data-seed', 1, 0),
        clicks,
        startTime: Date.UTC(2026, 0, 1),
        trafficRate: 100,
        attributionWindowMs: 30 * 60 * 1000,
        examples: clicks,
      },
      actor,
    });
    console.log(`registered ${metadata.version}: ${formatMetrics(metadata)}`);
    return 0;
  },
  retrain: async (command) => {
    await initBackend(command.runtime.logger);
    const result = await command.training.retrain(versionAt(command));
    console.log(
      result.identical
        ? `${result.version} reproduced exactly (sha256 ${result.sha256.slice(0, 12)}…)`
        : `${result.version} NOT reproduced: sha256 ${result.reproducedSha256.slice(0, 12)}… vs ${result.sha256.slice(0, 12)}…, max weight difference ${result.maxWeightDifference}`,
    );
    return result.identical ? 0 : 1;
  },
};

function printDiff(diff: Awaited<ReturnType<RegistryAdmin['diff']>>): void {
  console.log(`${diff.a} → ${diff.b}`);
  for (const f of diff.fields) console.log(`  ${f.field}: ${JSON.stringify(f.a)} → ${JSON.stringify(f.b)}`);
  for (const m of diff.metrics) {
    if (m.a === null && m.b === null) continue;
    console.log(
      `  ${m.metric}: ${m.a?.toFixed(4) ?? '-'} → ${m.b?.toFixed(4) ?? '-'}${m.delta === null ? '' : ` (${m.delta >= 0 ? '+' : ''}${m.delta.toFixed(4)})`}`,
    );
  }
  if (diff.weights)
    console.log(
      `  weights: L2 distance ${diff.weights.l2Distance.toFixed(4)}, ${(diff.weights.changedShare * 100).toFixed(1)}% of weights differ`,
    );
}
