// `flywheel models ls`: one row per version. Metrics come from JSON written by any version of
// the trainer: a metric that could not be computed (AUC of a one-label holdout is NaN, stored
// as null) or was not recorded prints as '-', never breaks the table.
import { challengersOf } from '../common/routing.js';
import type { Routing, VersionMetadata } from '../registry/store.js';

/** A number with `digits` decimals, or '-' when it is missing or not finite. */
function fixed(value: number | null | undefined, digits: number): string {
  return typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '-';
}

export function formatMetrics(v: VersionMetadata): string {
  const m = v.metrics;
  if (!m) return 'no holdout metrics';
  const base = m.baselineLogLoss == null ? '' : ` (baseline ${fixed(m.baselineLogLoss, 4)})`;
  const constant = m.constantLogLoss == null ? '' : ` (constant ${fixed(m.constantLogLoss, 4)})`;
  const lift = m.lift == null ? '' : `  lift@10% ${fixed(m.lift, 2)}`;
  return `logloss ${fixed(m.logLoss, 4)}${base}${constant}  AUC ${fixed(m.auc, 4)}  calibration ${fixed(m.calibrationError, 4)}${lift}  n=${m.examples ?? '-'}`;
}

function aliasesOf(routing: Routing, version: string): string {
  return [
    routing.champion === version ? 'champion' : null,
    ...challengersOf(routing)
      .filter((c) => c.version === version)
      .map((c) => `challenger ${Math.round(c.weight * 100)}%`),
    routing.shadow === version ? 'shadow' : null,
  ]
    .filter(Boolean)
    .join(',');
}

/** The header and one line per version, as `models ls` prints them. */
export function versionTable(versions: readonly VersionMetadata[], routing: Routing): string[] {
  const lines = [
    `${'version'.padEnd(9)} ${'kind'.padEnd(9)} ${'parent'.padEnd(9)} ${'status'.padEnd(10)} ${'aliases'.padEnd(22)} metrics`,
  ];
  for (const v of versions)
    lines.push(
      `${v.version.padEnd(9)} ${v.kind.padEnd(9)} ${(v.parent ?? '-').padEnd(9)} ${v.status.padEnd(10)} ${aliasesOf(routing, v.version).padEnd(22)} ${formatMetrics(v)}`,
    );
  if (versions.length === 0) lines.push('(no versions yet: `flywheel models train` makes one)');
  return lines;
}
