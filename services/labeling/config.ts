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

/** A validity flag a labeler can raise beside the answer: the example is not trained on. */
export interface ValidityFlag {
  id: string;
  text: string;
  guideline: string;
}

export const DEFAULT_QUESTION = 'Will this visit end in a purchase?';

export const DEFAULT_FLAGS: readonly ValidityFlag[] = [
  {
    id: 'bot',
    text: 'Bot or test traffic',
    guideline: 'The session looks automated (clicks seconds apart, no pauses) or is a test account.',
  },
  {
    id: 'broken',
    text: 'Broken page',
    guideline: 'The page could not be used (no price, an error): the visit says nothing about the item.',
  },
];

/** FW_LABELING_FLAGS: a JSON array of {id, text, guideline}. */
const flagList = z
  .string()
  .optional()
  .transform((value, ctx) => {
    if (value === undefined || value.trim() === '') return [...DEFAULT_FLAGS];
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON array of {"id", "text", "guideline"}' });
      return z.NEVER;
    }
    const result = z
      .array(
        z.object({
          id: z.string().regex(/^[a-z0-9_-]{1,64}$/, 'ids are 1 to 64 of a-z, 0-9, _ and -'),
          text: z.string().min(1).max(200),
          guideline: z.string().max(2000).default(''),
        }),
      )
      .max(6)
      .refine((flags) => new Set(flags.map((f) => f.id)).size === flags.length, 'flag ids must differ')
      .safeParse(parsed);
    if (!result.success) {
      for (const issue of result.error.issues)
        ctx.addIssue({ code: 'custom', message: `${issue.path.join('.')}: ${issue.message}` });
      return z.NEVER;
    }
    return result.data;
  });

const DEDUPE_SCOPES = ['session', 'item', 'user'] as const;
export type DedupeScope = (typeof DEDUPE_SCOPES)[number];

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
  /** Adaptive overlap: labels a task asks for at most while its labelers disagree. */
  FW_LABELING_MAX_LABELS: env.int(3, 1, 50),
  /**
   * Diversity: one review task per user session and per item (the default), or any of session,
   * item, user (comma-separated), or none, per FW_LABELING_DEDUPE_SECONDS.
   */
  FW_LABELING_DEDUPE: z
    .string()
    .default('session,item')
    .transform((value, ctx) => {
      const scopes = value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (scopes.length === 1 && scopes[0] === 'none') return [];
      const bad = scopes.filter((s) => !DEDUPE_SCOPES.includes(s as DedupeScope));
      if (bad.length > 0 || scopes.length === 0)
        ctx.addIssue({
          code: 'custom',
          message: `expected none, or some of ${DEDUPE_SCOPES.join(', ')} (got ${value})`,
        });
      return [...new Set(scopes)] as DedupeScope[];
    }),
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
  /** The review question, as labelers read it; FW_LABELING_GUIDELINES is its guideline. */
  FW_LABELING_QUESTION: z.string().min(1).max(500).default(DEFAULT_QUESTION),
  FW_LABELING_FLAGS: flagList,
  FW_LABELER_TOKENS: tokenList,
});
export type LabelingConfig = z.infer<typeof labelingConfigSchema>;

/** The de-duplication keys of a review task for a click (none: no de-duplication). */
export function reviewDedupeKeys(
  scopes: readonly DedupeScope[],
  click: { sessionId: string; itemId: string; userId: string },
): string[] {
  const ids = { session: click.sessionId, item: click.itemId, user: click.userId };
  return scopes.map((scope) => `${scope}:${ids[scope]}`);
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
