import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadCommonConfig } from '../../services/common/config.js';
import { ConfigError } from '../../services/common/errors.js';

describe('configuration', () => {
  it('applies defaults for the local stack', () => {
    const config = loadCommonConfig({});
    assert.deepEqual(config.KAFKA_BROKERS, ['127.0.0.1:19092']);
    assert.equal(config.REDIS_URL, 'redis://127.0.0.1:16379');
    assert.equal(config.FW_TOPIC_PARTITIONS, 6);
  });

  it('parses lists and numbers from strings', () => {
    const config = loadCommonConfig({ KAFKA_BROKERS: 'a:1, b:2', FW_TOPIC_PARTITIONS: '12' });
    assert.deepEqual(config.KAFKA_BROKERS, ['a:1', 'b:2']);
    assert.equal(config.FW_TOPIC_PARTITIONS, 12);
  });

  it('names every bad variable with what was given', () => {
    assert.throws(
      () =>
        loadCommonConfig({ KAFKA_BROKERS: 'nohost', FW_TOPIC_PARTITIONS: 'many', REDIS_URL: 'not a url' }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /KAFKA_BROKERS.*host:port.*"nohost"/);
        assert.match(error.message, /FW_TOPIC_PARTITIONS.*"many"/);
        assert.match(error.message, /REDIS_URL.*"not a url"/);
        return true;
      },
    );
  });

  it('treats an empty variable as unset', () => {
    assert.equal(loadCommonConfig({ FW_TOPIC_PARTITIONS: '' }).FW_TOPIC_PARTITIONS, 6);
  });
});

describe('labeling configuration', () => {
  it('reads labeler tokens as id:token pairs and refuses malformed ones by name', async () => {
    const { loadLabelingConfig } = await import('../../services/labeling/config.js');
    assert.deepEqual(
      loadLabelingConfig({ FW_LABELER_TOKENS: 'ann:0123456789abcdef, bob:fedcba9876543210' })
        .FW_LABELER_TOKENS,
      [
        { id: 'ann', token: '0123456789abcdef' },
        { id: 'bob', token: 'fedcba9876543210' },
      ],
    );
    for (const bad of ['ann:short', 'no-colon-0123456789abcdef', ':0123456789abcdef']) {
      assert.throws(() => loadLabelingConfig({ FW_LABELER_TOKENS: bad }), /FW_LABELER_TOKENS/, bad);
    }
  });
});
