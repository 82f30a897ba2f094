// Uploaded labeled examples: parsing (NDJSON, JSON array), checks that refuse the whole upload
// with every problem named, click vectorization, and content-derived ids.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureSpec } from '../../services/model/features.js';
import { InvalidLabelsError } from '../../services/common/errors.js';
import {
  MAX_UPLOAD_EXAMPLES,
  parseLabelsText,
  toUploadedExamples,
} from '../../services/registry/label-upload.js';

const spec = new FeatureSpec();
const now = Date.UTC(2026, 5, 1);
const limits = { now, maxClockSkewMs: 60_000 };
const click = {
  sessionId: 's1',
  category: 'books',
  price: 12,
  device: 'mobile',
  country: 'DE',
};
const viaClick = { userId: 'u1', itemId: 'i1', label: 1, clickTime: now - 1000, click };
const viaFeatures = {
  userId: 'u2',
  itemId: 'i2',
  label: 0,
  weight: 2,
  clickTime: now - 2000,
  features: { indices: [1, 7], values: [1, 1] },
  featureSpecHash: spec.hash,
};

function refused(inputs: unknown[]): InvalidLabelsError {
  try {
    toUploadedExamples(inputs, spec, limits);
  } catch (error) {
    assert.ok(error instanceof InvalidLabelsError, String(error));
    assert.equal(error.code, 'FW_INVALID_LABELS');
    return error;
  }
  assert.fail('the upload was accepted');
}

describe('labeled-data upload', () => {
  it('reads NDJSON (blank lines ignored) and JSON arrays alike', () => {
    const lines = `${JSON.stringify(viaClick)}\n\n${JSON.stringify(viaFeatures)}\n`;
    assert.deepEqual(parseLabelsText(lines), [viaClick, viaFeatures]);
    assert.deepEqual(parseLabelsText(JSON.stringify([viaClick, viaFeatures])), [viaClick, viaFeatures]);
    assert.throws(() => parseLabelsText(`${JSON.stringify(viaClick)}\n{oops`), /line 2 is not valid JSON/);
  });

  it('builds examples with source upload: vectorizes clicks, keeps given features and weights', () => {
    const [a, b] = toUploadedExamples([viaClick, viaFeatures], spec, limits);
    assert.ok(a && b);
    assert.equal(a.labelSource, 'upload');
    assert.equal(a.segment, 'DE/mobile');
    assert.deepEqual(
      a.features,
      spec.vectorize(
        {
          ...click,
          eventId: 'upload',
          userId: 'u1',
          itemId: 'i1',
          referrer: 'unknown',
          pageType: 'product',
          eventTime: viaClick.clickTime,
        },
        { clicksBefore: 0, sessionStart: viaClick.clickTime, categoriesSeen: 0 },
      ),
    );
    assert.equal(a.featureSpecHash, spec.hash);
    assert.deepEqual(b.features, viaFeatures.features);
    assert.equal(b.weight, 2);
    assert.equal(a.weight, 1);
    assert.equal(a.modelVersion, null);
    assert.equal(a.labelTime, now);
  });

  it('derives ids from the content: the same upload twice gives the same ids', () => {
    const first = toUploadedExamples([viaClick, viaFeatures], spec, limits);
    const again = toUploadedExamples([viaClick, viaFeatures], spec, { ...limits, now: now + 5000 });
    assert.deepEqual(
      first.map((e) => e.exampleId),
      again.map((e) => e.exampleId),
    );
    assert.notEqual(first[0]?.exampleId, first[1]?.exampleId);
    const [own] = toUploadedExamples([{ ...viaClick, exampleId: 'ext-1' }], spec, limits);
    assert.equal(own?.exampleId, 'ext-1');
    assert.equal(own?.predictionId, 'ext-1');
  });

  it('refuses the whole upload and names each bad example and field', () => {
    const error = refused([
      viaClick,
      { ...viaClick, label: 2 },
      { ...viaClick, userId: undefined },
      { ...viaClick, features: viaFeatures.features, featureSpecHash: spec.hash },
      { ...viaFeatures, featureSpecHash: 'another-spec' },
      { ...viaFeatures, features: { indices: [spec.dimension], values: [1] } },
      { ...viaClick, clickTime: 1_700 }, // seconds, not milliseconds
      { ...viaClick, clickTime: now + 3600_000 },
      { ...viaClick, weight: -1 },
      { ...viaClick, click: { ...click, price: 1e12 } },
      { ...viaClick, surprise: true },
    ]);
    assert.deepEqual(
      error.problems.map((p) => p.index),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.match(error.message, /^10 of 11 examples are invalid, nothing was published/);
    assert.match(error.message, /example 2: label/);
    assert.match(error.message, /example 3: userId/);
    assert.match(error.message, /either features .* or click/);
    assert.match(error.message, /featureSpecHash must be/);
    assert.match(error.message, /feature indices must be below/);
    assert.match(error.message, /before 2000-01-01/);
    assert.match(error.message, /in the future/);
    assert.match(error.message, /surprise/);
  });

  it('refuses empty and oversized uploads', () => {
    assert.match(refused([]).message, /no examples/);
    assert.match(refused(Array(MAX_UPLOAD_EXAMPLES + 1).fill(viaClick)).message, /at most 100000/);
  });
});
