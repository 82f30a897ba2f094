// Configuration comes from environment variables only, validated with zod at start-up. A bad
// value stops the process with one line per variable: its name, what is wrong, what was given.
import { z } from 'zod';
import { ConfigError } from './errors.js';

export type Env = Record<string, string | undefined>;

/** Parse `env` with a zod object whose keys are the variable names. */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    // An empty variable means "not set", as in most shells' `FOO= cmd`.
    picked[key] = value === '' ? undefined : value;
  }
  const result = schema.safeParse(picked);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.length > 0 ? String(issue.path[0]) : '(config)';
    const given = picked[name];
    const shown =
      given === undefined ? 'not set' : isSecretName(name) ? 'given (hidden)' : JSON.stringify(given);
    return `  ${name}: ${issue.message} (${shown})`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

function isSecretName(name: string): boolean {
  return /TOKEN|SECRET|PASSWORD|KEY|AUTH/i.test(name);
}

// Reusable field types, so every service reads the same variable the same way.
export const env = {
  brokers: () =>
    z
      .string()
      .default('127.0.0.1:19092')
      .transform((value) => value.split(',').map((b) => b.trim()))
      .pipe(z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port[,host:port...]')).min(1)),
  url: (fallback: string) => z.url().default(fallback),
  optionalUrl: () => z.url().optional(),
  int: (fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
    z.coerce.number().int().min(min).max(max).default(fallback),
  number: (fallback: number, min = -Infinity, max = Infinity) =>
    z.coerce.number().min(min).max(max).default(fallback),
  bool: (fallback: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .default(fallback ? 'true' : 'false')
      .transform((value) => value === 'true' || value === '1' || value === 'yes'),
  /** A comma-separated list of names (blank: none). */
  list: () =>
    z
      .string()
      .default('')
      .transform((value) =>
        value
          .split(',')
          .map((part) => part.trim())
          .filter((part) => part.length > 0),
      ),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
};

/** Settings every service shares: where Kafka and Redis are, topic layout, limits. */
export const commonConfigSchema = z.object({
  KAFKA_BROKERS: env.brokers(),
  KAFKA_CLIENT_ID: z.string().min(1).default('flywheel'),
  REDIS_URL: env.url('redis://127.0.0.1:16379'),
  LOG_LEVEL: env.logLevel(),
  FW_TOPIC_PARTITIONS: env.int(6, 1, 1000),
  FW_TOPIC_REPLICATION: env.int(1, 1, 10),
  FW_SCHEMA_REGISTRY_URL: env.optionalUrl(),
  /** `user:password` (basic) or `Bearer <token>`; userinfo in the URL works too. Never logged. */
  FW_SCHEMA_REGISTRY_AUTH: z.string().min(1).optional(),
  /** Register writer schemas the registry lacks; false for a registry where clients may not. */
  FW_SCHEMA_REGISTRY_AUTO_REGISTER: env.bool(true),
  FW_SCHEMA_REGISTRY_TIMEOUT_MS: env.int(5000, 100, 120_000),
  FW_MAX_MESSAGE_BYTES: env.int(64 * 1024, 256, 16 * 1024 * 1024),
  FW_MAX_CLOCK_SKEW_MS: env.int(5 * 60 * 1000, 0),
  /** Longest wait between two tries of a batch that failed through no fault of its records. */
  FW_RETRY_MAX_BACKOFF_MS: env.int(30_000, 10, 3_600_000),
});
export type CommonConfig = z.infer<typeof commonConfigSchema>;

export function loadCommonConfig(envVars: Env = process.env): CommonConfig {
  return loadConfig(commonConfigSchema, envVars);
}
