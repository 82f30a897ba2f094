// The models a scorer serves, swapped as a whole. A ModelSet is immutable; a slice of a batch
// (or a predict request) acquires the current set when it starts and releases it when done, so
// a swap never changes the model under work in flight. New versions load and verify in the
// background; one that fails to load is reported and the previous set keeps serving. Models no
// longer routed are disposed once no batch uses them.
import { EventEmitter } from 'node:events';
import { EMPTY_ROUTING, routingOf, type ModelUpdate, type Routing } from '../common/contracts.js';
import { FlywheelError, errorMessage, invariant } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { fromArtifacts, type AnyModel } from '../model/artifacts.js';
import { HeuristicBaseline } from '../model/baseline.js';
import type { FeatureSpec } from '../model/features.js';
import type { FileModelRegistry } from '../registry/store.js';

export class ModelSet {
  inFlight = 0;
  retired = false;

  readonly routing: Routing;

  constructor(
    routing: Partial<Routing>,
    readonly models: ReadonlyMap<string, AnyModel>,
    readonly baseline: HeuristicBaseline,
    readonly generation: number,
  ) {
    this.routing = routingOf(routing);
  }

  has(version: string): boolean {
    return this.models.has(version);
  }

  model(version: string): AnyModel {
    const model = this.models.get(version);
    invariant(model, `model ${version} is not loaded`);
    return model;
  }
}

export interface ModelManagerEvents {
  swapped: [ModelSet];
  /**
   * A version newly serving, with how old the newest outcome it learned from is, and the newest
   * it has seen (learned or judged on), when its lineage says.
   */
  live: [
    {
      version: string;
      outcomeAgeMs: number | null;
      seenAgeMs: number | null;
      /** The newest outcome's own time (event time), for ages on the stream's clock. */
      learnedTime: number | null;
    },
  ];
  loadFailed: [{ version: string; error: string }];
}

export class ModelManager extends EventEmitter<ModelManagerEvents> {
  private currentSet: ModelSet;
  private generation = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly registry: FileModelRegistry,
    private readonly spec: FeatureSpec,
    private readonly logger: Logger,
    baseline = new HeuristicBaseline(),
  ) {
    super();
    this.currentSet = new ModelSet(routingOf(EMPTY_ROUTING), new Map(), baseline, 0);
  }

  get current(): ModelSet {
    return this.currentSet;
  }

  acquire(): ModelSet {
    const set = this.currentSet;
    set.inFlight++;
    return set;
  }

  release(set: ModelSet): void {
    set.inFlight--;
    if (set.retired && set.inFlight === 0) this.disposeUnused(set);
  }

  /**
   * Apply a routing update (the record keyed "routing", or an alias record carrying the routing).
   * Updates apply in arrival order; the returned promise resolves to true when this one is in
   * force, or to false when it failed (then the previous set keeps serving). `restoring` marks a
   * return to an update served before: its versions do not count as newly live.
   */
  apply(update: ModelUpdate, options: { restoring?: boolean } = {}): Promise<boolean> {
    const applied = this.pending
      .then(() => this.load(update, options.restoring ?? false))
      .then(
        () => true,
        () => false,
      );
    this.pending = applied.then(() => undefined);
    return applied;
  }

  private async load(update: ModelUpdate, restoring: boolean): Promise<void> {
    const routing = routingOf(update.routing);
    const wanted = [
      routing.champion,
      routing.challenger,
      ...routing.challengers.map((c) => c.version),
      routing.shadow,
    ].filter((v): v is string => v !== null);
    const old = this.currentSet;
    const models = new Map<string, AnyModel>();
    const loadedNow: AnyModel[] = [];
    const newest = new Map<string, { learned: number | null; seen: number | null }>();
    for (const version of new Set(wanted)) {
      const existing = old.models.get(version);
      if (existing) {
        models.set(version, existing);
        continue;
      }
      try {
        const { model, times } = await this.loadVersion(version, update);
        models.set(version, model);
        loadedNow.push(model);
        newest.set(version, times);
      } catch (error) {
        for (const model of loadedNow) model.dispose();
        this.logger.error(
          { version, err: error, update: update.updateId },
          'model failed to load; the previous models keep serving',
        );
        this.emit('loadFailed', { version, error: errorMessage(error) });
        throw error;
      }
    }
    const next = new ModelSet(routing, models, old.baseline, ++this.generation);
    this.currentSet = next;
    old.retired = true;
    if (old.inFlight === 0) this.disposeUnused(old);
    this.logger.info({ routing, generation: next.generation }, 'models swapped');
    this.emit('swapped', next);
    if (restoring) return;
    const now = Date.now();
    for (const [version, { learned, seen }] of newest)
      this.emit('live', {
        version,
        outcomeAgeMs: learned === null ? null : now - learned,
        seenAgeMs: seen === null ? null : now - seen,
        learnedTime: learned,
      });
  }

  /** One version from the registry, checked against the update's sha256; its lineage's times. */
  private async loadVersion(
    version: string,
    update: ModelUpdate,
  ): Promise<{ model: AnyModel; times: { learned: number | null; seen: number | null } }> {
    const started = Date.now();
    const { metadata, files } = await this.registry.loadArtifacts(version);
    if (update.version === version && update.sha256 && update.sha256 !== metadata.sha256) {
      throw new FlywheelError(
        'FW_ARTIFACT_CORRUPT',
        `update names sha256 ${update.sha256}, the registry has ${metadata.sha256}`,
      );
    }
    const model = await fromArtifacts(files, this.spec);
    this.logger.info({ version, kind: metadata.kind, ms: Date.now() - started }, 'model loaded');
    const lineage = metadata.training;
    return {
      model,
      times:
        lineage.source === 'kafka'
          ? { learned: lineage.newestLearnedTime ?? null, seen: lineage.newestEventTime ?? null }
          : { learned: null, seen: null },
    };
  }

  /** Dispose the models of a retired set that the current set no longer uses. */
  private disposeUnused(set: ModelSet): void {
    for (const [version, model] of set.models) {
      if (this.currentSet.models.get(version) !== model) model.dispose();
    }
  }
}
