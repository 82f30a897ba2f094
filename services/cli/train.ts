// `flywheel train --from A --to B`: a backfill. Trains a fresh model from the labeled history in
// Kafka (feedback examples and human labels between two points) in its own process, so scorers
// and the predict API keep serving; registers it with its Kafka lineage, which `flywheel models
// retrain` replays. `--teacher KIND` distills: a teacher of that kind first, then the student on
// its soft labels, and both are compared on the same holdout (quality and scoring latency).
// `flywheel trainer propose`: ask the running trainer for a candidate now (an operator trigger).
import { userInfo } from 'node:os';
import { createProducer } from '../common/kafka.js';
import { historySource } from '../common/read-ranges.js';
import { kafkaHistory } from '../trainer/history.js';
import { createRuntime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { initBackend } from '../model/backend.js';
import { FeatureSpec } from '../model/features.js';
import { RegistryAdmin } from '../registry/admin.js';
import { loadRegistryConfig } from '../registry/config.js';
import type { LearnedKindName } from '../training/recipes.js';
import { ModelTraining } from '../training/model-training.js';
import { FileModelRegistry, type TrainingData, type VersionMetadata } from '../registry/store.js';
import { resolveRanges } from '../trainer/history.js';
import { loadTrainerConfig } from '../trainer/config.js';
import { UsageError, numberFlag, parseFlags } from './args.js';
import { simulatedTrainingExamples } from '../simulator/dataset.js';

export const TRAIN_USAGE = `flywheel train --from POINT --to POINT [--kind ftrl|logreg|wide_deep] [--teacher KIND]
                [--seed S] [--promote challenger|champion] [--feedback-topic T] [--human-topic T]
  POINT: earliest | latest | a time (ISO 8601 or ms since the epoch) | TOPIC:PARTITION@OFFSET,...`;

const KINDS = ['ftrl', 'logreg', 'wide_deep'] as const;

function kindFlag(value: string | undefined, name: string, fallback: LearnedKindName): LearnedKindName {
  const kind = value ?? fallback;
  if (!(KINDS as readonly string[]).includes(kind))
    throw new UsageError(`--${name} must be one of ${KINDS.join(', ')}`);
  return kind as LearnedKindName;
}

export async function runTrain(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    from: { type: 'string' },
    to: { type: 'string' },
    kind: { type: 'string' },
    teacher: { type: 'string' },
    seed: { type: 'string' },
    promote: { type: 'string' },
    'feedback-topic': { type: 'string' },
    'human-topic': { type: 'string' },
    actor: { type: 'string' },
  });
  if (!values.from || !values.to) throw new UsageError(TRAIN_USAGE);
  if (values.promote && values.promote !== 'challenger' && values.promote !== 'champion')
    throw new UsageError('--promote must be challenger or champion');
  const kind = kindFlag(values.kind, 'kind', 'ftrl');
  const runtime = createRuntime('train');
  await initBackend(runtime.logger);
  const config = loadRegistryConfig();
  const spec = new FeatureSpec({ hashBits: config.FW_FEATURE_HASH_BITS });
  const feedback = values['feedback-topic'] ?? TOPICS.feedback;
  const human = values['human-topic'] ?? TOPICS.humanLabels;
  const ranges = await resolveRanges(runtime.kafka, [feedback, human], values.from, values.to);
  const producer = values.promote ? createProducer(runtime.kafka) : null;
  await producer?.connect();
  const registry = new FileModelRegistry(config.FW_REGISTRY_DIR);
  const admin = new RegistryAdmin(
    registry,
    spec,
    producer ? { producer, codecs: runtime.codecs } : null,
    runtime.logger,
  );
  const trainer = new ModelTraining(registry, spec, runtime.logger, {
    kafka: kafkaHistory(historySource(runtime), spec),
    simulated: simulatedTrainingExamples,
  });
  const training: TrainingData = {
    source: 'kafka',
    ranges,
    examples: 0,
    labelSources: {},
    trigger: 'backfill',
    kinds: { [feedback]: 'labeledExample', [human]: 'humanLabel' },
  };
  const actor = values.actor ?? `${userInfo().username}@cli`;
  const seed = numberFlag(values.seed, 'seed', 1, 0);
  try {
    const version = await trainOrDistill(trainer, { kind, teacher: values.teacher, seed, training, actor });
    if (values.promote) {
      const result = await admin.promote(version.version, values.promote as 'challenger' | 'champion', {
        actor,
        reason: `backfill ${values.from} → ${values.to}`,
      });
      console.log(`${result.alias}: ${result.from ?? '-'} → ${result.to}`);
    }
    return 0;
  } finally {
    await producer?.disconnect();
  }
}

/** `flywheel trainer propose --reason TEXT [--url U]`: a candidate now, judged by the gate. */
export async function runTrainerPropose(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { reason: { type: 'string' }, url: { type: 'string' } });
  if (!values.reason) throw new UsageError('usage: flywheel trainer propose --reason TEXT [--url URL]');
  const answer = await requestCandidate(values.reason, values.url);
  if (!answer.ok) {
    console.error(answer.message);
    return 1;
  }
  console.log(answer.message);
  return answer.alias ? 0 : 1;
}

/** Asks the trainer over HTTP to judge a candidate now (FW_ADMIN_TOKEN); what it answered. */
export async function requestCandidate(
  reason: string,
  url = `http://127.0.0.1:${loadTrainerConfig().FW_TRAINER_HTTP_PORT}`,
): Promise<{ ok: boolean; alias: string | null; version: string | null; message: string }> {
  const token = loadRegistryConfig().FW_ADMIN_TOKEN;
  if (!token) throw new UsageError('FW_ADMIN_TOKEN must be set (the trainer checks it)');
  const response = await fetch(`${url}/v1/candidates`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ reason, trigger: 'operator' }),
  });
  const body = (await response.json()) as {
    version?: string;
    alias?: string;
    reasons?: string[];
    held?: string;
    error?: { message: string };
  };
  if (!response.ok)
    return {
      ok: false,
      alias: null,
      version: null,
      message: `trainer answered ${response.status}: ${body.error?.message ?? JSON.stringify(body)}`,
    };
  return {
    ok: true,
    alias: body.alias ?? null,
    version: body.version ?? null,
    message: body.alias
      ? `${body.version} promoted to ${body.alias}`
      : body.held
        ? `${body.version} accepted, not promoted: ${body.held}`
        : `${body.version ?? 'no candidate'} rejected: ${(body.reasons ?? []).join('; ')}`,
  };
}

/** Trains a model on the ranges, or distils a teacher's into it (--teacher); prints its metrics. */
async function trainOrDistill(
  trainer: ModelTraining,
  o: {
    kind: LearnedKindName;
    teacher: string | undefined;
    seed: number;
    training: TrainingData;
    actor: string;
  },
): Promise<VersionMetadata> {
  const { kind, seed, training, actor } = o;
  if (o.teacher) {
    const result = await trainer.distill({
      kind,
      teacherKind: kindFlag(o.teacher, 'teacher', 'wide_deep'),
      parent: null,
      seed,
      training,
      actor,
    });
    const row = (name: string, v: VersionMetadata, micros: number) =>
      `${name.padEnd(8)} ${v.version} ${v.kind.padEnd(9)} logloss ${v.metrics?.logLoss.toFixed(4)}  AUC ${v.metrics?.auc.toFixed(4)}  ${micros.toFixed(2)} µs/example`;
    console.log(row('teacher', result.teacher, result.micros.teacher));
    console.log(row('student', result.student, result.micros.student));
    return result.student;
  }
  const version = await trainer.train({ kind, parent: null, seed, training, actor });
  const m = version.metrics;
  console.log(
    `registered ${version.version} (${kind}): logloss ${m?.logLoss.toFixed(4)} (baseline ${m?.baselineLogLoss?.toFixed(4)})  AUC ${m?.auc.toFixed(4)}  n=${m?.examples}`,
  );
  return version;
}
