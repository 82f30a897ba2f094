// The online learner of the trainer: FTRL-Proximal fed labeled examples in arrival order, with
// progressive validation (each example is scored before it is learned from) and a holdout of the
// newest examples, which the model has not learned from yet. An example enters the holdout when it
// arrives and is learned from when newer examples push it out, so the holdout is always "the most
// recent N, unseen" and nothing is learned twice or skipped. Examples the caller names to learn at
// once (human labels) skip the holdout. Pure: checkpoint.ts persists it.
import { invariant } from '../common/errors.js';
import type { LabeledExample } from '../common/contracts.js';
import { FtrlProximal, type FtrlParams } from '../model/ftrl.js';
import { isJudgeOnly } from './judge-only.js';
import type { TrainingExample } from '../model/models.js';
import {
  PRIMARY_LEARNER,
  SideLearner,
  exampleLogLoss,
  meanLoss,
  selectLowest,
  type FeatureSpace,
  type LearnerSpec,
  type SideLearnerState,
} from './learners.js';

export interface OnlineLearnerOptions {
  dimension: number;
  params: FtrlParams;
  /** Newest examples held out of training (and scored by the gate). */
  holdoutSize: number;
  /** Examples in the progressive-validation window. */
  progressiveWindow: number;
  /** Learners trained side by side on the same examples (learners.ts); none when absent. */
  side?: readonly LearnerSpec[];
  /** The feature space the side learners fold and calibrate in (required with `side`). */
  space?: FeatureSpace;
  /** Newest examples whose progressive loss picks the candidate among the learners. */
  selectionWindow?: number;
}

/** Which learner's weights a candidate takes, and every learner's recent progressive loss. */
export interface LearnerSelection {
  selected: string;
  window: number;
  progressiveLogLoss: Record<string, number | null>;
}

/** What the learner keeps of an example: enough to learn from it and to score it. */
export interface HeldExample {
  exampleId: string;
  indices: number[];
  values: number[];
  label: number;
  weight: number;
  itemId: string;
  segment: string;
  labelTime: number;
  /** Whose click and its category ('' in checkpoints of layout 6 and before). */
  userId: string;
  category: string;
}

export interface LearnerState {
  z: Float64Array;
  n: Float64Array;
  learned: number;
  holdout: HeldExample[];
  progressive: { loss: number; weight: number }[];
  /** The side learners' states (absent or empty: none, or they start from zero). */
  side?: SideLearnerState[];
  /** The trainer's own FTRL's losses on arrival, for the selection (empty without side learners). */
  arrival?: { loss: number; weight: number }[];
}

export function heldExample(
  e: Pick<
    LabeledExample,
    'exampleId' | 'features' | 'label' | 'weight' | 'itemId' | 'segment' | 'labelTime' | 'userId' | 'category'
  >,
): HeldExample {
  return {
    exampleId: e.exampleId,
    indices: [...e.features.indices],
    values: [...e.features.values],
    label: e.label,
    weight: e.weight,
    itemId: e.itemId,
    segment: e.segment,
    labelTime: e.labelTime,
    userId: e.userId,
    category: e.category,
  };
}

/** A held example as the models take it (to score, or to learn in a batch). */
export function trainingExample(e: HeldExample): TrainingExample {
  return {
    features: { indices: e.indices, values: e.values },
    itemId: e.itemId,
    segment: e.segment,
    label: e.label,
    weight: e.weight,
  };
}

/** Fewest examples the selection compares learners on; with fewer, the FTRL's own is taken. */
const MIN_SELECTION = 200;

export class OnlineLearner {
  readonly ftrl: FtrlProximal;
  private readonly holdoutRing: HeldExample[];
  /** Examples learned from, in total (the trainer's "no gap, no overlap" counter). */
  learned: number;
  private readonly progressive: { loss: number; weight: number }[];
  readonly side: SideLearner[];
  private readonly arrival: { loss: number; weight: number }[];

  constructor(
    readonly options: OnlineLearnerOptions,
    state?: LearnerState,
  ) {
    this.ftrl = new FtrlProximal(options.dimension, options.params, state && { z: state.z, n: state.n });
    this.holdoutRing = state ? [...state.holdout] : [];
    this.learned = state?.learned ?? 0;
    this.progressive = state ? [...state.progressive] : [];
    this.arrival = (state?.arrival ?? []).slice(-this.arrivalCapacity);
    const sideSpecs = options.side ?? [];
    invariant(sideSpecs.length === 0 || options.space, 'side learners need the feature space');
    this.side = sideSpecs.map(
      (spec) =>
        new SideLearner(
          spec,
          options.space as FeatureSpace,
          this.arrivalCapacity,
          state?.side?.find((s) => s.name === spec.name),
        ),
    );
  }

  get selectionWindow(): number {
    return this.options.selectionWindow ?? 2000;
  }

  /** Losses on arrival kept: the selection's window, and those of the examples still held out. */
  private get arrivalCapacity(): number {
    return this.selectionWindow + this.options.holdoutSize;
  }

  /**
   * Adds examples in arrival order; returns those learned from now (pushed out of the holdout).
   * `learnAtOnce` are learned first, without passing through the holdout.
   */
  add(examples: readonly HeldExample[], learnAtOnce: readonly HeldExample[] = []): HeldExample[] {
    const learnedNow: HeldExample[] = [];
    for (const example of learnAtOnce) {
      this.learnFrom(example);
      learnedNow.push(example);
    }
    for (const example of examples) {
      if (this.side.length > 0) this.scoreOnArrival(example);
      this.holdoutRing.push(example);
      if (this.holdoutRing.length <= this.options.holdoutSize) continue;
      const oldest = this.holdoutRing.shift() as HeldExample;
      // A judge-only example leaves the holdout unlearned (judge-only.ts).
      if (isJudgeOnly(oldest.exampleId)) continue;
      this.learnFrom(oldest);
      learnedNow.push(oldest);
    }
    return learnedNow;
  }

  /**
   * Every learner scores an example as it arrives, with the holdout's examples (the newest, its
   * neighbours in the stream) not learned yet. Scored just before learning instead, a learner
   * would have learned the labels published with it (a session's other clicks, a window closing
   * at once), which no served score had: fast-adapting learners looked far better than they
   * serve (measured: 0.12 against 0.32 for the FTRL, then 0.64 on the holdout).
   */
  private scoreOnArrival(e: HeldExample): void {
    const x = { indices: e.indices, values: e.values };
    this.arrival.push({ loss: exampleLogLoss(this.ftrl.predict(x), e.label) * e.weight, weight: e.weight });
    if (this.arrival.length > this.arrivalCapacity) this.arrival.shift();
    for (const side of this.side) side.scoreOnArrival(x, e.label, e.weight);
  }

  private learnFrom(e: HeldExample): void {
    const p = this.ftrl.learn({ indices: e.indices, values: e.values }, e.label, e.weight);
    this.progressive.push({
      loss: exampleLogLoss(p, e.label) * e.weight,
      weight: e.weight,
    });
    if (this.progressive.length > this.options.progressiveWindow) this.progressive.shift();
    for (const side of this.side) side.learn({ indices: e.indices, values: e.values }, e.label, e.weight);
    this.learned++;
  }

  /** Weighted log loss of the predictions made just before learning, over the recent window. */
  get progressiveLogLoss(): number {
    let loss = 0;
    let weight = 0;
    for (const p of this.progressive) {
      loss += p.loss;
      weight += p.weight;
    }
    return weight > 0 ? loss / weight : Number.NaN;
  }

  /** Per-example progressive losses of the `count` examples learned last (at most the window). */
  recentLosses(count: number): { loss: number; weight: number }[] {
    return count > 0 ? this.progressive.slice(-count) : [];
  }

  /**
   * The learner with the lowest log loss on arrival over the newest `selectionWindow` examples
   * learned (the trainer's own FTRL on a tie, or with fewer than 200): every learner scored the
   * same examples, each before it had learned them or their neighbours; the holdout's examples,
   * on which the gate judges the candidate, are left out.
   */
  selection(): LearnerSelection {
    // Over the examples every learner has a loss for (one restored from an older checkpoint
    // starts with none): the same examples, or no comparison.
    // The examples already learned, not the holdout's: the gate judges the candidate on those.
    const held = this.holdoutRing.length;
    const available = Math.min(this.arrival.length, ...this.side.map((s) => s.scored)) - held;
    const window = Math.max(0, Math.min(this.selectionWindow, available));
    // Too few to tell learners apart (just started, or restored from an older checkpoint).
    const enough = window >= Math.min(MIN_SELECTION, this.selectionWindow);
    const primary = enough
      ? recentMean(this.arrival.slice(0, this.arrival.length - held), window)
      : Number.NaN;
    const losses = [
      primary,
      ...this.side.map((s) => (enough ? s.progressiveLogLoss(window, held) : Number.NaN)),
    ];
    const names = [PRIMARY_LEARNER, ...this.side.map((s) => s.spec.name)];
    return {
      selected: names[selectLowest(losses)] as string,
      window,
      progressiveLogLoss: Object.fromEntries(
        names.map((name, k) => [name, Number.isFinite(losses[k]) ? (losses[k] as number) : null]),
      ),
    };
  }

  /** FTRL state and parameters over the full space of the selected learner (or `name`'s). */
  serving(name = this.selection().selected): {
    name: string;
    params: FtrlParams;
    z: Float64Array;
    n: Float64Array;
  } {
    if (name === PRIMARY_LEARNER)
      return {
        name,
        params: this.options.params,
        z: Float64Array.from(this.ftrl.z),
        n: Float64Array.from(this.ftrl.n),
      };
    const side = this.side.find((s) => s.spec.name === name);
    invariant(side, `no learner named ${name}`);
    return { name, params: side.spec.params, ...side.export(this.options.dimension) };
  }

  /** The newest examples, not learned from yet (a copy). */
  get holdout(): HeldExample[] {
    return [...this.holdoutRing];
  }

  score(e: Pick<HeldExample, 'indices' | 'values'>): number {
    return this.ftrl.predict({ indices: e.indices, values: e.values });
  }

  /** Everything needed to continue exactly here (copies). */
  state(): LearnerState {
    return {
      z: Float64Array.from(this.ftrl.z),
      n: Float64Array.from(this.ftrl.n),
      learned: this.learned,
      holdout: this.holdout,
      progressive: [...this.progressive],
      side: this.side.map((s) => s.state()),
      arrival: [...this.arrival],
    };
  }
}

function recentMean(progressive: readonly { loss: number; weight: number }[], count: number): number {
  const recent = progressive.slice(-count);
  return meanLoss(
    recent.map((p) => p.loss),
    recent.map((p) => p.weight),
    count,
  );
}
