// A candidate version from the online learner: scored on the holdout next to the champion and the
// heuristic baseline, judged by the gate, registered either way (with its lineage, metrics and,
// when refused, the reasons), and given an alias only when the gate accepts it.
import { calibrationError } from '../model/evaluation.js';
import { fromArtifacts, toArtifacts } from '../model/artifacts.js';
import type { HeuristicBaseline } from '../model/baseline.js';
import type { FeatureSpec } from '../model/features.js';
import { FtrlModel } from '../model/models.js';
import type { RegistryAdmin } from '../registry/admin.js';
import type { OffsetRange, VersionMetadata } from '../registry/store.js';
import { decidePromotion, type GateConfig, type GateDecision } from './gate.js';
import type { OnlineLearner } from './online.js';

export interface CandidateResult {
  version: string;
  decision: GateDecision;
  /** The alias it got, or null when refused. */
  alias: 'champion' | 'challenger' | null;
}

export interface CandidateLineage {
  ranges: OffsetRange[];
  labelSources: Record<string, number>;
}

export async function proposeCandidate(options: {
  admin: RegistryAdmin;
  spec: FeatureSpec;
  learner: OnlineLearner;
  baseline: HeuristicBaseline;
  gate: GateConfig;
  lineage: CandidateLineage;
  /** Accepted candidates become challenger; `champion` promotes them straight away. */
  promoteTo: 'challenger' | 'champion';
  challengerWeight: number;
}): Promise<CandidateResult> {
  const { admin, spec, learner, baseline } = options;
  const holdout = learner.holdout;
  const inputs = holdout.map((e) => ({
    features: { indices: e.indices, values: e.values },
    itemId: e.itemId,
    segment: e.segment,
  }));
  const labels = holdout.map((e) => e.label);
  const weights = holdout.map((e) => e.weight);
  const state = learner.state();
  const model = new FtrlModel(spec.dimension, spec.maxNonZero, learner.options.params, {
    z: state.z,
    n: state.n,
  });
  let routing;
  let decision: GateDecision;
  let metadata: VersionMetadata;
  try {
    // Scored as it would serve (the tfjs graph), like the champion: an unchanged model ties exactly.
    const candidateScores = Array.from(model.predict(inputs));
    routing = await admin.registry.routing();
    let championScores: number[] | null = null;
    if (routing.champion) {
      const { files } = await admin.registry.loadArtifacts(routing.champion);
      const champion = await fromArtifacts(files, spec);
      try {
        championScores = Array.from(champion.predict(inputs));
      } finally {
        champion.dispose();
      }
    }
    const baselineScores = Array.from(baseline.predict(inputs));
    decision = decidePromotion(
      { labels, weights, candidate: candidateScores, champion: championScores, baseline: baselineScores },
      null,
      options.gate,
    );
    metadata = await admin.registry.register({
      artifacts: await toArtifacts(model, spec),
      parent: routing.champion,
      seed: 0,
      training: {
        source: 'kafka',
        ranges: options.lineage.ranges,
        examples: learner.learned,
        labelSources: options.lineage.labelSources,
      },
      metrics: {
        examples: holdout.length,
        logLoss: decision.holdout.candidate.logLoss,
        auc: decision.holdout.candidate.auc,
        calibrationError: calibrationError(
          candidateScores.map((score, i) => ({ score, label: labels[i] as number })),
        ),
        baselineLogLoss: decision.holdout.baseline.logLoss,
        ...(decision.holdout.champion ? { championLogLoss: decision.holdout.champion.logLoss } : {}),
      },
      createdBy: 'trainer',
      status: decision.accept ? 'registered' : 'rejected',
      statusReason: decision.accept ? null : decision.reasons.join('; '),
    });
  } finally {
    model.dispose();
  }
  if (!decision.accept) return { version: metadata.version, decision, alias: null };
  const alias = options.promoteTo === 'champion' || !routing.champion ? 'champion' : 'challenger';
  await admin.promote(metadata.version, alias, {
    actor: 'trainer',
    reason: `gate: holdout log loss ${decision.holdout.candidate.logLoss.toFixed(4)} vs champion ${decision.holdout.champion?.logLoss.toFixed(4) ?? 'none'}, baseline ${decision.holdout.baseline.logLoss.toFixed(4)}`,
    ...(alias === 'challenger' ? { challengerWeight: options.challengerWeight } : {}),
  });
  return { version: metadata.version, decision, alias };
}
