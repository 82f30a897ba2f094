// Scorer settings (on top of the common ones), from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';

export const scorerConfigSchema = z.object({
  FW_SCORER_GROUP: z.string().min(1).default('flywheel.scorer'),
  FW_HTTP_PORT: env.int(8080, 0, 65535),
  FW_PREDICT_BODY_LIMIT: env.int(256 * 1024, 1024, 16 * 1024 * 1024),
  FW_PREDICT_MAX_EVENTS: env.int(1000, 1, 100_000),
  FW_DEBUG_FEATURES: env.bool(false),
  FW_REVIEW_BAND_LOW: env.number(0.35, 0, 1),
  FW_REVIEW_BAND_HIGH: env.number(0.65, 0, 1),
  FW_REVIEW_DISAGREEMENT: env.number(0.3, 0, 1),
  FW_REVIEW_AUDIT_RATE: env.number(0.001, 0, 1),
  FW_SESSION_IDLE_SECONDS: env.int(4 * 3600, 60),
  FW_CONSUMER_SESSION_TIMEOUT_MS: env.int(30_000, 6_000, 300_000),
  /** Partitions scored at once: one batch's Redis and Kafka round trips overlap another's work. */
  FW_SCORER_CONCURRENCY: env.int(3, 1, 64),
  /** Clicks per request to the scoring pipeline, and per session load and write within it. */
  FW_SCORER_SESSION_SLICE: env.int(1000, 1, 100_000),
  /** Score in a worker thread, leaving the main thread to Kafka and HTTP (needs a second core). */
  FW_SCORER_WORKER: env.bool(true),
  /** Sessions held in memory (about 1 KB each); the least recently used are dropped beyond it. */
  FW_SCORER_SESSION_CACHE: env.int(100_000, 1, 10_000_000),
});
export type ScorerConfig = z.infer<typeof scorerConfigSchema>;

export function loadScorerConfig(envVars: Env = process.env): ScorerConfig {
  const config = loadConfig(scorerConfigSchema, envVars);
  if (config.FW_REVIEW_BAND_LOW > config.FW_REVIEW_BAND_HIGH) {
    return loadConfig(
      scorerConfigSchema.refine(() => false, {
        path: ['FW_REVIEW_BAND_LOW'],
        message: 'must not exceed FW_REVIEW_BAND_HIGH',
      }),
      envVars,
    );
  }
  return config;
}
