// Operator actions on the registry, shared by the CLI and the admin HTTP API: list, show,
// promote, roll back, upload, diff, train and retrain. Every alias change is published to
// fw.models.updates before the call returns.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import type { Codecs, LabeledExample } from '../common/contracts.js';
import { ArtifactError, FlywheelError, RegistryError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import {
  artifactsSha256,
  checkSignature,
  fromArtifacts,
  parseManifest,
  wrapExternalLayersModel,
} from '../model/artifacts.js';
import type { FeatureSpec } from '../model/features.js';
import { TOPICS } from '../common/topics.js';
import { publishUploadedExamples, toUploadedExamples } from './label-upload.js';
import { publishAliasChange } from './publisher.js';
import type { TrainingExample } from '../model/models.js';
import {
  defaultHyper,
  loadExamples,
  retrain,
  runRecipe,
  type TrainingSources,
  type LearnedKindName,
} from './recipes.js';

export interface TrainOptions {
  kind: LearnedKindName;
  parent: string | null;
  seed: number;
  training: TrainingData;
  hyperParameters?: Record<string, unknown>;
  actor: string;
}
import {
  LINEAGE_FILES,
  type Alias,
  type FileModelRegistry,
  type Routing,
  type TrainingData,
  type VersionMetadata,
} from './store.js';

export interface AliasChangeResult {
  routing: Routing;
  alias: Alias;
  from: string | null;
  to: string | null;
}

export interface VersionDiff {
  a: string;
  b: string;
  fields: { field: string; a: unknown; b: unknown }[];
  metrics: { metric: string; a: number | null; b: number | null; delta: number | null }[];
  /** For learned models of the same kind: how far apart the weights are. */
  weights: { l2Distance: number; changedShare: number } | null;
}

export class RegistryAdmin {
  constructor(
    readonly registry: FileModelRegistry,
    readonly spec: FeatureSpec,
    private readonly publish: {
      producer: Producer;
      codecs: Codecs;
      topic?: string;
      feedbackTopic?: string;
    } | null,
    private readonly logger: Logger,
    /** Where training data comes from: Kafka's history, the simulator (recipes.ts). */
    private readonly sources: TrainingSources = {},
  ) {}

  /** Externally labeled examples to the feedback topic (see label-upload.ts); all or nothing. */
  async importLabels(
    inputs: unknown[],
    options: { actor: string; maxClockSkewMs: number; onProgress?: (sent: number) => void },
  ): Promise<{ published: number; topic: string }> {
    if (!this.publish)
      throw new FlywheelError('FW_INTERNAL', 'no Kafka producer: labels cannot be published');
    const examples = toUploadedExamples(inputs, this.spec, {
      now: Date.now(),
      maxClockSkewMs: options.maxClockSkewMs,
    });
    const topic = this.publish.feedbackTopic ?? TOPICS.feedback;
    await publishUploadedExamples(
      this.publish.producer,
      this.publish.codecs,
      topic,
      examples,
      options.onProgress,
    );
    this.logger.info(
      { actor: options.actor, published: examples.length, topic },
      'labeled examples uploaded',
    );
    return { published: examples.length, topic };
  }

  list(): Promise<VersionMetadata[]> {
    return this.registry.list();
  }

  show(version: string): Promise<VersionMetadata> {
    return this.registry.get(version);
  }

  async promote(
    version: string,
    alias: Alias,
    options: { actor: string; reason: string; challengerWeight?: number },
  ) {
    return this.changeAlias(alias, () => this.registry.moveAlias(alias, version, options), options);
  }

  async removeAlias(alias: Alias, options: { actor: string; reason: string }) {
    return this.changeAlias(alias, () => this.registry.moveAlias(alias, null, options), options);
  }

  async rollback(alias: Alias, options: { actor: string; reason: string }) {
    return this.changeAlias(alias, () => this.registry.rollback(alias, options), options);
  }

  private async changeAlias(
    alias: Alias,
    move: () => ReturnType<FileModelRegistry['moveAlias']>,
    options: { actor: string; reason: string },
  ): Promise<AliasChangeResult> {
    const { routing, move: done } = await move();
    if (this.publish) {
      await publishAliasChange(
        this.publish.producer,
        this.publish.codecs,
        this.registry,
        { alias, version: done.to, routing, actor: options.actor, reason: done.reason },
        this.publish.topic,
      );
    }
    this.logger.info(
      { alias, from: done.from, to: done.to, routing, actor: options.actor, reason: done.reason },
      'alias moved',
    );
    return { routing, alias, from: done.from, to: done.to };
  }

  /** Register an externally built model after checking it against this deployment's feature spec. */
  async upload(
    files: Record<string, Buffer>,
    options: { actor: string; description: string },
  ): Promise<VersionMetadata> {
    const manifest = parseManifest(files);
    checkSignature(manifest, this.spec);
    // Building the model proves the weights fit the declared kind and shapes.
    (await fromArtifacts(files, this.spec)).dispose();
    return this.registry.register({
      artifacts: { manifest, files },
      parent: null,
      seed: 0,
      training: { source: 'upload', description: options.description, examples: null },
      metrics: null,
      createdBy: `upload:${options.actor}`,
    });
  }

  /**
   * Upload a folder: a Flywheel artifact (manifest.json), or an external tfjs Layers model
   * (model.json + shards) with the feature spec it was trained on (`featureSpecHash`).
   */
  async uploadDirectory(
    dir: string,
    options: { actor: string; description?: string; featureSpecHash?: string },
  ): Promise<VersionMetadata> {
    let files: Record<string, Buffer> = {};
    for (const name of await readdir(dir)) {
      if (name === 'metadata.json') continue; // registry-owned; a copied version gets new metadata
      files[name] = await readFile(join(dir, name));
    }
    if (!files['manifest.json'] && files['model.json']) {
      if (!options.featureSpecHash) {
        throw new ArtifactError(
          'FW_FEATURE_SPEC_MISMATCH',
          `an external tfjs model must say which feature spec it was trained on (this deployment: ${this.spec.hash})`,
        );
      }
      files = (await wrapExternalLayersModel(files, this.spec, options.featureSpecHash)).files;
    }
    return this.upload(files, {
      actor: options.actor,
      description: options.description ?? `uploaded from ${dir}`,
    });
  }

  async diff(a: string, b: string): Promise<VersionDiff> {
    const [ma, mb] = await Promise.all([this.registry.get(a), this.registry.get(b)]);
    const fields: VersionDiff['fields'] = (
      ['kind', 'parent', 'featureSpecHash', 'seed', 'createdBy', 'status', 'sha256'] as const
    )
      .filter((f) => JSON.stringify(ma[f]) !== JSON.stringify(mb[f]))
      .map((f) => ({ field: f, a: ma[f], b: mb[f] }));
    for (const key of new Set([...Object.keys(ma.hyperParameters), ...Object.keys(mb.hyperParameters)])) {
      if (JSON.stringify(ma.hyperParameters[key]) !== JSON.stringify(mb.hyperParameters[key])) {
        fields.push({
          field: `hyperParameters.${key}`,
          a: ma.hyperParameters[key],
          b: mb.hyperParameters[key],
        });
      }
    }
    if (JSON.stringify(ma.training) !== JSON.stringify(mb.training))
      fields.push({ field: 'training', a: ma.training, b: mb.training });
    const metrics = (['logLoss', 'auc', 'calibrationError', 'examples'] as const).map((metric) => {
      const va = ma.metrics?.[metric] ?? null;
      const vb = mb.metrics?.[metric] ?? null;
      return { metric, a: va, b: vb, delta: va !== null && vb !== null ? vb - va : null };
    });
    let weights: VersionDiff['weights'] = null;
    if (ma.kind === mb.kind && ma.kind !== 'baseline') {
      const wa = await this.weightsOf(a);
      const wb = await this.weightsOf(b);
      if (wa.length === wb.length) {
        let sum = 0;
        let changed = 0;
        for (let i = 0; i < wa.length; i++) {
          const d = (wa[i] as number) - (wb[i] as number);
          sum += d * d;
          if (d !== 0) changed++;
        }
        weights = { l2Distance: Math.sqrt(sum), changedShare: changed / Math.max(1, wa.length) };
      }
    }
    return { a, b, fields, metrics, weights };
  }

  private async weightsOf(version: string): Promise<Float32Array> {
    return weightValues((await this.registry.loadArtifacts(version)).files, version);
  }

  /** Train a new version from a recipe and register it with its holdout metrics. */
  async train(options: TrainOptions): Promise<VersionMetadata> {
    return (await this.trainMeasured(options)).metadata;
  }

  private async trainMeasured(
    options: TrainOptions,
    examples?: TrainingExample[],
  ): Promise<{ metadata: VersionMetadata; scoreMicros: number }> {
    const hyper = { ...defaultHyper(options.kind), ...options.hyperParameters };
    let training = options.training;
    if (training.source === 'kafka') {
      // Kafka history: the lineage records what the ranges held.
      examples ??= await loadExamples(training, this.spec, this.sources);
      const labelSources: Record<string, number> = {};
      let newestEventTime = 0;
      for (const e of examples as LabeledExample[]) {
        labelSources[e.labelSource] = (labelSources[e.labelSource] ?? 0) + 1;
        newestEventTime = Math.max(newestEventTime, e.labelTime);
      }
      // A batch model learns everything but its holdout; the newest of all is in the holdout.
      training = { ...training, examples: examples.length, labelSources, newestEventTime };
    }
    const trained = await runRecipe(
      {
        kind: options.kind,
        parent: options.parent,
        seed: options.seed,
        hyperParameters: hyper,
        training,
      },
      this.spec,
      this.registry,
      this.logger,
      { sources: this.sources, ...(examples ? { examples } : {}) },
    );
    trained.model.dispose();
    const metadata = await this.registry.register({
      artifacts: trained.artifacts,
      parent: options.parent,
      seed: options.seed,
      training,
      metrics: trained.metrics,
      createdBy: options.actor,
    });
    return { metadata, scoreMicros: trained.scoreMicros };
  }

  /**
   * Knowledge distillation: a teacher of `teacherKind` trained on the history, then a student of
   * `kind` trained on the teacher's scores (soft labels) of the same examples; both registered
   * (the student's parent and `training.teacher` name the teacher), both judged on the same
   * holdout with the true labels, and their scoring latency measured on it.
   */
  async distill(options: TrainOptions & { teacherKind: LearnedKindName }): Promise<{
    teacher: VersionMetadata;
    student: VersionMetadata;
    micros: { teacher: number; student: number };
  }> {
    const training = options.training;
    if (training.source !== 'kafka')
      throw new FlywheelError('FW_BAD_REQUEST', 'distillation trains on Kafka history');
    const examples = await loadExamples(training, this.spec, this.sources);
    const teacher = await this.trainMeasured(
      { ...options, kind: options.teacherKind, hyperParameters: {}, parent: null },
      examples,
    );
    const student = await this.trainMeasured(
      {
        ...options,
        parent: teacher.metadata.version,
        training: { ...training, teacher: teacher.metadata.version },
      },
      examples,
    );
    return {
      teacher: teacher.metadata,
      student: student.metadata,
      micros: { teacher: teacher.scoreMicros, student: student.scoreMicros },
    };
  }

  /** Train `version` again from its lineage; `identical` is true when the artifacts match byte for byte. */
  async retrain(version: string): Promise<{
    version: string;
    sha256: string;
    reproducedSha256: string;
    identical: boolean;
    maxWeightDifference: number;
  }> {
    const metadata = await this.registry.get(version);
    if (metadata.training.source === 'upload') {
      throw new RegistryError(
        'FW_BAD_REQUEST',
        `${version} was uploaded; it has no training lineage to replay`,
      );
    }
    const again = await retrain(metadata, this.spec, this.registry, this.logger, this.sources);
    again.model.dispose();
    // The model's files, not lineage attachments (a trainer snapshot is the start of the next
    // version's lineage, not something a retrain makes).
    const modelFiles = (files: Record<string, Buffer>) =>
      Object.fromEntries(Object.entries(files).filter(([name]) => !LINEAGE_FILES.includes(name)));
    const stored = modelFiles((await this.registry.loadArtifacts(version)).files);
    const sha256 = artifactsSha256(stored);
    const reproducedSha256 = artifactsSha256(modelFiles(again.artifacts.files));
    const original = await this.weightsOf(version);
    const reproduced = weightValues(again.artifacts.files, `${version} (retrained)`);
    let maxWeightDifference = original.length === reproduced.length ? 0 : Infinity;
    for (let i = 0; i < Math.min(original.length, reproduced.length); i++) {
      maxWeightDifference = Math.max(
        maxWeightDifference,
        Math.abs((original[i] as number) - (reproduced[i] as number)),
      );
    }
    return {
      version,
      sha256,
      reproducedSha256,
      identical: reproducedSha256 === sha256,
      maxWeightDifference,
    };
  }
}

/** All weights of an artifact as one float array (for distances, not for loading). */
function weightValues(files: Record<string, Buffer>, label: string): Float32Array {
  const bin = files['weights.bin'];
  if (!bin) throw new FlywheelError('FW_ARTIFACT_INVALID', `${label} has no weights.bin`);
  return new Float32Array(Uint8Array.from(bin).buffer);
}
