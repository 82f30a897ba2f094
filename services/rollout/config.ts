// Rollout controller settings (on top of the common ones), from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';

export const rolloutConfigSchema = z.object({
  FW_ROLLOUT_GROUP: z.string().min(1).default('flywheel.rollout'),
  /** How often the controller looks at its experiments and decides. */
  FW_ROLLOUT_TICK_MS: env.int(2000, 50, 600_000),
  FW_ROLLOUT_HTTP_PORT: env.int(8086, 0, 65535),
  FW_CONSUMER_SESSION_TIMEOUT_MS: env.int(30_000, 6000, 300_000),
});
export type RolloutConfig = z.infer<typeof rolloutConfigSchema>;

export function loadRolloutConfig(envVars: Env = process.env): RolloutConfig {
  return loadConfig(rolloutConfigSchema, envVars);
}
