// A performance alarm from the trainer's own progressive validation: the mean log loss of the
// newest examples (scored before they were learned) against that of the longer stretch before
// them. A sustained rise means the world moved away from the model (drift in propensity, in
// traffic, or a broken feature), which is when a new candidate is worth judging at once.
// Pure; the trainer feeds it and proposes a candidate with trigger `drift` when it fires.

export interface DriftSettings {
  /** Newest examples compared. */
  recent: number;
  /** Examples before them that form the reference. */
  reference: number;
  /** Smallest relative rise of the recent mean loss that counts (0.1 = 10%). */
  minRise: number;
  /** How many standard errors the rise must be: per-example log loss is heavy-tailed for rare labels. */
  z: number;
}

export const DEFAULT_DRIFT: DriftSettings = { recent: 1000, reference: 5000, minRise: 0.1, z: 4 };

export interface DriftAlarm {
  recentLoss: number;
  referenceLoss: number;
  rise: number;
  z: number;
}

/** Sum and sum of squares of a stretch of losses. */
class Moments {
  sum = 0;
  squares = 0;
  count = 0;
  add(x: number, sign: 1 | -1): void {
    this.sum += sign * x;
    this.squares += sign * x * x;
    this.count += sign;
  }
  get mean(): number {
    return this.sum / this.count;
  }
  get variance(): number {
    return this.count > 1 ? Math.max(0, (this.squares - this.count * this.mean ** 2) / (this.count - 1)) : 0;
  }
}

export class LossDriftDetector {
  /** Per-example losses, oldest first, in a ring of recent + reference slots. */
  private readonly losses: Float64Array;
  private next = 0;
  private filled = 0;
  private sinceAlarm = 0;
  private readonly recentStretch = new Moments();
  private readonly referenceStretch = new Moments();

  constructor(readonly settings: DriftSettings = DEFAULT_DRIFT) {
    this.losses = new Float64Array(settings.recent + settings.reference);
  }

  /** One learned example's progressive loss; an alarm when the rise is large and significant. */
  add(loss: number): DriftAlarm | null {
    const { recent, reference } = this.settings;
    const size = recent + reference;
    // The oldest slot leaves the reference; the slot `recent` back moves from recent to reference.
    if (this.filled === size) this.referenceStretch.add(this.losses[this.next] as number, -1);
    if (this.filled >= recent) {
      const moving = this.losses[(this.next - recent + size) % size] as number;
      this.recentStretch.add(moving, -1);
      this.referenceStretch.add(moving, 1);
    }
    this.losses[this.next] = loss;
    this.recentStretch.add(loss, 1);
    this.next = (this.next + 1) % size;
    this.filled = Math.min(size, this.filled + 1);
    this.sinceAlarm++;
    // Full windows, and a whole recent window after the last alarm (one alarm per shift).
    if (this.filled < size || this.sinceAlarm < recent) return null;
    const a = this.recentStretch;
    const b = this.referenceStretch;
    if (b.mean <= 0) return null;
    const rise = a.mean / b.mean - 1;
    const standardError = Math.sqrt(a.variance / a.count + b.variance / b.count);
    const z = standardError > 0 ? (a.mean - b.mean) / standardError : 0;
    if (rise < this.settings.minRise || z < this.settings.z) return null;
    this.sinceAlarm = 0;
    return { recentLoss: a.mean, referenceLoss: b.mean, rise, z };
  }
}
