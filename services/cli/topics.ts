// `flywheel topics ensure|list`
import { waitForKafka } from '../common/kafka.js';
import { ensureTopics } from '../common/provision.js';
import { createRuntime } from '../common/runtime.js';
import { TOPIC_SPECS } from '../common/topics.js';

export async function runTopics(args: string[]): Promise<number> {
  const [action = 'list'] = args;
  const runtime = createRuntime('topics');
  const admin = await waitForKafka(runtime.kafka, runtime.logger, 30000);
  try {
    if (action === 'ensure') {
      await ensureTopics(admin, runtime.logger, {
        partitions: runtime.config.FW_TOPIC_PARTITIONS,
        replicationFactor: runtime.config.FW_TOPIC_REPLICATION,
      });
      return 0;
    }
    if (action === 'list') {
      const metadata = await admin
        .fetchTopicMetadata({ topics: TOPIC_SPECS.map((s) => s.name) })
        .catch(() => null);
      console.log(`${'topic'.padEnd(22)} ${'parts'.padStart(5)} ${'messages'.padStart(10)}  contents`);
      for (const spec of TOPIC_SPECS) {
        const found = metadata?.topics.find((t) => t.name === spec.name);
        const partitions = found ? String(found.partitions.length) : 'missing';
        // For a compacted topic this is the offset span, not the number of live records.
        const messages = found
          ? (await admin.fetchTopicOffsets(spec.name)).reduce(
              (sum, p) => sum + Number(p.high) - Number(p.low),
              0,
            )
          : 0;
        console.log(
          `${spec.name.padEnd(22)} ${partitions.padStart(5)} ${String(messages).padStart(10)}  ${spec.description}`,
        );
      }
      return 0;
    }
    console.error(`flywheel topics: unknown action '${action}' (ensure|list)`);
    return 2;
  } finally {
    await admin.disconnect();
  }
}
