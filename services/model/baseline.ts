// The heuristic baseline: historical conversion rate by item, shrunk towards the rate of the
// user's segment, shrunk towards the global rate (empirical-Bayes smoothing). The trainer
// publishes it as the champion until a learned model beats it, and it is the bar every learned
// model must clear.

export interface BaselineInput {
  itemId: string;
  segment: string;
}

interface Counts {
  n: number;
  positives: number;
}

export interface BaselineState {
  kind: 'baseline';
  priorStrengthSegment: number;
  priorStrengthItem: number;
  global: Counts;
  segments: Record<string, Counts>;
  items: Record<string, Counts>;
}

export class HeuristicBaseline {
  readonly kind = 'baseline' as const;
  private readonly global: Counts = { n: 0, positives: 0 };
  private readonly segments = new Map<string, Counts>();
  private readonly items = new Map<string, Counts>();

  constructor(
    /** Pseudo-observations of the global rate behind each segment's rate. */
    readonly priorStrengthSegment = 200,
    /** Pseudo-observations of the segment rate behind each item's rate. */
    readonly priorStrengthItem = 30,
    /** Rate assumed before any feedback arrived. */
    readonly initialRate = 0.05,
  ) {}

  get observations(): number {
    return this.global.n;
  }

  update(input: BaselineInput, label: number, weight = 1): void {
    const add = (map: Map<string, Counts>, key: string) => {
      const counts = map.get(key) ?? { n: 0, positives: 0 };
      counts.n += weight;
      counts.positives += weight * label;
      map.set(key, counts);
    };
    this.global.n += weight;
    this.global.positives += weight * label;
    add(this.segments, input.segment);
    add(this.items, input.itemId);
  }

  score(input: BaselineInput): number {
    // The initial rate is a guess for before any feedback: one pseudo-observation, so from the
    // first labels on the global rate is what was observed, not a fixed prior.
    const globalRate = (this.global.positives + this.initialRate) / (this.global.n + 1);
    const segment = this.segments.get(input.segment);
    const segmentRate = segment
      ? (segment.positives + this.priorStrengthSegment * globalRate) / (segment.n + this.priorStrengthSegment)
      : globalRate;
    const item = this.items.get(input.itemId);
    return item
      ? (item.positives + this.priorStrengthItem * segmentRate) / (item.n + this.priorStrengthItem)
      : segmentRate;
  }

  /** Same shape as the learned models' predict, so any model can serve. */
  predict(inputs: readonly BaselineInput[]): Float32Array {
    return Float32Array.from(inputs, (input) => this.score(input));
  }

  dispose(): void {
    // Plain counts; nothing to release.
  }

  toJSON(): BaselineState {
    return {
      kind: 'baseline',
      priorStrengthSegment: this.priorStrengthSegment,
      priorStrengthItem: this.priorStrengthItem,
      global: { ...this.global },
      segments: Object.fromEntries(this.segments),
      items: Object.fromEntries(this.items),
    };
  }

  /** An independent copy (the trainer's serving snapshot learns the holdout on top). */
  clone(): HeuristicBaseline {
    return HeuristicBaseline.fromJSON(this.toJSON());
  }

  static fromJSON(state: BaselineState): HeuristicBaseline {
    const baseline = new HeuristicBaseline(state.priorStrengthSegment, state.priorStrengthItem);
    Object.assign(baseline.global, state.global);
    for (const [k, v] of Object.entries(state.segments)) baseline.segments.set(k, { ...v });
    for (const [k, v] of Object.entries(state.items)) baseline.items.set(k, { ...v });
    return baseline;
  }
}
