// Human labels and outcome labels of the same prediction, merged into training examples by an
// explicit policy. Pure; the trainer feeds it both topics in arrival order.
//
// A human label carries no features; the prediction's outcome example (from the joiner) does. So:
// - an outcome example with no human label for its prediction trains at once (the common case;
//   waiting would delay every example for the rare reviewed one);
// - a human label waits, for at most `holdMs` of event time, for its prediction's outcome example;
//   then, by `conflict`:
//     `outcome` (the default) the outcome example; the human label judges its labeler
//               (labeler-reliability.ts). A purchase that happened is better evidence than a
//               reviewer's guess of it. Except where the outcome is censored: a timeout in a
//               segment named in `censoredSegments` (one whose purchases Flywheel does not see)
//               says nothing, and the labels, weighed by their labelers' trust, replace it;
//     `replace` one example, the human label (majority of the labelers, trusted or not), source
//               `human`, weight `humanWeight`, for every reviewed prediction: the risk is that a
//               reviewer who guesses overrides what the customer did; the outcome is kept as a
//               judge-only example, which the gate's holdout sees and the learner never learns;
//     `both`    the outcome example, plus the labels weighed by trust as their own example;
// - a censored timeout no human label came for is not trained on (it is no evidence);
// - a prediction most of its labelers flagged (a bot, a broken page: HumanLabel.flags) is not
//   trained on at all, its outcome neither; a flag after the outcome was trained cannot undo it;
// - labels weighed by trust are a soft label: the example twice, label 1 with weight
//   `humanWeight`·p and label 0 with `humanWeight`·(1 − p); labels of untrusted labelers only
//   make no example;
// - a human label that arrives after its outcome example was already trained cannot undo it: it
//   is added as its own example (as under `both`) where it would have replaced it;
// - a human label whose outcome never arrives within `holdMs` is dropped and counted (without
//   features there is nothing to train).
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { judgeOnlyId } from './judge-only.js';
import { LabelerReliability, type LabelerDay, type ReliabilitySettings } from './labeler-reliability.js';

export type ConflictPolicy = 'outcome' | 'replace' | 'both';

export interface LabelPolicy {
  conflict: ConflictPolicy;
  /** Weight of an example labeled by humans (an outcome example has weight 1). */
  humanWeight: number;
  /** Segments whose purchases are not seen: their timeouts are censored, and a human label wins. */
  censoredSegments: readonly string[];
  /** How long (event time) a human label waits for its outcome example. */
  holdMs: number;
  /** Outcome examples remembered (by prediction id) for human labels that come later. */
  rememberOutcomes: number;
  reliability?: ReliabilitySettings;
}

export const DEFAULT_LABEL_POLICY: LabelPolicy = {
  conflict: 'outcome',
  humanWeight: 3,
  censoredSegments: [],
  holdMs: 2 * 3600_000,
  rememberOutcomes: 200_000,
};

export interface MergeCounters {
  outcomeExamples: number;
  humanExamples: number;
  agreements: number;
  disagreements: number;
  lateHumanLabels: number;
  unmatchedHumanLabels: number;
  /** Censored timeouts without a human label: not trained on. */
  censoredTimeouts: number;
  /** Reviewed predictions whose labelers were all untrusted: no human example. */
  untrustedHumanLabels: number;
  /** Reviewed predictions most labelers flagged invalid: nothing trained (late: no human example). */
  flagged: number;
}

/** What a merger keeps across restarts besides its labels and outcomes (checkpoint layout 8). */
export interface MergerMemory {
  labelers: Record<string, LabelerDay[]>;
  /** Seen outcomes (censored ones excluded), and how many were purchases: the labels' prior. */
  outcomes: number;
  purchases: number;
}

export class LabelMerger {
  /** Each labeler measured against seen outcomes (a censored timeout is no ground truth). */
  readonly reliability: LabelerReliability;
  /**
   * Human examples of the latest call made from untrusted labelers' labels only (under
   * `replace`): trained on, as that policy says, but kept out of the gate's trusted reference set.
   */
  readonly untrusted = new Set<string>();
  private outcomes: number;
  private purchases: number;
  private readonly waiting = new Map<string, HumanLabel[]>();
  /** Recent outcome examples by prediction id, oldest first (Map keeps insertion order). */
  private readonly trained = new Map<string, { example: LabeledExample; seq: number }>();
  /**
   * Eviction order: (id, seq) as remembered. A Map's first key is slow to find after many
   * deletes (the iterator walks the deleted slots), so the oldest is taken from here; an entry
   * whose id was remembered again since is stale and skipped.
   */
  private evictionIds: string[] = [];
  private evictionSeqs: number[] = [];
  private evictionHead = 0;
  private rememberSeq = 0;
  readonly counters: MergeCounters = {
    outcomeExamples: 0,
    humanExamples: 0,
    agreements: 0,
    disagreements: 0,
    lateHumanLabels: 0,
    unmatchedHumanLabels: 0,
    censoredTimeouts: 0,
    untrustedHumanLabels: 0,
    flagged: 0,
  };

  constructor(
    readonly policy: LabelPolicy = DEFAULT_LABEL_POLICY,
    /** Human labels that were waiting when the state was saved (from a checkpoint). */
    waiting: readonly HumanLabel[] = [],
    /** Outcome examples remembered when the state was saved, oldest first. */
    remembered: readonly LabeledExample[] = [],
    memory?: MergerMemory,
  ) {
    this.reliability = new LabelerReliability(policy.reliability, memory?.labelers);
    this.outcomes = memory?.outcomes ?? 0;
    this.purchases = memory?.purchases ?? 0;
    for (const label of waiting)
      this.waiting.set(label.predictionId, [...(this.waiting.get(label.predictionId) ?? []), label]);
    for (const example of remembered) this.remember(example);
  }

  /** Outcome examples remembered for late human labels, oldest first, for a checkpoint. */
  rememberedOutcomes(): LabeledExample[] {
    return [...this.trained.values()].map((t) => t.example);
  }

  memory(): MergerMemory {
    return { labelers: this.reliability.toJSON(), outcomes: this.outcomes, purchases: this.purchases };
  }

  /** Human labels waiting for their outcome example, for a checkpoint. */
  waitingLabels(): HumanLabel[] {
    return [...this.waiting.values()].flat();
  }

  /** An example from the feedback topic; returns what to train on. */
  addExample(example: LabeledExample): LabeledExample[] {
    this.untrusted.clear();
    // Uploaded and other non-outcome examples are taken as they are.
    if (example.labelSource !== 'outcome' && example.labelSource !== 'timeout') return [example];
    const humans = this.waiting.get(example.predictionId);
    this.waiting.delete(example.predictionId);
    this.remember(example);
    if (!this.censored(example)) {
      this.outcomes++;
      if (example.label === 1) this.purchases++;
    }
    if (!humans) {
      if (this.censored(example)) {
        this.counters.censoredTimeouts++;
        return [];
      }
      this.counters.outcomeExamples++;
      return [example];
    }
    return this.resolve(example, humans);
  }

  /** A human label; returns what to train on now (often nothing: it waits for its outcome). */
  addHumanLabel(label: HumanLabel): LabeledExample[] {
    this.untrusted.clear();
    const outcome = this.trained.get(label.predictionId)?.example;
    if (!outcome) {
      const list = this.waiting.get(label.predictionId) ?? [];
      // The same label published twice (a labeler's retry after a lost acknowledgement) counts once.
      if (list.some((l) => l.labelId === label.labelId)) return [];
      list.push(label);
      this.waiting.set(label.predictionId, list);
      return [];
    }
    // Its outcome example was trained already.
    this.counters.lateHumanLabels++;
    if (flaggedInvalid([label])) {
      this.counters.flagged++;
      return [];
    }
    if (!this.censored(outcome)) this.countAgreement(outcome.label, label.label);
    this.judgeLabelers(outcome, [label]);
    if (this.keepsOutcomeOnly(outcome)) return [];
    // Its outcome went to training already: no judge-only copy of it.
    return this.humanExamples(outcome, [label], true);
  }

  /** Forgets human labels that waited longer than `holdMs` behind `eventTime`; counts them. */
  expire(eventTime: number): void {
    for (const [id, labels] of this.waiting) {
      if (eventTime - Math.max(...labels.map((l) => l.labelTime)) <= this.policy.holdMs) continue;
      this.waiting.delete(id);
      this.counters.unmatchedHumanLabels += labels.length;
    }
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  private resolve(outcome: LabeledExample, humans: HumanLabel[]): LabeledExample[] {
    if (flaggedInvalid(humans)) {
      this.counters.flagged++;
      return [];
    }
    // A censored timeout is no ground truth: neither agreement nor a labeler's record.
    if (!this.censored(outcome)) this.countAgreement(outcome.label, majority(humans));
    this.judgeLabelers(outcome, humans);
    if (this.keepsOutcomeOnly(outcome)) {
      this.counters.outcomeExamples++;
      return [outcome];
    }
    if (this.policy.conflict !== 'both') return this.humanExamples(outcome, humans);
    this.counters.outcomeExamples++;
    return [outcome, ...this.humanExamples(outcome, humans)];
  }

  /** Under `outcome`, a seen outcome stands; a censored one (a timeout of a censored segment) does not. */
  private keepsOutcomeOnly(outcome: LabeledExample): boolean {
    return this.policy.conflict === 'outcome' && !this.censored(outcome);
  }

  /** A timeout in a segment whose purchases are not seen: no evidence of what happened. */
  private censored(outcome: LabeledExample): boolean {
    return outcome.labelSource === 'timeout' && this.policy.censoredSegments.includes(outcome.segment);
  }

  /** The labels of a prediction as examples: by majority under `replace`, else weighed by trust. */
  private humanExamples(outcome: LabeledExample, humans: HumanLabel[], late = false): LabeledExample[] {
    const newest = humans.reduce((a, b) => (b.labelTime > a.labelTime ? b : a));
    const ids = humans.map((h) => h.labelId).join(',');
    const base = { ...outcome, labelSource: 'human' as const, labelTime: newest.labelTime };
    if (this.policy.conflict === 'replace') {
      this.counters.humanExamples++;
      const exampleId = `human:${outcome.predictionId}:${ids}`;
      if (this.reliability.combine(humans, this.prior()) === null) this.untrusted.add(exampleId);
      const human = { ...base, exampleId, label: majority(humans), weight: this.policy.humanWeight };
      // The outcome still judges: held out for the gate, never learned (online.ts). Without it
      // the holdout would lack exactly the reviewed predictions a wrong label poisons.
      return late || this.censored(outcome)
        ? [human]
        : [human, { ...outcome, exampleId: judgeOnlyId(outcome.exampleId) }];
    }
    const p = this.reliability.combine(humans, this.prior());
    if (p === null) {
      this.counters.untrustedHumanLabels++;
      return [];
    }
    this.counters.humanExamples++;
    const w = this.policy.humanWeight;
    return [
      { ...base, exampleId: `human:${outcome.predictionId}:${ids}:1`, label: 1, weight: w * p },
      { ...base, exampleId: `human:${outcome.predictionId}:${ids}:0`, label: 0, weight: w * (1 - p) },
    ];
  }

  /** The outcome rate seen (Laplace), the labels' prior. */
  private prior(): number {
    return (this.purchases + 1) / (this.outcomes + 2);
  }

  private judgeLabelers(outcome: LabeledExample, humans: readonly HumanLabel[]): void {
    if (this.censored(outcome)) return;
    for (const h of humans)
      this.reliability.judge(h.labelerId, h.label, outcome.label, outcome.score, outcome.labelTime);
  }

  private countAgreement(outcomeLabel: number, humanLabel: number): void {
    if (outcomeLabel === humanLabel) this.counters.agreements++;
    else this.counters.disagreements++;
  }

  private remember(example: LabeledExample): void {
    const seq = ++this.rememberSeq;
    // Deleted first, so a repeat moves to the newest end, as in the eviction order.
    this.trained.delete(example.predictionId);
    this.trained.set(example.predictionId, { example, seq });
    this.evictionIds.push(example.predictionId);
    this.evictionSeqs.push(seq);
    while (this.trained.size > this.policy.rememberOutcomes) {
      const id = this.evictionIds[this.evictionHead] as string;
      const idSeq = this.evictionSeqs[this.evictionHead] as number;
      this.evictionHead++;
      if (this.trained.get(id)?.seq === idSeq) this.trained.delete(id);
    }
    if (this.evictionHead > 4096 && this.evictionHead * 2 > this.evictionIds.length) {
      this.evictionIds = this.evictionIds.slice(this.evictionHead);
      this.evictionSeqs = this.evictionSeqs.slice(this.evictionHead);
      this.evictionHead = 0;
    }
  }
}

/** Whether most of a prediction's labelers raised a validity flag (labels read from v1 have none). */
function flaggedInvalid(labels: readonly HumanLabel[]): boolean {
  const flagged = labels.filter((l) => (l.flags as string[] | undefined)?.length).length;
  return flagged * 2 > labels.length;
}

/** The label most labelers gave; a tie goes to the newest label. */
function majority(labels: readonly HumanLabel[]): 0 | 1 {
  const positives = labels.filter((l) => l.label === 1).length;
  const negatives = labels.length - positives;
  if (positives !== negatives) return positives > negatives ? 1 : 0;
  const newest = labels.reduce((a, b) => (b.labelTime > a.labelTime ? b : a));
  return newest.label === 1 ? 1 : 0;
}
