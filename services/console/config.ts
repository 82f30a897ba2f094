// Console settings (on top of the common ones), from the environment.
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';

export const consoleConfigSchema = z.object({
  FW_CONSOLE_PORT: env.int(8088, 0, 65535),
  /** The monitor's HTTP API (its last look, series and alerts). */
  FW_CONSOLE_MONITOR_URL: z.string().url().default('http://127.0.0.1:8087'),
  /** The labeling API (its admin view, asked with the admin token). */
  FW_CONSOLE_LABELING_URL: z.string().url().default('http://127.0.0.1:8082'),
  /** The trainer's HTTP API (each labeler measured against outcomes, asked with the admin token). */
  FW_CONSOLE_TRAINER_URL: z.string().url().default('http://127.0.0.1:8084'),
  /** The registry's admin API, where the console's promote and rollback are sent. */
  FW_CONSOLE_REGISTRY_URL: z.string().url().default('http://127.0.0.1:8081'),
  /** The services whose readiness and progress the pipeline view shows (name=url, comma-separated). */
  FW_CONSOLE_SERVICES: z
    .string()
    .regex(/^\s*[\w-]+=https?:\/\/[^,\s]+(\s*,\s*[\w-]+=https?:\/\/[^,\s]+)*\s*$/, 'name=url,name=url,...')
    .default(
      'scorer=http://127.0.0.1:8080,joiner=http://127.0.0.1:8083,trainer=http://127.0.0.1:8084,' +
        'labeling=http://127.0.0.1:8082,rollout=http://127.0.0.1:8086,monitor=http://127.0.0.1:8087',
    ),
  /** How long a page waits for the monitor or labeling API before it shows them as unreachable. */
  FW_CONSOLE_UPSTREAM_TIMEOUT_MS: env.int(3000, 100, 60_000),
});
export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;

export function loadConsoleConfig(envVars: Env = process.env): ConsoleConfig {
  return loadConfig(consoleConfigSchema, envVars);
}
