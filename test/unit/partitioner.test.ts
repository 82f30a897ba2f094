import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { Partitioners, type PartitionMetadata } from 'kafkajs';
import { JavaCompatiblePartitioner, murmur2, partitionOf } from '../../services/common/partitioner.js';
import { Random } from '../../services/common/random.js';

// KafkaJS's own pieces, to hold ours to them (the package has no exports map).
const require = createRequire(import.meta.url);
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2.js') as (
  key: Buffer,
) => number;
const groupMessagesPerPartition = require('kafkajs/src/producer/groupMessagesPerPartition.js') as (args: {
  topic: string;
  partitionMetadata: PartitionMetadata[];
  messages: { key: string; value: string }[];
  partitioner: (args: { message: { key: string } }) => number;
}) => Record<string, { key: string; value: string }[]>;

const metadata = (count: number, leaderless: number[] = []): PartitionMetadata[] =>
  Array.from({ length: count }, (_, partitionId) => ({
    partitionErrorCode: 0,
    partitionId,
    leader: leaderless.includes(partitionId) ? -1 : 0,
    replicas: [0],
    isr: [0],
  }));

function randomKeys(count: number): (Buffer | string)[] {
  const random = new Random(7);
  const keys: (Buffer | string)[] = ['', 'a', 'ab', 'abc', 'user-42', 'ünïcödé-ключ-鍵', 'x'.repeat(1000)];
  for (let i = 0; i < count; i++) {
    const length = Math.floor(random.next() * 48);
    const bytes = Buffer.alloc(length);
    for (let j = 0; j < length; j++) bytes[j] = Math.floor(random.next() * 256);
    keys.push(i % 2 === 0 ? bytes : `u${Math.floor(random.next() * 1e9)}`);
  }
  return keys;
}

describe('Java-compatible partitioner', () => {
  it('hashes every key exactly as KafkaJS (and the Java client) does', () => {
    for (const key of randomKeys(5000)) {
      const bytes = typeof key === 'string' ? Buffer.from(key) : key;
      assert.equal(murmur2(bytes), kafkajsMurmur2(bytes), `key ${bytes.toString('hex')}`);
    }
  });

  it('picks the same partition as KafkaJS DefaultPartitioner for keyed messages', () => {
    const theirs = Partitioners.DefaultPartitioner();
    const ours = JavaCompatiblePartitioner();
    for (const count of [1, 3, 6, 7, 100]) {
      const partitionMetadata = metadata(count);
      for (const key of randomKeys(1000)) {
        const args = { topic: 't', partitionMetadata, message: { key, value: null } };
        const expected = theirs(args);
        assert.equal(ours(args), expected);
        assert.equal(partitionOf(key, count), expected);
      }
    }
  });

  it('keeps an explicit partition, and spreads keyless messages over partitions with a leader', () => {
    const partitioner = JavaCompatiblePartitioner();
    const partitionMetadata = metadata(4, [2]);
    assert.equal(
      partitioner({ topic: 't', partitionMetadata, message: { key: 'k', value: null, partition: 3 } }),
      3,
    );
    const seen = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const partition = partitioner({ topic: 't', partitionMetadata, message: { value: null } });
      seen.set(partition, (seen.get(partition) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), [0, 1, 3]);
    for (const count of seen.values()) assert.equal(count, 100);
  });
});

describe('KafkaJS grouping of a send by partition (patches/kafkajs+2.2.4.patch)', () => {
  it('groups in order, in linear time', () => {
    const messages = Array.from({ length: 60_000 }, (_, i) => ({ key: `k${i % 3}`, value: String(i) }));
    const started = performance.now();
    const groups = groupMessagesPerPartition({
      topic: 't',
      partitionMetadata: metadata(3),
      messages,
      partitioner: ({ message }) => Number(message.key.slice(1)),
    });
    const elapsedMs = performance.now() - started;
    assert.deepEqual(Object.keys(groups), ['0', '1', '2']);
    for (const [partition, group] of Object.entries(groups)) {
      assert.equal(group.length, 20_000);
      group.forEach((message, i) => assert.equal(message.value, String(i * 3 + Number(partition))));
    }
    // Unpatched, copying each partition's list per message takes tens of seconds here.
    assert.ok(elapsedMs < 2000, `grouping 60,000 messages took ${elapsedMs.toFixed(0)} ms`);
  });
});
