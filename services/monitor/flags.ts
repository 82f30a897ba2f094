// Predictions labelers flagged invalid (a bot, a broken page: HumanLabel.flags). An outcome of a
// prediction most of its labelers flagged is left out of the realised metrics, as the trainer
// leaves it out of training. Pure; the newest `capacity` predictions with labels are kept.
import type { HumanLabel } from '../common/contracts.js';

/** Per prediction id: [labels read, labels with a flag]; oldest first. */
export type FlagState = [string, number, number][];

export class FlaggedPredictions {
  private readonly counts = new Map<string, [number, number]>();
  /** Outcomes left out so far. */
  excluded = 0;

  constructor(
    private readonly capacity = 200_000,
    state: FlagState = [],
  ) {
    for (const [id, labels, flagged] of state) this.counts.set(id, [labels, flagged]);
  }

  take(label: Pick<HumanLabel, 'predictionId' | 'flags'>): void {
    const [labels, flagged] = this.counts.get(label.predictionId) ?? [0, 0];
    // Moved to the newest end: the map's order is the eviction order.
    this.counts.delete(label.predictionId);
    this.counts.set(label.predictionId, [labels + 1, flagged + (label.flags.length > 0 ? 1 : 0)]);
    while (this.counts.size > this.capacity) this.counts.delete(this.counts.keys().next().value as string);
  }

  /** Whether most labelers of the prediction flagged it. */
  invalid(predictionId: string): boolean {
    const counts = this.counts.get(predictionId);
    return counts !== undefined && counts[1] * 2 > counts[0];
  }

  state(): FlagState {
    return [...this.counts].map(([id, [labels, flagged]]) => [id, labels, flagged]);
  }
}
