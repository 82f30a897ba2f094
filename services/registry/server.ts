// `flywheel registry`: the admin HTTP API as a process, with graceful shutdown.
import { TokenTable } from '../common/auth.js';
import { ConfigError } from '../common/errors.js';
import { createProducer } from '../common/kafka.js';
import { createRuntime } from '../common/runtime.js';
import { initBackend } from '../model/backend.js';
import { FeatureSpec } from '../model/features.js';
import { RegistryAdmin } from './admin.js';
import { loadRegistryConfig } from './config.js';
import { buildRegistryApp } from './http.js';
import { FileModelRegistry } from './store.js';

export async function runRegistryServer(): Promise<number> {
  const runtime = createRuntime('registry');
  const config = loadRegistryConfig();
  if (!config.FW_ADMIN_TOKEN)
    throw new ConfigError('invalid configuration:\n  FW_ADMIN_TOKEN: required by the admin API (not set)');
  const { logger, lifecycle } = runtime;
  await initBackend(logger);
  const producer = createProducer(runtime.kafka);
  await producer.connect();
  lifecycle.add('producer', () => producer.disconnect());
  const admin = new RegistryAdmin(
    new FileModelRegistry(config.FW_REGISTRY_DIR),
    new FeatureSpec({ hashBits: config.FW_FEATURE_HASH_BITS }),
    { producer, codecs: runtime.codecs },
    logger,
  );
  const app = buildRegistryApp({
    admin,
    tokens: new TokenTable().add(config.FW_ADMIN_TOKEN, { id: 'admin', role: 'admin' }),
    logger,
    maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
  });
  lifecycle.add('http', () => app.close());
  lifecycle.installSignalHandlers();
  await app.listen({ host: '0.0.0.0', port: config.FW_ADMIN_PORT });
  logger.info(
    { port: config.FW_ADMIN_PORT, registry: config.FW_REGISTRY_DIR },
    'registry admin API listening',
  );
  return new Promise<number>(() => undefined); // runs until a signal stops it
}
