// Batch training of model versions, apart from the registry (which stores, publishes and
// verifies): a recipe trained on Kafka history or simulated data and registered with its holdout
// metrics, a teacher distilled into a student, and a version trained again from its lineage to
// check that it reproduces byte for byte.
import type { LabeledExample } from '../common/contracts.js';
import { FlywheelError, RegistryError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { artifactsSha256 } from '../model/artifacts.js';
import type { FeatureSpec } from '../model/features.js';
import type { TrainingExample } from '../model/models.js';
import { weightValues } from '../registry/admin.js';
import {
  LINEAGE_FILES,
  type FileModelRegistry,
  type TrainingData,
  type VersionMetadata,
} from '../registry/store.js';
import {
  defaultHyper,
  loadExamples,
  retrain,
  runRecipe,
  type LearnedKindName,
  type TrainingSources,
} from './recipes.js';

export interface TrainOptions {
  kind: LearnedKindName;
  parent: string | null;
  seed: number;
  training: TrainingData;
  hyperParameters?: Record<string, unknown>;
  actor: string;
}

export class ModelTraining {
  constructor(
    readonly registry: FileModelRegistry,
    readonly spec: FeatureSpec,
    private readonly logger: Logger,
    /** Where training data comes from: Kafka's history, the simulator (recipes.ts). */
    private readonly sources: TrainingSources = {},
  ) {}

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
      reference: trained.reference,
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
    const original = weightValues((await this.registry.loadArtifacts(version)).files, version);
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
