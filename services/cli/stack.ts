// `flywheel stack`: wraps scripts/stack.sh (processes) and, after `up`, waits until Kafka can
// coordinate groups and transactions and creates the topics.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ensureTopics } from '../common/provision.js';
import { createProducer, waitForKafka } from '../common/kafka.js';
import { createRuntime } from '../common/runtime.js';
import { SCRIPTS_DIR } from '../common/paths.js';

const SCRIPT = join(SCRIPTS_DIR, 'stack.sh');

export async function runStack(args: string[]): Promise<number> {
  const [action = 'status'] = args;
  const result = spawnSync('bash', [SCRIPT, action], { stdio: 'inherit' });
  if (result.status !== 0 || action !== 'up') return result.status ?? 1;
  await prepareKafka();
  return 0;
}

/** Readiness beyond an open port: group coordinator, transaction coordinator, topics. */
export async function prepareKafka(): Promise<void> {
  const runtime = createRuntime('stack');
  const admin = await waitForKafka(runtime.kafka, runtime.logger);
  try {
    await ensureTopics(admin, runtime.logger, {
      partitions: runtime.config.FW_TOPIC_PARTITIONS,
      replicationFactor: runtime.config.FW_TOPIC_REPLICATION,
    });
    // The first transactional producer creates __transaction_state; do it now, not in a test.
    const producer = createProducer(runtime.kafka, {
      transactionalId: 'flywheel.readiness',
      maxInFlightRequests: 1,
    });
    await producer.connect();
    await producer.disconnect();
  } finally {
    await admin.disconnect();
  }
  runtime.logger.info('kafka ready: groups, transactions and topics');
}
