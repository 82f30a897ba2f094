// KafkaJS's admin gives up on a stale-leader answer to ListOffsets; a KRaft broker gives one for
// a topic created a moment ago. Our patch (patches/kafkajs+2.2.4.patch) retries it after a
// metadata refresh. Tested on KafkaJS's own admin with a cluster that answers as such a broker.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

const require = createRequire(import.meta.url);
const createAdmin = require('kafkajs/src/admin/index.js') as (args: object) => {
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
  fetchTopicOffsetsByTimestamp(topic: string, at: number): Promise<{ partition: number; offset: string }[]>;
};
const { KafkaJSProtocolError } = require('kafkajs/src/errors.js') as {
  KafkaJSProtocolError: new (e: { type: string; code: number; retriable: boolean; message: string }) => Error;
};
const { createLogger, LEVELS } = require('kafkajs/src/loggers/index.js') as {
  createLogger: (args: object) => unknown;
  LEVELS: { NOTHING: number };
};

/** A cluster whose first `staleAnswers` ListOffsets answer with `type`, then with offsets. */
function clusterAnswering(type: string, code: number, staleAnswers: number) {
  const calls = { listOffsets: 0, refreshes: 0 };
  const cluster = {
    addTargetTopic: () => Promise.resolve(),
    refreshMetadataIfNecessary: () => Promise.resolve(),
    refreshMetadata: () => {
      calls.refreshes++;
      return Promise.resolve();
    },
    findTopicPartitionMetadata: () => [{ partitionId: 0 }, { partitionId: 1 }],
    fetchTopicsOffset: (topics: { topic: string; partitions: { partition: number }[] }[]) => {
      calls.listOffsets++;
      if (calls.listOffsets <= staleAnswers)
        return Promise.reject(
          new KafkaJSProtocolError({ type, code, retriable: true, message: `stale: ${type}` }),
        );
      return Promise.resolve(
        topics.map(({ topic, partitions }) => ({
          topic,
          partitions: partitions.map(({ partition }) => ({ partition, offset: String(10 + partition) })),
        })),
      );
    },
  };
  const admin = createAdmin({
    logger: createLogger({ level: LEVELS.NOTHING, logCreator: () => () => undefined }),
    retry: { initialRetryTime: 1, retries: 5 },
    cluster,
  });
  return { admin, calls };
}

describe('admin offsets (patched KafkaJS)', () => {
  for (const [type, code] of [
    ['NOT_LEADER_FOR_PARTITION', 6],
    ['LEADER_NOT_AVAILABLE', 5],
    ['UNKNOWN_TOPIC_OR_PARTITION', 3],
  ] as const) {
    it(`fetchTopicOffsets retries ${type} after refreshing metadata`, async () => {
      const { admin, calls } = clusterAnswering(type, code, 2);
      const offsets = await admin.fetchTopicOffsets('t');
      assert.deepEqual(
        offsets.map((o) => [o.partition, o.high]),
        [
          [0, '10'],
          [1, '11'],
        ],
      );
      assert.equal(calls.refreshes, 2);
    });

    it(`fetchTopicOffsetsByTimestamp retries ${type} after refreshing metadata`, async () => {
      const { admin, calls } = clusterAnswering(type, code, 2);
      const offsets = await admin.fetchTopicOffsetsByTimestamp('t', Date.now());
      assert.deepEqual(
        offsets.map((o) => o.partition),
        [0, 1],
      );
      assert.equal(calls.refreshes, 2);
    });
  }

  it('still gives up on an error that is not about where a partition lives', async () => {
    const { admin, calls } = clusterAnswering('TOPIC_AUTHORIZATION_FAILED', 29, 1);
    await assert.rejects(admin.fetchTopicOffsets('t'), /TOPIC_AUTHORIZATION_FAILED/);
    assert.equal(calls.listOffsets, 1);
  });
});
