import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { versionTable } from '../../services/cli/version-table.js';
import type { HoldoutMetrics, VersionMetadata } from '../../services/registry/store.js';
import { routingOf } from '../../services/common/contracts.js';

function version(
  n: number,
  metrics: unknown,
  status: VersionMetadata['status'] = 'rejected',
): VersionMetadata {
  return {
    version: `v${String(n).padStart(6, '0')}`,
    parent: n > 1 ? `v${String(n - 1).padStart(6, '0')}` : null,
    kind: 'ftrl',
    featureSpecHash: 'f',
    seed: 0,
    training: { source: 'synthetic' },
    metrics: metrics as HoldoutMetrics | null,
    sha256: 'x',
    files: {},
    createdAt: '2026-12-01T00:00:00.000Z',
    createdBy: 'trainer',
    status,
    statusReason: status === 'rejected' ? 'does not beat the baseline' : null,
  } as unknown as VersionMetadata;
}

describe('models ls table', () => {
  it('prints a row for every version, whatever its metrics hold', () => {
    const full = {
      examples: 500,
      logLoss: 0.2,
      auc: 0.7,
      calibrationError: 0.01,
      lift: 2,
      baselineLogLoss: 0.21,
    };
    // As stored: JSON turns a NaN (AUC of a one-label holdout) into null.
    const oneLabel: unknown = JSON.parse(JSON.stringify({ ...full, auc: Number.NaN, lift: Number.NaN }));
    const versions = [
      version(1, full, 'registered'),
      version(2, oneLabel),
      version(3, null),
      version(4, { examples: 10, logLoss: null, auc: null, calibrationError: null }),
      version(5, { examples: 10, logLoss: 0.3, auc: 0.5, calibrationError: 0.1 }), // older: no lift, no baseline
    ];
    const lines = versionTable(versions, routingOf({ champion: 'v000001' }));
    assert.equal(lines.length, 1 + versions.length);
    assert.match(lines[1] as string, /champion .*logloss 0\.2000 \(baseline 0\.2100\) {2}AUC 0\.7000/);
    assert.match(lines[2] as string, /v000002 .*rejected .*AUC - {2}calibration 0\.0100 {2}n=500$/);
    assert.match(lines[3] as string, /no holdout metrics/);
    assert.match(lines[4] as string, /logloss - {2}AUC - {2}calibration - {2}n=10/);
    assert.match(lines[5] as string, /logloss 0\.3000 {2}AUC 0\.5000 {2}calibration 0\.1000 {2}n=10$/);
  });

  it('says how to make a first version when there is none', () => {
    const lines = versionTable(
      [],
      routingOf({ champion: null, challenger: null, challengerWeight: 0, shadow: null }),
    );
    assert.match(lines[1] as string, /no versions yet/);
  });
});
