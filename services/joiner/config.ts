// Joiner settings (on top of the common ones), from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';
import type { JoinConfig } from './join.js';

export const joinerConfigSchema = z.object({
  FW_JOINER_GROUP: z.string().min(1).default('flywheel.joiner'),
  /** Prefix of the transactional ids, one per input partition (`<prefix>-<partition>`). */
  FW_JOINER_TRANSACTIONAL_ID: z.string().min(1).default('flywheel.joiner'),
  FW_JOINER_HTTP_PORT: env.int(8083, 0, 65535),
  FW_JOIN_WINDOW_MS: env.int(30 * 60_000, 1000, 7 * 24 * 3600_000),
  FW_JOIN_ALLOWED_LATENESS_MS: env.int(60_000, 0, 24 * 3600_000),
  FW_JOIN_MATCH: z.enum(['same-item', 'same-session', 'any-item']).default('same-item'),
  FW_JOIN_ATTRIBUTION: z.enum(['last', 'first', 'all']).default('last'),
  FW_JOIN_IDLE_MS: env.int(30_000, 100, 24 * 3600_000),
  FW_JOIN_IDLE_LAG_MS: env.int(5_000, 0, 24 * 3600_000),
  /** Progress within this of the wall clock when it last moved is live: idle windows close by the clock. */
  FW_JOIN_LIVE_LAG_MS: env.int(5 * 60_000, 0, 365 * 24 * 3600_000),
  /** Decided clicks and attributed purchases held this long for late input to correct. */
  FW_JOIN_RETENTION_MS: env.int(10 * 60_000, 0, 7 * 24 * 3600_000),
  /**
   * Where the predictions' progress comes from: `scorer` (how far FW_SCORER_GROUP has scored the
   * click topic, from its committed offsets) or `stream` (the predictions' own event times, for
   * predictions written by something else).
   */
  FW_JOIN_PREDICTION_PROGRESS: z.enum(['scorer', 'stream']).default('scorer'),
  FW_SCORER_GROUP: z.string().min(1).default('flywheel.scorer'),
  /** Share of purchases crediting no click, over a minute, above which the joiner warns. */
  FW_JOIN_UNATTRIBUTED_WARN_RATE: env.number(0.2, 0, 1),
  /** How often the upstream groups' progress is read. */
  FW_JOIN_PROGRESS_POLL_MS: env.int(250, 20, 60_000),
  /** Pending predictions held by one joiner process before it pauses reading predictions. */
  FW_JOINER_MAX_PENDING: env.int(500_000, 100, 50_000_000),
  FW_CONSUMER_SESSION_TIMEOUT_MS: env.int(30_000, 6_000, 300_000),
  /** Most bytes fetched per partition per batch: smaller means shorter transactions. */
  FW_JOINER_MAX_BATCH_BYTES: env.int(1024 * 1024, 1024, 64 * 1024 * 1024),
});
export type JoinerConfig = z.infer<typeof joinerConfigSchema>;

export function loadJoinerConfig(envVars: Env = process.env): JoinerConfig {
  return loadConfig(joinerConfigSchema, envVars);
}

export function joinConfigFrom(config: JoinerConfig): JoinConfig {
  return {
    windowMs: config.FW_JOIN_WINDOW_MS,
    allowedLatenessMs: config.FW_JOIN_ALLOWED_LATENESS_MS,
    match: config.FW_JOIN_MATCH,
    attribution: config.FW_JOIN_ATTRIBUTION,
    idleMs: config.FW_JOIN_IDLE_MS,
    idleLagMs: config.FW_JOIN_IDLE_LAG_MS,
    liveLagMs: config.FW_JOIN_LIVE_LAG_MS,
    retentionMs: config.FW_JOIN_RETENTION_MS,
  };
}
