// Labeling settings: the de-duplication scope of review tasks, and queue options from config.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadLabelingConfig, queueOptionsFrom, reviewDedupeKeys } from '../../services/labeling/config.js';

const click = { sessionId: 's1', itemId: 'i9', userId: 'u3' };

describe('labeling config', () => {
  it('keys review tasks by session and item (the default), any of session, item and user, or not at all', () => {
    const keys = (value?: string) =>
      reviewDedupeKeys(
        loadLabelingConfig(value === undefined ? {} : { FW_LABELING_DEDUPE: value }).FW_LABELING_DEDUPE,
        click,
      );
    assert.deepEqual(keys(), ['session:s1', 'item:i9']);
    assert.deepEqual(keys('user'), ['user:u3']);
    assert.deepEqual(keys('item, user,item'), ['item:i9', 'user:u3']);
    assert.deepEqual(keys('none'), []);
    assert.throws(() => keys('none,item'), /FW_LABELING_DEDUPE/);
  });

  it('passes the window, budget and rare-segment boost to the queue, and refuses bad scopes', () => {
    const config = loadLabelingConfig({
      FW_LABELING_DEDUPE: 'item',
      FW_LABELING_DEDUPE_SECONDS: '600',
      FW_LABELING_TASKS_PER_HOUR: '50',
      FW_LABELING_RARE_BOOST: '2',
    });
    assert.deepEqual(config.FW_LABELING_DEDUPE, ['item']);
    const options = queueOptionsFrom(config);
    assert.equal(options.dedupeTtlSeconds, 600);
    assert.equal(options.tasksPerHour, 50);
    assert.equal(options.rareBoost, 2);
    assert.throws(() => loadLabelingConfig({ FW_LABELING_DEDUPE: 'page' }), /FW_LABELING_DEDUPE/);
  });
});
