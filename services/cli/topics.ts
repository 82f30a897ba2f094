// `flywheel topics ensure|list`
import { waitForKafka } from '../common/kafka.js';
import { ensureTopics } from '../common/provision.js';
import { countRecords } from '../common/read-topic.js';
import { createRuntime } from '../common/runtime.js';
import { TOPIC_SPECS } from '../common/topics.js';

export async function runTopics(args: string[]): Promise<number> {
  const [action = 'list', ...rest] = args;
  const countExactly = rest.includes('--records');
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
      // Offsets include transaction markers (and compacted gaps): --records reads and counts.
      const column = countExactly ? 'records' : 'offsets';
      console.log(`${'topic'.padEnd(27)} ${'parts'.padStart(5)} ${column.padStart(10)}  contents`);
      for (const spec of TOPIC_SPECS) {
        const found = metadata?.topics.find((t) => t.name === spec.name);
        const partitions = found ? String(found.partitions.length) : 'missing';
        const span = found
          ? (await admin.fetchTopicOffsets(spec.name)).reduce(
              (sum, p) => sum + Number(p.high) - Number(p.low),
              0,
            )
          : 0;
        const shown = found && countExactly && span > 0 ? await countRecords(runtime.kafka, spec.name) : span;
        console.log(
          `${spec.name.padEnd(27)} ${partitions.padStart(5)} ${String(shown).padStart(10)}  ${spec.description}`,
        );
      }
      if (!countExactly)
        console.log(
          '\n(offsets: the span of each topic, transaction markers included; --records counts records)',
        );
      return 0;
    }
    console.error(`flywheel topics: unknown action '${action}' (ensure|list [--records])`);
    return 2;
  } finally {
    await admin.disconnect();
  }
}
