// An admin client whose end offsets are high watermarks: every record written and acknowledged,
// committed or not. KafkaJS's own admin lists offsets as read_committed, which answers the last
// stable offset: the first record of the oldest transaction still open on the partition. Records
// of transactions that committed after that one opened lie beyond it, so "read up to the end"
// does not mean "read everything written before": a stage's committed progress can cover records
// a reader of that end has not seen (the joiner's completeness check, progress.ts, needs the high
// watermark). KafkaJS takes the isolation level only for consumers; an admin gets one here through
// the client's internal cluster factory, checked at creation so an upgrade that moves it fails
// loudly instead of silently answering the other offset.
import { createRequire } from 'node:module';
import type { Admin, Kafka } from 'kafkajs';
import { FlywheelError } from './errors.js';

const require = createRequire(import.meta.url);
const READ_UNCOMMITTED = 0;

type ClusterFactory = (options: Record<string, unknown>) => unknown;

function privateMember<T>(kafka: Kafka, description: string): T | undefined {
  const symbol = Object.getOwnPropertySymbols(kafka).find((s) => s.description === description);
  return symbol === undefined ? undefined : (kafka as unknown as Record<symbol, T>)[symbol];
}

export function highWatermarkAdmin(kafka: Kafka): Admin {
  const createCluster = privateMember<ClusterFactory>(kafka, 'private:Kafka:createCluster');
  if (typeof createCluster !== 'function')
    throw new FlywheelError(
      'FW_KAFKA_CLIENT',
      'this kafkajs version does not expose its cluster factory: high watermarks cannot be read (see services/common/high-watermarks.ts)',
    );
  const createAdmin = require('kafkajs/src/admin/index.js') as (options: Record<string, unknown>) => Admin;
  const Emitter = require('kafkajs/src/instrumentation/emitter.js') as new () => unknown;
  const instrumentationEmitter = new Emitter();
  const cluster = createCluster.call(kafka, {
    allowAutoTopicCreation: false,
    instrumentationEmitter,
    isolationLevel: READ_UNCOMMITTED,
  });
  return createAdmin({
    logger: kafka.logger(),
    retry: privateMember<object>(kafka, 'private:Kafka:clusterRetry') ?? {},
    instrumentationEmitter,
    cluster,
  });
}
