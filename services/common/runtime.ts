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
  const schemaRegistry = config.FW_SCHEMA_REGISTRY_URL
    ? new ConfluentSchemaRegistry(config.FW_SCHEMA_REGISTRY_URL)
    : embedded;
  logger.debug(
    { brokers: config.KAFKA_BROKERS, schemaRegistry: config.FW_SCHEMA_REGISTRY_URL ?? 'embedded' },
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
