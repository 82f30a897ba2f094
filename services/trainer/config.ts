// Trainer settings (on top of the common ones), from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';
import { DEFAULT_SIDE_LEARNERS, learnerSpecsSchema } from './learners.js';

/** A JSON list of side learners (learners.ts); '[]' trains the trainer's own FTRL alone. */
const sideLearners = z
  .string()
  .optional()
  .transform((text, ctx) => {
    if (text === undefined || text.trim() === '') return [...DEFAULT_SIDE_LEARNERS];
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message: 'not JSON (a list of learners, e.g. [{"name":"fast","alpha":0.15}])',
      });
      return z.NEVER;
    }
    const result = learnerSpecsSchema.safeParse(parsed);
    if (!result.success) {
      ctx.addIssue({
        code: 'custom',
        message: result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      });
      return z.NEVER;
    }
    return result.data;
  });

export const trainerConfigSchema = z.object({
  FW_TRAINER_GROUP: z.string().min(1).default('flywheel.trainer'),
  /** Folder of the trainer's checkpoint. */
  FW_TRAINER_DIR: z.string().min(1).default('.trainer'),
  /** Newest examples held out of training (the gate's recent holdout). */
  FW_TRAINER_HOLDOUT: env.int(2000, 0, 1_000_000),
  /** Checkpoint after this many examples learned, or after FW_TRAINER_CHECKPOINT_MS. */
  FW_TRAINER_CHECKPOINT_EVERY: env.int(50_000, 1, 10_000_000),
  /** Most bytes fetched per partition at once. */
  FW_TRAINER_FETCH_BYTES: env.int(4 * 1024 * 1024, 64 * 1024, 64 * 1024 * 1024),
  FW_TRAINER_CHECKPOINT_MS: env.int(10_000, 100, 3_600_000),
  /** With no checkpoint, start from the champion's FTRL state (same feature spec) instead of zero. */
  FW_TRAINER_WARM_START: env.bool(true),
  /** `outcome`: a seen outcome stands, a human label counts as agreement; `replace`: it wins. */
  FW_TRAINER_HUMAN_POLICY: z.preprocess(
    // `human` is the replacing policy's earlier name.
    (value) => (value === 'human' ? 'replace' : value),
    z.enum(['outcome', 'replace', 'both']).default('outcome'),
  ),
  /** Segments whose purchases Flywheel does not see (comma-separated): a reviewer's label wins there. */
  FW_TRAINER_CENSORED_SEGMENTS: env.list(),
  FW_TRAINER_HUMAN_WEIGHT: env.number(3, 0, 1000),
  // Labels of predictions with seen outcomes a labeler needs before their labels are trusted,
  // and the days those are counted over (labeler-reliability.ts).
  FW_TRAINER_LABELER_MIN_JUDGED: env.int(20, 1),
  FW_TRAINER_LABELER_WINDOW_DAYS: env.int(30, 1, 3650),
  FW_TRAINER_HTTP_PORT: env.int(8084, 0, 65535),
  FW_CONSUMER_SESSION_TIMEOUT_MS: env.int(30_000, 6_000, 300_000),
  /** Propose a candidate version after this many examples learned (0: not by count). */
  FW_TRAINER_CANDIDATE_EVERY: env.int(20_000, 0, 100_000_000),
  /** Propose one after this long without a candidate, if anything was learned (0: not by time). */
  FW_TRAINER_CANDIDATE_MS: env.int(600_000, 0, 86_400_000),
  /** Propose one when progressive log loss rises this many standard errors (0: no drift trigger). */
  FW_TRAINER_DRIFT_Z: env.number(4, 0, 100),
  /** ... and by at least this share over the stretch before. */
  FW_TRAINER_DRIFT_MIN_RISE: env.number(0.1, 0, 10),
  /** Newest trusted (human or uploaded) examples kept as the gate's reference set. */
  FW_TRAINER_REFERENCE_SIZE: env.int(2000, 0, 1_000_000),
  /** Outcome examples remembered (and checkpointed) for human labels that come after them. */
  FW_TRAINER_REMEMBER_OUTCOMES: env.int(20_000, 0, 10_000_000),
  /**
   * Accepted candidates are queued for an `experiment` (the rollout controller decides on live
   * outcomes), or become `challenger` (with FW_TRAINER_CHALLENGER_WEIGHT) or `champion`.
   */
  FW_TRAINER_PROMOTE_TO: z.enum(['experiment', 'challenger', 'champion']).default('experiment'),
  FW_TRAINER_CHALLENGER_WEIGHT: env.number(0.1, 0, 1),
  /** The ramp of the experiments the trainer queues: traffic shares, increasing, comma-separated. */
  FW_TRAINER_EXPERIMENT_STEPS: z
    .string()
    .regex(/^\s*0?\.\d+(\s*,\s*(0?\.\d+|1))*\s*$/, 'comma-separated shares in (0, 1), e.g. 0.05,0.25,0.5')
    .refine(
      (text) =>
        text
          .split(',')
          .map(Number)
          .every((share, i, all) => share > 0 && share < 1 && (i === 0 || share > (all[i - 1] as number))),
      'shares must increase, each in (0, 1)',
    )
    .default('0.05,0.25,0.5'),
  /** Candidate outcomes per step of those experiments. */
  FW_TRAINER_EXPERIMENT_MIN_OUTCOMES: env.int(500, 1, 10_000_000),
  /**
   * While no learned model is champion, publish the baseline as champion after this many
   * examples, then each time the examples double and after each refused candidate; and in
   * place of a failing champion (0: never, neither; the scorer's fixed prior serves).
   */
  FW_TRAINER_BASELINE_FIRST: env.int(50, 0, 100_000_000),
  /** Learners trained side by side with the FTRL (JSON list; unset: the default four). */
  FW_TRAINER_LEARNERS: sideLearners,
  /** Newest examples whose log loss on arrival picks the learner a candidate takes. */
  FW_TRAINER_SELECTION_WINDOW: env.int(2000, 1, 1_000_000),
  FW_TRAINER_GATE_MIN_HOLDOUT: env.int(500, 1, 1_000_000),
  FW_TRAINER_GATE_MIN_IMPROVEMENT: env.number(0.002, 0, 1),
  FW_TRAINER_GATE_ALPHA: env.number(0.05, 0.0001, 0.5),
});
export type TrainerConfig = z.infer<typeof trainerConfigSchema>;

export function loadTrainerConfig(envVars: Env = process.env): TrainerConfig {
  return loadConfig(trainerConfigSchema, envVars);
}
