// A candidate version from the online learner: scored on the holdout next to the champion and the
// heuristic baseline, judged by the gate, registered either way (with its lineage, metrics and,
// when refused, the reasons), and given an alias only when the gate accepts it.
import { calibrationError } from '../model/evaluation.js';
import { fromArtifacts, toArtifacts, type ModelArtifacts } from '../model/artifacts.js';
import type { HeuristicBaseline } from '../model/baseline.js';
import type { FeatureSpec } from '../model/features.js';
import { versionReference } from '../model/profile.js';
import { FtrlModel } from '../model/models.js';
import type { RegistryAdmin } from '../registry/admin.js';
import { DEFAULT_RAMP, ExperimentStore, type RampConfig } from '../registry/experiments.js';
import { TRAINER_SNAPSHOT_FILE, type TrainingData, type VersionMetadata } from '../registry/store.js';
import {
  constantScores,
  decidePromotion,
  type GateConfig,
  type GateDecision,
  type GateHistory,
  type ScoredSet,
} from './gate.js';
import { trainingExample, type HeldExample, type OnlineLearner } from './online.js';

/** The trainer's whole pipeline state when the candidate was taken: the base of the next lineage. */
export const SNAPSHOT_FILE = TRAINER_SNAPSHOT_FILE;

export interface CandidateResult {
  version: string;
  decision: GateDecision;
  /** The alias it got, or null when refused. */
  alias: 'champion' | 'challenger' | null;
  /** What made the trainer propose it (see TrainingData.trigger). */
  trigger?: string;
  /**
   * The champion is failing (worse than a constant on the holdout), this candidate was refused,
   * and the baseline passes the gate in its place (the constant as its bar): the baseline should
   * serve until a learned model beats it.
   */
  baselineReplacesChampion?: GateDecision;
  /** Accepted by the gate but given no alias, and why (an operator's challenger holds the slot). */
  held?: string;
  /** The experiment it was queued for (promoteTo `experiment`): the rollout controller decides. */
  experiment?: string;
}

export interface ProposalOptions {
  admin: RegistryAdmin;
  spec: FeatureSpec;
  learner: OnlineLearner;
  /** The learner whose weights the candidate takes (OnlineLearner.selection). */
  selected?: string;
  baseline: HeuristicBaseline;
  /** Trusted examples (human labels, uploads) for the gate's non-inferiority check. */
  reference: readonly HeldExample[];
  history: GateHistory;
  gate: GateConfig;
  training: TrainingData;
  /** The trainer's checkpoint bytes at this moment, stored with the version (SNAPSHOT_FILE). */
  snapshot?: Buffer;
  /**
   * Accepted candidates are queued for an experiment (`experiment`: the rollout controller ramps,
   * promotes or rolls them back on live outcomes), become challenger, or champion straight away.
   */
  promoteTo: 'experiment' | 'challenger' | 'champion';
  challengerWeight: number;
  /** The ramp of the experiments it queues (DEFAULT_RAMP if absent). */
  ramp?: RampConfig;
}

/** What the candidate is judged on, taken at once (the trainer goes on learning meanwhile). */
interface Taken {
  /** The baseline as it stands, from the holdout's oldest examples, which it must not have seen. */
  baseline: HeuristicBaseline;
  holdout: readonly HeldExample[];
  reference: readonly HeldExample[];
  model: FtrlModel;
}

type Inputs = ReturnType<typeof trainingExample>[];

/** Scored as it would serve (the tfjs graph), like the champion: an unchanged model ties exactly. */
const scoresOf = (m: { predict(x: Inputs): ArrayLike<number> }, x: Inputs) =>
  x.length > 0 ? Array.from(m.predict(x)) : [];

export async function proposeCandidate(options: ProposalOptions): Promise<CandidateResult> {
  const { admin, learner } = options;
  const serving = learner.serving(options.selected);
  const taken: Taken = {
    baseline: options.baseline.clone(),
    holdout: learner.holdout,
    reference: [...options.reference],
    model: new FtrlModel(options.spec.dimension, options.spec.maxNonZero, serving.params, {
      z: serving.z,
      n: serving.n,
    }),
  };
  let judged: ReturnType<typeof judge>;
  let metadata: VersionMetadata;
  let learnedChampion: boolean;
  try {
    const routing = await admin.registry.routing();
    // A baseline champion is the heuristic serving until a learned model beats it: the bar is
    // then the baseline learned without the holdout (rule 3), not its snapshot that saw it.
    learnedChampion = await isLearned(admin, routing.champion);
    const sets = await scoredSets(options, taken, learnedChampion ? routing.champion : null);
    judged = judge(sets, options);
    metadata = await register(options, taken, sets.holdout, judged.decision, routing.champion);
  } finally {
    taken.model.dispose();
  }
  const { decision, baselineDecision } = judged;
  if (!decision.accept)
    return {
      version: metadata.version,
      decision,
      alias: null,
      ...(baselineDecision?.accept ? { baselineReplacesChampion: baselineDecision } : {}),
    };
  // A failing champion (worse than a constant) is replaced at once, not put beside a challenger.
  const direct = options.promoteTo === 'champion' || !learnedChampion || decision.championFailing;
  if (!direct && options.promoteTo === 'experiment')
    return {
      version: metadata.version,
      decision,
      alias: null,
      experiment: await queue(options, metadata, decision),
    };
  const alias = direct ? 'champion' : 'challenger';
  const holder = alias === 'challenger' ? await operatorChallenger(admin) : null;
  if (holder)
    return {
      version: metadata.version,
      decision,
      alias: null,
      held: `the challenger alias is held by ${holder.version}, placed by ${holder.actor}: the trainer does not overwrite it`,
    };
  await admin.promote(metadata.version, alias, {
    actor: 'trainer',
    reason: gateReason(decision),
    ...(alias === 'challenger' ? { challengerWeight: options.challengerWeight } : {}),
  });
  return { version: metadata.version, decision, alias };
}

function gateReason(decision: GateDecision): string {
  const { holdout } = decision;
  return `gate: holdout log loss ${holdout.candidate.logLoss.toFixed(4)} vs champion ${holdout.champion?.logLoss.toFixed(4) ?? 'none'}${decision.championFailing ? ' (failing: worse than the constant)' : ''}, baseline ${holdout.baseline.logLoss.toFixed(4)}, constant ${holdout.constant.logLoss.toFixed(4)}`;
}

/** Queues the accepted candidate for an experiment (superseding the trainer's older queued one). */
async function queue(
  options: ProposalOptions,
  metadata: VersionMetadata,
  decision: GateDecision,
): Promise<string> {
  const experiment = await new ExperimentStore(options.admin.registry.root).queue({
    candidate: metadata.version,
    config: options.ramp ?? DEFAULT_RAMP,
    actor: 'trainer',
    reason: gateReason(decision),
    now: Date.now(),
  });
  return experiment.id;
}

/** The holdout and the reference set scored by the candidate, the champion (if learned) and the baseline. */
async function scoredSets(
  options: ProposalOptions,
  taken: Taken,
  champion: string | null,
): Promise<{ holdout: ScoredSet; reference: ScoredSet | null }> {
  const inputs = taken.holdout.map(trainingExample);
  const referenceInputs = taken.reference.map(trainingExample);
  let championScores: number[] | null = null;
  let championReference: number[] | null = null;
  if (champion) {
    const { files } = await options.admin.registry.loadArtifacts(champion);
    const model = await fromArtifacts(files, options.spec);
    try {
      championScores = scoresOf(model, inputs);
      championReference = scoresOf(model, referenceInputs);
    } finally {
      model.dispose();
    }
  }
  return {
    holdout: {
      labels: taken.holdout.map((e) => e.label),
      weights: taken.holdout.map((e) => e.weight),
      candidate: scoresOf(taken.model, inputs),
      champion: championScores,
      baseline: scoresOf(taken.baseline, inputs),
    },
    reference:
      taken.reference.length > 0
        ? {
            labels: taken.reference.map((e) => e.label),
            weights: taken.reference.map((e) => e.weight),
            candidate: scoresOf(taken.model, referenceInputs),
            champion: championReference,
            baseline: scoresOf(taken.baseline, referenceInputs),
          }
        : null,
  };
}

/**
 * The gate's decision on the candidate; when it is refused and the champion is failing, the
 * baseline judged as a candidate by the same rules, a constant at the holdout's rate standing for
 * the baseline (rule 3 is rule 2 then): the label-rate and trusted-label rules still refuse a
 * baseline learned from a flipped stream.
 */
function judge(
  sets: { holdout: ScoredSet; reference: ScoredSet | null },
  options: ProposalOptions,
): { decision: GateDecision; baselineDecision: GateDecision | null } {
  const decision = decidePromotion(sets.holdout, sets.reference, options.gate, options.history);
  if (decision.accept || !decision.championFailing) return { decision, baselineDecision: null };
  const { holdout, reference } = sets;
  const baselineDecision = decidePromotion(
    { ...holdout, candidate: holdout.baseline, baseline: constantScores(holdout) },
    reference && { ...reference, candidate: reference.baseline },
    options.gate,
    options.history,
  );
  return { decision, baselineDecision };
}

/** Registered either way: rejected with the gate's reasons, or to be promoted. */
async function register(
  options: ProposalOptions,
  taken: Taken,
  holdout: ScoredSet,
  decision: GateDecision,
  parent: string | null,
): Promise<VersionMetadata> {
  return options.admin.registry.register({
    artifacts: withSnapshot(await toArtifacts(taken.model, options.spec), options.snapshot),
    parent,
    seed: 0,
    training: options.training,
    metrics: {
      examples: taken.holdout.length,
      logLoss: decision.holdout.candidate.logLoss,
      auc: decision.holdout.candidate.auc,
      lift: decision.holdout.candidate.lift,
      calibrationError: calibrationError(
        holdout.candidate.map((score, i) => ({ score, label: holdout.labels[i] as number })),
      ),
      baselineLogLoss: decision.holdout.baseline.logLoss,
      constantLogLoss: decision.holdout.constant.logLoss,
      ...(decision.holdout.champion ? { championLogLoss: decision.holdout.champion.logLoss } : {}),
    },
    // What the monitor compares the version's live traffic with. Examples held before layout 7
    // carry no category: then the category is left out rather than read as missing.
    reference: versionReference(
      options.spec,
      taken.holdout.map((e, i) => ({
        features: { indices: e.indices, values: e.values },
        category: e.category,
        segment: e.segment,
        userId: e.userId,
        score: holdout.candidate[i] as number,
        label: e.label,
      })),
      taken.holdout.some((e) => !e.category) ? ['category'] : [],
    ),
    createdBy: 'trainer',
    status: decision.accept ? 'registered' : 'rejected',
    statusReason: decision.accept ? null : decision.reasons.join('; '),
  });
}

function withSnapshot(artifacts: ModelArtifacts, snapshot: Buffer | undefined): ModelArtifacts {
  return snapshot ? { ...artifacts, files: { ...artifacts.files, [SNAPSHOT_FILE]: snapshot } } : artifacts;
}

/**
 * Publishes the heuristic baseline as the champion while no learned model is one, so the first
 * clicks are scored with the rates learned so far rather than a fixed guess. The snapshot learns
 * the holdout too (serving wants every label; the gate's baseline stays without it), so it is
 * registered without holdout metrics. Returns the version, or null when a learned model is
 * champion (the baseline's serving is over).
 */
export async function publishServingBaseline(options: {
  admin: RegistryAdmin;
  spec: FeatureSpec;
  baseline: HeuristicBaseline;
  holdout: readonly HeldExample[];
  training: TrainingData;
  /** Why it replaces a learned champion (the gate found it failing), if it does. */
  replacing?: string;
}): Promise<string | null> {
  const { admin } = options;
  const routing = await admin.registry.routing();
  if (!options.replacing && (await isLearned(admin, routing.champion))) return null;
  const serving = options.baseline.clone();
  for (const e of options.holdout) serving.update(e, e.label, e.weight);
  const metadata = await admin.registry.register({
    artifacts: await toArtifacts(serving, options.spec),
    parent: routing.champion,
    seed: 0,
    training: options.training,
    metrics: null,
    createdBy: 'trainer',
  });
  const rate = serving.observations > 0 ? serving.score({ itemId: '', segment: '' }) : null;
  await admin.promote(metadata.version, 'champion', {
    actor: 'trainer',
    reason: `${options.replacing ? `${options.replacing}; ` : ''}the baseline serves until a learned model beats it: ${serving.observations} examples, global rate ${rate?.toFixed(4) ?? '-'}`,
  });
  return metadata.version;
}

/** Whether `version` is a learned model (not the heuristic baseline serving in place of one). */
async function isLearned(admin: RegistryAdmin, version: string | null): Promise<boolean> {
  return version !== null && (await admin.registry.get(version)).kind !== 'baseline';
}

/**
 * The challenger an operator (anyone but the trainer) placed, if one holds the alias now: its
 * experiment is theirs, and a trainer candidate waits instead of replacing it.
 */
async function operatorChallenger(admin: RegistryAdmin): Promise<{ version: string; actor: string } | null> {
  const { challenger } = await admin.registry.routing();
  if (challenger === null) return null;
  const moves = await admin.registry.history();
  const placed = moves.filter((m) => m.alias === 'challenger' && m.to === challenger).at(-1);
  return placed && placed.actor !== 'trainer' ? { version: challenger, actor: placed.actor } : null;
}
