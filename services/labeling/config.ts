// Labeling service settings, from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';

/** "id:token,id:token": each labeler's bearer token (16+ characters). */
const tokenList = z
  .string()
  .default('')
  .transform((value, ctx) => {
    const entries = value
      .split(',')
      .map((pair) => pair.trim())
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf(':');
        return at < 1 ? { id: pair, token: '' } : { id: pair.slice(0, at), token: pair.slice(at + 1) };
      });
    for (const e of entries) {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(e.id) || e.token.length < 16 || e.token.includes(':')) {
        ctx.addIssue({
          code: 'custom',
          message: `expected id:token pairs with tokens of 16+ characters (bad entry for '${e.id}')`,
        });
      }
    }
    return entries;
  });

export const labelingConfigSchema = z.object({
  FW_LABELING_QUEUE: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default('review'),
  FW_LABELING_PORT: env.int(8082, 0, 65535),
  /** How long a label may take to reach Kafka before the labeler is told to send it again. */
  FW_LABELING_PUBLISH_TIMEOUT_MS: env.int(15_000, 500, 300_000),
  FW_LABELING_LEASE_MS: env.int(5 * 60_000, 1000),
  FW_LABELING_MAX_AGE_MS: env.int(7 * 24 * 3600_000, 60_000),
  FW_LABELING_LABELS_REQUIRED: env.int(1, 1, 10),
  FW_LABELING_TASKS_PER_HOUR: env.int(500, 0),
  /** One review task per user session, per item, per user, or no de-duplication. */
  /** Adaptive overlap: labels a task asks for at most while its labelers disagree. */
  FW_LABELING_MAX_LABELS: env.int(3, 1, 50),
  FW_LABELING_DEDUPE: z.enum(['session', 'item', 'user', 'none']).default('session'),
  FW_LABELING_DEDUPE_SECONDS: env.int(3600, 1, 30 * 24 * 3600),
  /** Priority boost of review tasks from rarely reviewed segments (0 = none). */
  FW_LABELING_RARE_BOOST: env.number(1, 0, 100),
  /** Blind review: the model's score is shown to a labeler only after their answer. */
  FW_LABELING_BLIND: env.bool(true),
  FW_LABELING_GUIDELINES: z
    .string()
    .default(
      'Label 1 if this visit will end in a purchase of the item, 0 if not. Use "unclear" when you cannot tell.',
    ),
  FW_LABELER_TOKENS: tokenList,
});
export type LabelingConfig = z.infer<typeof labelingConfigSchema>;

export type DedupeScope = LabelingConfig['FW_LABELING_DEDUPE'];

/** The de-duplication key of a review task for a click, or undefined when there is none. */
export function reviewDedupeKey(
  scope: DedupeScope,
  click: { sessionId: string; itemId: string; userId: string },
): string | undefined {
  if (scope === 'none') return undefined;
  if (scope === 'item') return `item:${click.itemId}`;
  if (scope === 'user') return `user:${click.userId}`;
  return `session:${click.sessionId}`;
}

export function loadLabelingConfig(envVars: Env = process.env): LabelingConfig {
  return loadConfig(labelingConfigSchema, envVars);
}

/** Queue settings from the labeling configuration (the service and the scorer's review sink). */
export function queueOptionsFrom(config: LabelingConfig) {
  return {
    leaseMs: config.FW_LABELING_LEASE_MS,
    maxAgeMs: config.FW_LABELING_MAX_AGE_MS,
    labelsRequired: config.FW_LABELING_LABELS_REQUIRED,
    maxLabels: config.FW_LABELING_MAX_LABELS,
    // One task per session (or item, or user) per hour keeps one busy visitor from flooding the queue.
    dedupeTtlSeconds: config.FW_LABELING_DEDUPE_SECONDS,
    tasksPerHour: config.FW_LABELING_TASKS_PER_HOUR,
    rareBoost: config.FW_LABELING_RARE_BOOST,
  };
}
