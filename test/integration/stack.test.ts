// The local stack as tests, the demo and CI use it: real Kafka (KRaft) and real Redis.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { waitForKafka } from '../../services/common/kafka.js';
import { createRedis } from '../../services/common/redis.js';
import { TOPIC_SPECS, TOPICS } from '../../services/common/topics.js';
import { testRuntime } from '../helpers/kafka.js';

const STACK = join(import.meta.dirname, '..', '..', 'scripts', 'stack.sh');

describe('local stack', () => {
  const runtime = testRuntime();

  it('redis answers PING with the append-only file on', async () => {
    const redis = createRedis(runtime.config.REDIS_URL, runtime.logger);
    try {
      await redis.connect();
      assert.equal(await redis.ping(), 'PONG');
      assert.deepEqual(await redis.config('GET', 'appendonly'), ['appendonly', 'yes']);
    } finally {
      redis.disconnect();
    }
  });

  it('kafka has every topic with its partitions, and fw.models.updates is compacted', async () => {
    const admin = await waitForKafka(runtime.kafka, runtime.logger, 30000);
    try {
      const metadata = await admin.fetchTopicMetadata({ topics: TOPIC_SPECS.map((s) => s.name) });
      for (const spec of TOPIC_SPECS) {
        const topic = metadata.topics.find((t) => t.name === spec.name);
        assert.ok(topic, `${spec.name} exists`);
        assert.equal(
          topic.partitions.length,
          spec.partitions ?? runtime.config.FW_TOPIC_PARTITIONS,
          spec.name,
        );
      }
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: TOPICS.modelUpdates,
            configNames: ['cleanup.policy'],
          },
        ],
      });
      assert.equal(configs.resources[0]?.configEntries[0]?.configValue, 'compact');
    } finally {
      await admin.disconnect();
    }
  });

  describe('a second stack on other ports', () => {
    const state = mkdtempSync(join(tmpdir(), 'flywheel-stack-'));
    const env = {
      ...process.env,
      FLYWHEEL_STACK_DIR: state,
      FLYWHEEL_KAFKA_PORT: '29092',
      FLYWHEEL_KAFKA_CONTROLLER_PORT: '29093',
      FLYWHEEL_REDIS_PORT: '26379',
      FLYWHEEL_KAFKA_HEAP: '256m',
    };
    const stack = (action: string) =>
      execFileSync('bash', [STACK, action], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const pids = () =>
      [join(state, 'kafka', 'kafka.pid'), join(state, 'redis', 'redis.pid')].map((f) =>
        Number(readFileSync(f, 'utf8')),
      );
    const running = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };

    before(() => stack('up'));
    after(() => {
      try {
        stack('down');
      } finally {
        rmSync(state, { recursive: true, force: true });
      }
    });

    it('`up` twice in a row is harmless: the same processes keep running', () => {
      const first = pids();
      stack('up');
      assert.deepEqual(pids(), first);
      assert.ok(first.every(running));
      assert.match(stack('status'), /kafka\s+running[\s\S]*redis\s+running/);
    });

    it('`down` stops exactly the processes it started and leaves none behind', () => {
      const started = pids();
      stack('down');
      assert.deepEqual(started.map(running), [false, false]);
      const ours = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes(state) || line.includes('127.0.0.1:26379'));
      assert.deepEqual(ours, []);
      assert.throws(() => stack('status'), 'status exits non-zero when stopped');
    });
  });
});
