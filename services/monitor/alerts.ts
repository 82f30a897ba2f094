// When the monitor raises an alert and when it asks the trainer for a new version. Pure: what
// each version and arm looks like now, the state of the alerts so far and the clock in; the new
// alerts, the ones that cleared and a retrain request (or none) out.
//
// An alert opens when its condition starts and is said once; it is said again only if it still
// holds a cooldown later, and it clears when the condition ends. A retrain is asked for when a
// drift or performance alert opens on the champion, at most once per cooldown: one drift, seen
// at every look until the new version serves, is one retrain, not a storm.
import type { DriftReport } from './drift.js';
import type { WindowQuality } from './quality.js';

export interface Thresholds {
  maxLogLoss: number | null;
  minAuc: number | null;
  maxEce: number | null;
  /** Fewer labels (or, for the estimate, predictions) than this: no performance alert. */
  minLabels: number;
}

export interface AlertPolicy {
  thresholds: Thresholds;
  cooldownMs: number;
  retrainOn: readonly ('drift' | 'performance' | 'estimate')[];
}

export type AlertKind = 'drift' | 'performance' | 'estimate';

export interface Observation {
  version: string;
  arm: string;
  quality: WindowQuality;
  /** Drift of the version's live window against its reference (null: it has none). */
  drift: DriftReport | null;
}

export interface Alert {
  /** What the alert is about: kind, version, arm and the failing group or metric. */
  id: string;
  kind: AlertKind;
  version: string;
  arm: string;
  subject: string;
  at: number;
  message: string;
  value: number | null;
  threshold: number | null;
}

export interface AlertState {
  /** Open alerts by id: since when, and when last said. */
  open: Record<string, { since: number; saidAt: number }>;
  lastRetrainAt: number | null;
}

export interface Judgement {
  alerts: Alert[];
  cleared: string[];
  retrain: { reason: string; alert: Alert } | null;
}

type Finding = Omit<Alert, 'id' | 'at'>;

type Check = [string, number | null, number | null, (v: number, limit: number) => boolean];

/** The observation's metric checks, or none when the window has too few records to judge. */
function metricChecks(o: Observation, t: Thresholds, kind: 'performance' | 'estimate'): Check[] {
  const q = o.quality;
  const measured = kind === 'performance' ? q : { ...q.estimate, ece: null };
  const enough = kind === 'performance' ? q.labels >= t.minLabels : q.predictions >= t.minLabels;
  if (!enough) return [];
  return [
    ['logLoss', measured.logLoss, t.maxLogLoss, (v, limit) => v > limit],
    ['auc', measured.auc, t.minAuc, (v, limit) => v < limit],
    ['ece', measured.ece, t.maxEce, (v, limit) => v > limit],
  ];
}

/**
 * Ids of the alerts whose subject this look judged and found within bounds. Only those clear: a
 * look that could not judge (no reference read yet after a restart, a window too thin) keeps an
 * open alert open, so it is not said again as new when the window fills.
 */
function heldIds(observations: readonly Observation[], t: Thresholds): Set<string> {
  const ids = new Set<string>();
  for (const o of observations) {
    for (const g of o.drift?.groups ?? [])
      if (g.tested && !g.drifted) ids.add(`drift:${o.version}:${o.arm}:${g.group}`);
    for (const kind of ['performance', 'estimate'] as const)
      for (const [subject, value, threshold, fails] of metricChecks(o, t, kind))
        if (value !== null && (threshold === null || !fails(value, threshold)))
          ids.add(`${kind}:${o.version}:${o.arm}:${subject}`);
  }
  return ids;
}

function metricFindings(o: Observation, t: Thresholds, kind: 'performance' | 'estimate'): Finding[] {
  const checks = metricChecks(o, t, kind);
  const what = kind === 'performance' ? 'live' : 'estimated (before labels)';
  return checks.flatMap(([subject, value, threshold, fails]) =>
    value !== null && threshold !== null && fails(value, threshold)
      ? [
          {
            kind,
            version: o.version,
            arm: o.arm,
            subject,
            value,
            threshold,
            message: `${what} ${subject} ${value.toFixed(4)} beyond ${threshold}`,
          },
        ]
      : [],
  );
}

function driftFindings(o: Observation): Finding[] {
  return (o.drift?.groups ?? [])
    .filter((g) => g.drifted)
    .map((g) => ({
      kind: 'drift' as const,
      version: o.version,
      arm: o.arm,
      subject: g.group,
      value: g.distance,
      threshold: null,
      message: `${g.group} drifted: Jensen-Shannon ${g.distance.toFixed(3)}, PSI ${g.psi.toFixed(3)}, p ${g.pValue.toExponential(2)} (level ${o.drift?.level.toExponential(2)})`,
    }));
}

export function judge(
  observations: readonly Observation[],
  state: AlertState,
  now: number,
  policy: AlertPolicy,
): Judgement {
  const findings = observations.flatMap((o) => [
    ...driftFindings(o),
    ...metricFindings(o, policy.thresholds, 'performance'),
    ...metricFindings(o, policy.thresholds, 'estimate'),
  ]);
  const alerts: Alert[] = [];
  const holding = new Set<string>();
  for (const finding of findings) {
    const id = `${finding.kind}:${finding.version}:${finding.arm}:${finding.subject}`;
    holding.add(id);
    const open = state.open[id];
    if (open && now - open.saidAt < policy.cooldownMs) continue;
    state.open[id] = { since: open?.since ?? now, saidAt: now };
    alerts.push({ id, at: now, ...finding });
  }
  const fine = heldIds(observations, policy.thresholds);
  // An arm no longer observed at all (its experiment ended, its version retired) clears too.
  const observed = new Set(observations.map((o) => `${o.version}:${o.arm}`));
  const cleared = Object.keys(state.open).filter(
    (id) => !holding.has(id) && (fine.has(id) || !observed.has(id.split(':').slice(1, 3).join(':'))),
  );
  for (const id of cleared) delete state.open[id];
  const cause = alerts.find((a) => a.arm === 'champion' && policy.retrainOn.includes(a.kind));
  let retrain: Judgement['retrain'] = null;
  if (cause && (state.lastRetrainAt === null || now - state.lastRetrainAt >= policy.cooldownMs)) {
    state.lastRetrainAt = now;
    retrain = { reason: `monitor: ${cause.message} (${cause.version})`, alert: cause };
  }
  return { alerts, cleared, retrain };
}
