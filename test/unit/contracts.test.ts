import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findProblems, validate } from '../../services/common/contracts.js';
import { ValidationError } from '../../services/common/errors.js';
import { sampleRecords } from '../helpers/records.js';

const now = Date.UTC(2026, 10, 26, 12);
const limits = { now, maxClockSkewMs: 5 * 60 * 1000 };

describe('record validation', () => {
  it('accepts the sample record of every kind', () => {
    const samples = sampleRecords(now);
    for (const [kind, record] of Object.entries(samples)) {
      assert.deepEqual(findProblems(kind as keyof typeof samples, record as never, limits), [], kind);
    }
  });

  it('names each problem of a bad click', () => {
    const click = {
      ...sampleRecords(now).click,
      eventId: '',
      userId: '  ',
      price: -3,
      eventTime: now + 3_600_000,
    };
    const problems = findProblems('click', click, limits);
    assert.deepEqual(problems, [
      'eventId is missing',
      'userId is missing',
      'price -3 is outside [0, 1000000]',
      `eventTime ${new Date(now + 3_600_000).toISOString()} is more than 300000 ms in the future`,
    ]);
  });

  it('allows clock skew up to the limit and rejects seconds-for-milliseconds timestamps', () => {
    const click = sampleRecords(now).click;
    assert.deepEqual(findProblems('click', { ...click, eventTime: now + 299_000 }, limits), []);
    assert.match(
      findProblems('click', { ...click, eventTime: Math.floor(now / 1000) }, limits)[0] ?? '',
      /before 2000-01-01/,
    );
  });

  it('rejects absurd values: NaN price, zero quantity, score outside [0, 1], label 2, unequal feature arrays', () => {
    const s = sampleRecords(now);
    assert.equal(findProblems('click', { ...s.click, price: Number.NaN }, limits).length, 1);
    assert.equal(findProblems('purchase', { ...s.purchase, quantity: 0 }, limits).length, 1);
    assert.equal(findProblems('prediction', { ...s.prediction, score: 1.5 }, limits).length, 1);
    assert.equal(findProblems('labeledExample', { ...s.labeledExample, label: 2 }, limits).length, 1);
    assert.equal(
      findProblems('prediction', { ...s.prediction, features: { indices: [1, 2], values: [1] } }, limits)
        .length,
      1,
    );
    assert.equal(findProblems('click', { ...s.click, itemId: 'x'.repeat(300) }, limits).length, 1);
  });

  it('validate throws a ValidationError listing every problem', () => {
    const click = { ...sampleRecords(now).click, sessionId: '', price: -1 };
    assert.throws(
      () => validate('click', click, limits),
      (error: unknown) =>
        error instanceof ValidationError && error.code === 'FW_INVALID_RECORD' && error.problems.length === 2,
    );
  });
});
