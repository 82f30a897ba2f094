// Registry settings: where versions live, and the token the admin API requires.
import { join } from 'node:path';
import { z } from 'zod';
import { env, loadConfig, type Env } from '../common/config.js';
import { PROJECT_ROOT } from '../common/paths.js';

export const registryConfigSchema = z.object({
  FW_REGISTRY_DIR: z.string().min(1).default(join(PROJECT_ROOT, '.registry')),
  FW_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  FW_ADMIN_PORT: env.int(8081, 1, 65535),
  FW_FEATURE_HASH_BITS: env.int(16, 8, 24),
});
export type RegistryConfig = z.infer<typeof registryConfigSchema>;

export function loadRegistryConfig(envVars: Env = process.env): RegistryConfig {
  return loadConfig(registryConfigSchema, envVars);
}
