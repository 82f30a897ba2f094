// `flywheel console`: the operator console as a process (FW_CONSOLE_PORT), for admins only.
import { TokenTable } from '../common/auth.js';
import { UsageError } from '../common/errors.js';
import type { Runtime } from '../common/runtime.js';
import { loadRegistryConfig } from '../registry/config.js';
import { ExperimentStore } from '../registry/experiments.js';
import { FileModelRegistry } from '../registry/store.js';
import { buildConsoleApp } from './app.js';
import { loadConsoleConfig } from './config.js';
import { parseServiceList } from './pipeline.js';

export async function runConsole(runtime: Runtime): Promise<number> {
  const config = loadConsoleConfig();
  const registryConfig = loadRegistryConfig();
  const adminToken = registryConfig.FW_ADMIN_TOKEN;
  if (!adminToken)
    throw new UsageError('the console needs FW_ADMIN_TOKEN (16+ characters): it is for admins only');
  const app = await buildConsoleApp({
    registry: new FileModelRegistry(registryConfig.FW_REGISTRY_DIR),
    experiments: new ExperimentStore(registryConfig.FW_REGISTRY_DIR),
    tokens: new TokenTable().add(adminToken, { id: 'admin', role: 'admin' }),
    adminToken,
    monitorUrl: config.FW_CONSOLE_MONITOR_URL,
    labelingUrl: config.FW_CONSOLE_LABELING_URL,
    trainerUrl: config.FW_CONSOLE_TRAINER_URL,
    registryUrl: config.FW_CONSOLE_REGISTRY_URL,
    services: parseServiceList(config.FW_CONSOLE_SERVICES),
    upstreamTimeoutMs: config.FW_CONSOLE_UPSTREAM_TIMEOUT_MS,
    metrics: runtime.metrics,
    logger: runtime.logger,
  });
  runtime.lifecycle.add('http', () => app.close());
  runtime.lifecycle.installSignalHandlers();
  await app.listen({ host: '0.0.0.0', port: config.FW_CONSOLE_PORT });
  runtime.logger.info(
    { host: '0.0.0.0', port: config.FW_CONSOLE_PORT },
    `console on every interface, port ${config.FW_CONSOLE_PORT}`,
  );
  return new Promise<number>(() => undefined);
}
