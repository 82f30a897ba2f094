// Operator actions on the registry, shared by the CLI and the admin HTTP API: list, show,
// promote, roll back, upload, diff, train and retrain. Every alias change is published to
// fw.models.updates before the call returns.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import type { Codecs } from '../common/contracts.js';
import { ArtifactError, FlywheelError, RegistryError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { checkSignature, fromArtifacts, parseManifest, wrapExternalLayersModel } from '../model/artifacts.js';
import type { FeatureSpec } from '../model/features.js';
import { TOPICS } from '../common/topics.js';
import { publishUploadedExamples, toUploadedExamples } from './label-upload.js';
import { ACTIVE_STATES, ExperimentStore } from './experiments.js';
import { publishAliasChange } from './publisher.js';
import {
  type Alias,
  type FileModelRegistry,
  type Routing,
  type Split,
  type VersionMetadata,
} from './store.js';

export interface AliasChangeOptions {
  actor: string;
  reason: string;
  /** The experiment whose action this is: the challenger moves only by one while one runs. */
  experiment?: string;
}

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

  async promote(version: string, alias: Alias, options: AliasChangeOptions & { challengerWeight?: number }) {
    return this.changeAlias(alias, () => this.registry.moveAlias(alias, version, options), options);
  }

  /** Sets the split whole (several challengers, the baseline's share, segments): experiments' only. */
  async setSplit(split: Split, options: AliasChangeOptions) {
    return this.changeAlias('challenger', () => this.registry.setSplit(split, options), options);
  }

  async removeAlias(alias: Alias, options: AliasChangeOptions) {
    return this.changeAlias(alias, () => this.registry.moveAlias(alias, null, options), options);
  }

  async rollback(alias: Alias, options: AliasChangeOptions) {
    return this.changeAlias(alias, () => this.registry.rollback(alias, options), options);
  }

  /**
   * A running or paused experiment routes the challenger (a shadow experiment, the shadow): only
   * its own actions may move it.
   */
  private async refuseWhileExperimentRoutes(alias: Alias): Promise<void> {
    const active = (await new ExperimentStore(this.registry.root).list()).find(
      (e) => ACTIVE_STATES.includes(e.state) && (alias === 'challenger' || e.mode === 'shadow'),
    );
    if (active)
      throw new RegistryError(
        'FW_EXPERIMENT_CONFLICT',
        `experiment ${active.id} routes the ${alias} (${active.candidate}, ${active.state}): abort it first (flywheel rollout abort ${active.id})`,
      );
  }

  private async changeAlias(
    alias: Alias,
    move: () => ReturnType<FileModelRegistry['moveAlias']>,
    options: AliasChangeOptions,
  ): Promise<AliasChangeResult> {
    if (alias !== 'champion' && !options.experiment) await this.refuseWhileExperimentRoutes(alias);
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
}

/** All weights of an artifact as one float array (for distances, not for loading). */
export function weightValues(files: Record<string, Buffer>, label: string): Float32Array {
  const bin = files['weights.bin'];
  if (!bin) throw new FlywheelError('FW_ARTIFACT_INVALID', `${label} has no weights.bin`);
  return new Float32Array(Uint8Array.from(bin).buffer);
}
