// What every Flywheel process builds first: validated config, its logger, Kafka, schema
// registry and codecs, metrics, and the shutdown sequence.
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { ConfluentSchemaRegistry, EmbeddedSchemaRegistry, type SchemaRegistry } from './avro/registry.js';
import { loadCommonConfig, type CommonConfig, type Env } from './config.js';
import { createCodecs, type Codecs } from './contracts.js';
import { createKafka } from './kafka.js';
import { Lifecycle } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsRegistry } from './metrics.js';

export interface Runtime {
  service: string;
  config: CommonConfig;
  logger: Logger;
  kafka: Kafka;
  schemaRegistry: SchemaRegistry;
  codecs: Codecs;
  metrics: Registry;
  lifecycle: Lifecycle;
}

export function createRuntime(service: string, env: Env = process.env): Runtime {
  const config = loadCommonConfig(env);
  const logger = createLogger(service, config.LOG_LEVEL);
  const embedded = new EmbeddedSchemaRegistry();
  const schemaRegistry = createSchemaRegistry(schemaRegistrySettings(config), embedded);
  logger.debug(
    {
      brokers: config.KAFKA_BROKERS,
      schemaRegistry:
        schemaRegistry instanceof ConfluentSchemaRegistry ? schemaRegistry.shownUrl : 'embedded',
    },
    'runtime configured',
  );
  return {
    service,
    config,
    logger,
    kafka: createKafka({
      brokers: config.KAFKA_BROKERS,
      clientId: `${config.KAFKA_CLIENT_ID}-${service}`,
      logger,
    }),
    schemaRegistry,
    codecs: createCodecs(schemaRegistry, embedded),
    metrics: createMetricsRegistry(service),
    lifecycle: new Lifecycle(logger),
  };
}

/** The registry settings of a config, as plain data (the scorer's worker thread gets them too). */
export interface SchemaRegistrySettings {
  url: string | undefined;
  auth: string | undefined;
  autoRegister: boolean;
  timeoutMs: number;
}

export function schemaRegistrySettings(config: CommonConfig): SchemaRegistrySettings {
  return {
    url: config.FW_SCHEMA_REGISTRY_URL,
    auth: config.FW_SCHEMA_REGISTRY_AUTH,
    autoRegister: config.FW_SCHEMA_REGISTRY_AUTO_REGISTER,
    timeoutMs: config.FW_SCHEMA_REGISTRY_TIMEOUT_MS,
  };
}

/** The Confluent registry when a URL is set, else the embedded one. */
export function createSchemaRegistry(
  settings: SchemaRegistrySettings,
  embedded: EmbeddedSchemaRegistry = new EmbeddedSchemaRegistry(),
): SchemaRegistry {
  if (!settings.url) return embedded;
  return new ConfluentSchemaRegistry({
    url: settings.url,
    auth: settings.auth,
    autoRegister: settings.autoRegister,
    timeoutMs: settings.timeoutMs,
  });
}
