// The trainer's learning step, record by record: labels merged by policy, examples through the
// holdout into the online learner, the baseline fed what the model learns, trusted (human or
// uploaded) examples kept as the gate's reference set. Pure and deterministic in the record
// sequence, so the live trainer and a replay of its lineage (`flywheel models retrain`) reach the
// same weights from the same records in the same order.
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { HeuristicBaseline } from '../model/baseline.js';
import type { FtrlParams } from '../model/ftrl.js';
import { isJudgeOnly } from './judge-only.js';
import { LabelMerger, type LabelPolicy, type MergerMemory } from './label-policy.js';
import type { FeatureSpace, LearnerSpec } from './learners.js';
import { OnlineLearner, heldExample, type HeldExample, type LearnerState } from './online.js';

export interface PipelineSettings {
  dimension: number;
  params: FtrlParams;
  holdoutSize: number;
  policy: LabelPolicy;
  /** Trusted examples kept for the gate's reference set (newest). */
  referenceSize: number;
  /** The feature spec examples must be built for (unchecked when absent; slots always are). */
  featureSpecHash?: string;
  /** Learners trained side by side (learners.ts), in the feature space of the spec. */
  side?: { learners: readonly LearnerSpec[]; space: FeatureSpace; selectionWindow: number };
}

export interface PipelineState {
  learner: LearnerState;
  waitingHumanLabels: HumanLabel[];
  remembered: LabeledExample[];
  baseline: ReturnType<HeuristicBaseline['toJSON']> | null;
  reference: HeldExample[];
  labelSources: Record<string, number>;
  newestEventTime: number;
  newestLearnedTime: number;
  /** Labeler reliability and the outcome rate (layout 8; empty before). */
  merger?: MergerMemory;
}

export type InputRecord =
  { kind: 'labeledExample'; value: LabeledExample } | { kind: 'humanLabel'; value: HumanLabel };

/** Event time between scans for human labels that waited too long. */
const EXPIRE_EVERY_MS = 60_000;

export class TrainingPipeline {
  readonly learner: OnlineLearner;
  readonly merger: LabelMerger;
  readonly baseline: HeuristicBaseline;
  private readonly referenceRing: HeldExample[];
  readonly labelSources: Record<string, number>;
  /** Newest label time taken in (learned or held out). */
  newestEventTime: number;
  /** Newest label time learned from (the freshness of the weights). */
  newestLearnedTime: number;
  private lastExpiry = 0;

  constructor(
    readonly settings: PipelineSettings,
    state?: PipelineState,
  ) {
    this.learner = new OnlineLearner(
      {
        dimension: settings.dimension,
        params: settings.params,
        holdoutSize: settings.holdoutSize,
        progressiveWindow: 10_000,
        ...(settings.side
          ? {
              side: settings.side.learners,
              space: settings.side.space,
              selectionWindow: settings.side.selectionWindow,
            }
          : {}),
      },
      state?.learner,
    );
    this.merger = new LabelMerger(
      settings.policy,
      state?.waitingHumanLabels ?? [],
      state?.remembered ?? [],
      state?.merger,
    );
    this.baseline = state?.baseline ? HeuristicBaseline.fromJSON(state.baseline) : new HeuristicBaseline();
    this.referenceRing = [...(state?.reference ?? [])];
    this.labelSources = { ...(state?.labelSources ?? {}) };
    this.newestEventTime = state?.newestEventTime ?? 0;
    this.newestLearnedTime = state?.newestLearnedTime ?? 0;
    this.lastExpiry = this.newestEventTime;
  }

  /** Takes one input record; returns the examples it produced (before the holdout). */
  take(record: InputRecord): LabeledExample[] {
    if (record.kind === 'labeledExample' && this.refuses(record.value)) return [];
    const examples =
      record.kind === 'humanLabel'
        ? this.merger.addHumanLabel(record.value)
        : this.merger.addExample(slim(record.value));
    for (const e of examples) {
      if (!isJudgeOnly(e.exampleId))
        this.labelSources[e.labelSource] = (this.labelSources[e.labelSource] ?? 0) + 1;
      if (e.labelTime > this.newestEventTime) this.newestEventTime = e.labelTime;
      // The reference set takes trusted labels only: a poisoned reference would refuse every
      // model that learned from outcomes (measured: the replacing policy with an adversarial
      // labeler kept the baseline serving all run).
      if (
        (e.labelSource === 'human' && !this.merger.untrusted.has(e.exampleId)) ||
        e.labelSource === 'upload'
      ) {
        this.referenceRing.push(heldExample(e));
        if (this.referenceRing.length > this.settings.referenceSize) this.referenceRing.shift();
      }
    }
    // Human examples are learned at once, never held out: the gate judges candidates on outcomes
    // (a reviewer's guess in the holdout would grade a model trained on the same guesses), and on
    // the human labels only as the reference set.
    const learnedNow = this.learner.add(
      examples.filter((e) => e.labelSource !== 'human').map(heldExample),
      examples.filter((e) => e.labelSource === 'human').map(heldExample),
    );
    // The baseline learns what the model learns: the holdout stays unseen by both.
    for (const e of learnedNow) {
      this.baseline.update(e, e.label, e.weight);
      if (e.labelTime > this.newestLearnedTime) this.newestLearnedTime = e.labelTime;
    }
    if (this.newestEventTime - this.lastExpiry >= EXPIRE_EVERY_MS) {
      this.merger.expire(this.newestEventTime);
      this.lastExpiry = this.newestEventTime;
    }
    return examples;
  }

  /** Whether an example cannot be learned (exampleProblems); the live trainer dead-letters it. */
  refuses(e: Pick<LabeledExample, 'featureSpecHash' | 'features'>): boolean {
    const { featureSpecHash, dimension } = this.settings;
    return exampleProblems(e, { hash: featureSpecHash ?? e.featureSpecHash, dimension }).length > 0;
  }

  /** Trusted examples, newest last (a copy). */
  get reference(): HeldExample[] {
    return [...this.referenceRing];
  }

  state(): PipelineState {
    return {
      learner: this.learner.state(),
      waitingHumanLabels: this.merger.waitingLabels(),
      remembered: this.merger.rememberedOutcomes(),
      baseline: this.baseline.toJSON(),
      reference: this.reference,
      labelSources: { ...this.labelSources },
      newestEventTime: this.newestEventTime,
      newestLearnedTime: this.newestLearnedTime,
      merger: this.merger.memory(),
    };
  }
}

/** The fields of an example that training, merging and the reference set use. */
export type SlimExample = Pick<
  LabeledExample,
  | 'exampleId'
  | 'predictionId'
  | 'itemId'
  | 'segment'
  | 'label'
  | 'labelSource'
  | 'weight'
  | 'features'
  | 'labelTime'
  | 'userId'
  | 'category'
> & { revision?: number; score?: number | null };

/**
 * An example reduced to what the pipeline uses, the rest blank: smaller where it is kept (the
 * outcomes remembered for late human labels are checkpointed) and the same live or restored.
 */
export function slim(e: SlimExample): LabeledExample {
  return {
    exampleId: e.exampleId,
    predictionId: e.predictionId,
    itemId: e.itemId,
    segment: e.segment,
    label: e.label,
    labelSource: e.labelSource,
    weight: e.weight,
    features: { indices: [...e.features.indices], values: [...e.features.values] },
    labelTime: e.labelTime,
    eventId: '',
    userId: e.userId,
    category: e.category,
    featureSpecHash: '',
    modelVersion: null,
    arm: null,
    // The served score, where known: the labelers are measured against the model with it.
    score: e.score ?? null,
    clickTime: 0,
    purchaseEventId: null,
    purchaseTime: null,
    delayMs: null,
    revision: e.revision ?? 0,
    propensity: 1,
    split: null,
  };
}

/**
 * Why the learner cannot take an example of a feature spec (`hash`, `dimension`): built for
 * another spec, or a slot outside its space (which would put NaN into every weight it touches).
 * Empty when it can.
 */
export function exampleProblems(
  e: Pick<LabeledExample, 'featureSpecHash' | 'features'>,
  spec: { hash: string; dimension: number },
): string[] {
  if (e.featureSpecHash !== spec.hash)
    return [
      `built for feature spec ${e.featureSpecHash.slice(0, 16)}, the trainer learns ${spec.hash.slice(0, 16)}`,
    ];
  const outside = e.features.indices.find((i) => !(i >= 0 && i < spec.dimension));
  return outside === undefined
    ? []
    : [`feature slot ${outside} is outside the spec's ${spec.dimension} slots`];
}
