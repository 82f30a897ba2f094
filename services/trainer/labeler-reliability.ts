// How far each labeler can be trusted, measured against the outcomes that arrive after the
// labels: every reviewed prediction whose outcome is seen is a gold task. Pure.
//
// A labeler is two rates (Dawid and Skene's model): sensitivity, P(says 1 | purchase), and
// specificity, P(says 0 | no purchase), each a Beta(1, 1) posterior mean over a window of days.
// Accuracy alone misleads where purchases are rare: one who always says 0 is right 93% of the
// time and tells nothing. The trust of a labeler is Youden's J = sensitivity + specificity − 1
// (0: no better than a coin of any bias; below 0: wrong more often than not), clipped to [0, 1],
// and 0 until `minJudged` labels were judged or while the labeler's calibrated labels lose to
// the model's scores on the same predictions.
//
// Labels of one prediction combine as independent evidence: the prior log-odds (the outcome
// rate) plus each labeler's log-likelihood ratio times their trust. The result is a probability,
// trained as a soft label: the example twice, label 1 with weight w·p and label 0 with w·(1 − p).
const DAY = 86_400_000;

export interface ReliabilitySettings {
  /** Fewest judged labels before a labeler is trusted at all. */
  minJudged: number;
  /** Days of judged labels the rates are measured over (a labeler can get worse). */
  windowDays: number;
}

export const DEFAULT_RELIABILITY: ReliabilitySettings = { minJudged: 20, windowDays: 30 };

/** Judged labels of one day: [said 1 and purchase, said 1 and none, said 0 and purchase, said 0 and none]. */
type Confusion = [number, number, number, number];

export interface LabelerDay {
  day: number;
  confusion: Confusion;
  /** The model's log loss summed over the judged predictions it scored, and their count. */
  modelLoss: number;
  modelJudged: number;
}

export interface LabelerReport {
  labeler: string;
  judged: number;
  agreed: number;
  sensitivity: number;
  specificity: number;
  /** Log loss of the labeler's labels taken as their calibrated probabilities. */
  labelerLogLoss: number;
  /** The model's log loss on the same predictions (null: none of them had a score). */
  modelLogLoss: number | null;
  trust: number;
  /** Why the trust is 0, if it is. */
  untrusted: string | null;
  /** Per day of the window (UTC days since the epoch): labels judged and how many matched. */
  daily: { day: number; judged: number; agreed: number }[];
}

const clampProbability = (p: number) => Math.min(1 - 1e-6, Math.max(1e-6, p));
const logit = (p: number) => Math.log(p / (1 - p));
/** Log loss of a group of `positives` and `negatives` all given their own Laplace rate. */
function groupLoss(positives: number, negatives: number): number {
  const p = (positives + 1) / (positives + negatives + 2);
  return -(positives * Math.log(p) + negatives * Math.log(1 - p));
}

export class LabelerReliability {
  private readonly days = new Map<string, LabelerDay[]>();

  constructor(
    readonly settings: ReliabilitySettings = DEFAULT_RELIABILITY,
    saved: Record<string, LabelerDay[]> = {},
  ) {
    for (const [labeler, list] of Object.entries(saved))
      this.days.set(
        labeler,
        list.map((d) => ({ ...d })),
      );
  }

  /** A label of a prediction whose outcome was seen; `score` the served model's, if known. */
  judge(labeler: string, said: number, outcome: number, score: number | null, time: number): void {
    const day = Math.floor(time / DAY);
    const list = this.days.get(labeler) ?? [];
    let entry = list.find((d) => d.day === day);
    if (!entry) {
      entry = { day, confusion: [0, 0, 0, 0], modelLoss: 0, modelJudged: 0 };
      list.push(entry);
      list.sort((a, b) => a.day - b.day);
      // Days before the window are dropped as new ones come.
      while (list.length > 0 && (list[0] as LabelerDay).day <= day - this.settings.windowDays) list.shift();
    }
    const cell = (said === 1 ? 0 : 2) + (outcome === 1 ? 0 : 1);
    entry.confusion[cell] = (entry.confusion[cell] as number) + 1;
    if (score !== null) {
      const p = clampProbability(score);
      entry.modelLoss += -(outcome === 1 ? Math.log(p) : Math.log(1 - p));
      entry.modelJudged++;
    }
    this.days.set(labeler, list);
  }

  report(labeler: string): LabelerReport {
    const days = this.days.get(labeler) ?? [];
    const [tp, fp, fn, tn] = days.reduce<Confusion>(
      (sum, d) => sum.map((n, i) => n + (d.confusion[i] as number)) as Confusion,
      [0, 0, 0, 0],
    );
    const model = days.reduce(
      (sum, d) => ({ loss: sum.loss + d.modelLoss, judged: sum.judged + d.modelJudged }),
      { loss: 0, judged: 0 },
    );
    const judged = tp + fp + fn + tn;
    const sensitivity = (tp + 1) / (tp + fn + 2);
    const specificity = (tn + 1) / (tn + fp + 2);
    const labelerLogLoss = judged > 0 ? (groupLoss(tp, fp) + groupLoss(fn, tn)) / judged : Number.NaN;
    const modelLogLoss = model.judged > 0 ? model.loss / model.judged : null;
    const youden = sensitivity + specificity - 1;
    let untrusted: string | null = null;
    if (judged < this.settings.minJudged)
      untrusted = `${judged} of the ${this.settings.minJudged} judged labels needed`;
    else if (youden <= 0) untrusted = 'wrong as often as right, or more (sensitivity + specificity ≤ 1)';
    else if (
      modelLogLoss !== null &&
      model.judged >= this.settings.minJudged &&
      labelerLogLoss > modelLogLoss
    )
      untrusted = `worse than the model on the same predictions (log loss ${labelerLogLoss.toFixed(3)} against ${modelLogLoss.toFixed(3)})`;
    return {
      labeler,
      judged,
      agreed: tp + tn,
      sensitivity,
      specificity,
      labelerLogLoss,
      modelLogLoss,
      trust: untrusted === null ? Math.min(1, youden) : 0,
      untrusted,
      daily: days.map((d) => ({
        day: d.day,
        judged: d.confusion.reduce((a, b) => a + b, 0),
        agreed: d.confusion[0] + d.confusion[3],
      })),
    };
  }

  reports(): LabelerReport[] {
    return [...this.days.keys()].sort().map((labeler) => this.report(labeler));
  }

  /**
   * The probability of a purchase given these labels and the outcome rate `prior`; null when no
   * label is trusted (then the labels tell nothing).
   */
  combine(labels: readonly { labelerId: string; label: number }[], prior: number): number | null {
    let logOdds = logit(clampProbability(prior));
    let trusted = false;
    for (const { labelerId, label } of labels) {
      const r = this.report(labelerId);
      if (r.trust <= 0) continue;
      trusted = true;
      const ratio = label === 1 ? r.sensitivity / (1 - r.specificity) : (1 - r.sensitivity) / r.specificity;
      logOdds += r.trust * Math.log(ratio);
    }
    return trusted ? 1 / (1 + Math.exp(-logOdds)) : null;
  }

  toJSON(): Record<string, LabelerDay[]> {
    return Object.fromEntries(this.days);
  }
}
