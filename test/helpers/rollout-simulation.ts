// Seeded experiments on simulated outcomes, for the decision core's error rates (the unit test)
// and their table in BENCHMARKS.md (bench/rollout.ts). Users come one outcome at a time; each is
// sent to the candidate with the current step's share; half the users buy with probability
// `low`, half with `high` (the control predicts their mean for everyone, a better candidate knows
// each user's own); the core is asked after every `peekEvery` outcomes, as often as a live
// controller might look.
import { Random } from '../../services/common/random.js';
import { DEFAULT_RAMP } from '../../services/registry/experiments.js';
import type { ArmStats } from '../../services/rollout/sequential.js';
import {
  apply,
  decide,
  recordBatch,
  startProgress,
  type Action,
  type RampConfig,
} from '../../services/rollout/experiment.js';

export interface Scenario {
  /** Purchase probabilities of the two kinds of user, under the control. */
  low: number;
  high: number;
  /** How much the candidate's arm changes every user's purchase probability (0: not at all). */
  rateLift: number;
  /**
   * What the candidate predicts: the mean, like the control (an A/A test); each user's own
   * probability (a better model); or the other kind's (a worse one).
   */
  candidate: 'mean' | 'own' | 'swapped';
}

export interface SimulatedRun {
  action: Action | 'undecided';
  /** Candidate outcomes when it ended. */
  candidateOutcomes: number;
  /** The largest share the candidate reached. */
  maxShare: number;
}

export { DEFAULT_RAMP };

const logLoss = (score: number, y: number) => -Math.log(y === 1 ? score : 1 - score);

/** A summary from the count, sum and sum of squares of a batch. */
function summary(n: number, sum: number, squares: number): ArmStats {
  const mean = sum / n;
  return { n, mean, m2: Math.max(0, squares - n * mean * mean) };
}

export function simulateExperiment(
  seed: number,
  scenario: Scenario,
  config: RampConfig = DEFAULT_RAMP,
  peekEvery = 20,
): SimulatedRun {
  const random = new Random(seed);
  let progress = startProgress(config, 0);
  let maxShare = config.steps[0] ?? 0;
  const mean = (scenario.low + scenario.high) / 2;
  // Outcomes since the last look, per arm: sums here, folded into the progress at a look.
  const none = () => ({ n: 0, loss: 0, lossSquares: 0, bought: 0 });
  const sums = { control: none(), candidate: none() };
  for (let t = 1; t <= config.budget * 4; t++) {
    const share = config.steps[progress.step] ?? 0;
    const arm = random.chance(share) ? 'candidate' : 'control';
    const lowUser = random.chance(0.5);
    const base = lowUser ? scenario.low : scenario.high;
    const p = arm === 'candidate' ? Math.min(1, Math.max(0, base + scenario.rateLift)) : base;
    const y = random.chance(p) ? 1 : 0;
    const score =
      arm === 'control' || scenario.candidate === 'mean'
        ? mean
        : scenario.candidate === 'own'
          ? base
          : lowUser
            ? scenario.high
            : scenario.low;
    const loss = logLoss(score, y);
    const s = sums[arm];
    s.n++;
    s.loss += loss;
    s.lossSquares += loss * loss;
    s.bought += y;
    if (t % peekEvery !== 0) continue;
    for (const which of ['control', 'candidate'] as const) {
      const { n, loss: l, lossSquares, bought } = sums[which];
      if (n === 0) continue;
      // y is 0 or 1: its sum of squares is its sum.
      const batch = { logLoss: summary(n, l, lossSquares), purchaseRate: summary(n, bought, bought) };
      // The share is constant between looks (it changes only at one): the batch's stratum.
      progress = recordBatch(progress, which, batch, String(share));
      sums[which] = none();
    }
    const decision = decide(config, progress, t);
    if (decision.action === 'hold') continue;
    progress = apply(progress, decision, t);
    maxShare = Math.max(maxShare, decision.action === 'advance' ? decision.share : 0);
    if (decision.action !== 'advance')
      return {
        action: decision.action,
        candidateOutcomes: progress.stats.candidate.logLoss?.n ?? 0,
        maxShare,
      };
  }
  return { action: 'undecided', candidateOutcomes: progress.stats.candidate.logLoss?.n ?? 0, maxShare };
}

/** How often each ending came over `runs` seeded experiments. */
export function endings(runs: number, scenario: Scenario, config?: RampConfig, firstSeed = 1) {
  const counts: Record<SimulatedRun['action'], number> = {
    hold: 0,
    advance: 0,
    promote: 0,
    rollback: 0,
    inconclusive: 0,
    undecided: 0,
  };
  const exposures: number[] = [];
  for (let i = 0; i < runs; i++) {
    const run = simulateExperiment(firstSeed + i, scenario, config);
    counts[run.action]++;
    if (run.action === 'rollback') exposures.push(run.maxShare);
  }
  return { counts, rollbackShares: exposures };
}
