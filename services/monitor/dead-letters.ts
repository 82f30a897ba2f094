// What went to the dead-letter topic, for the console: totals by source topic, error code and
// service, counts per hour (kept as long as the long history), and the newest letters with a
// preview of their bytes. Pure; the monitor reads fw.dlq into it.
import type { DeadLetter } from '../common/contracts.js';
import { HISTORY_STEP_MS } from './history.js';

export const NEWEST_KEPT = 50;
const PREVIEW_BYTES = 240;

export interface DeadLetterTotal {
  sourceTopic: string;
  errorCode: string;
  service: string;
  n: number;
  lastAt: number;
}

export interface DeadLetterSummary {
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  errorCode: string;
  reason: string;
  service: string;
  failedAt: number;
  key: string | null;
  /** The first bytes of the rejected value: text where it is printable, hex otherwise. */
  preview: string | null;
  size: number;
}

export interface DeadLetterState {
  /** "topic|code|service" → total. */
  totals: Record<string, DeadLetterTotal>;
  /** Hour start → error code → letters. */
  hourly: Record<string, Record<string, number>>;
  newest: DeadLetterSummary[];
}

export function emptyDeadLetters(): DeadLetterState {
  return { totals: {}, hourly: {}, newest: [] };
}

function preview(value: Buffer | null): string | null {
  if (!value) return null;
  const head = value.subarray(0, PREVIEW_BYTES);
  const text = head.toString('utf8');
  // Printable text (with tabs and newlines) is shown as text; Avro and other bytes as hex.
  return /^[\t\n\r\x20-\x7e\u00a0-\uffff]*$/.test(text) && !text.includes('\ufffd')
    ? text
    : head.toString('hex');
}

export function takeDeadLetter(state: DeadLetterState, letter: DeadLetter, keepMs: number): void {
  const key = `${letter.sourceTopic}|${letter.errorCode}|${letter.service}`;
  const total = (state.totals[key] ??= {
    sourceTopic: letter.sourceTopic,
    errorCode: letter.errorCode,
    service: letter.service,
    n: 0,
    lastAt: 0,
  });
  total.n++;
  total.lastAt = Math.max(total.lastAt, letter.failedAt);
  const hour = Math.floor(letter.failedAt / HISTORY_STEP_MS) * HISTORY_STEP_MS;
  if (!state.hourly[hour]) {
    state.hourly[hour] = {};
    const horizon = hour - keepMs;
    for (const start of Object.keys(state.hourly)) if (Number(start) < horizon) delete state.hourly[start];
  }
  const counts = state.hourly[hour];
  counts[letter.errorCode] = (counts[letter.errorCode] ?? 0) + 1;
  state.newest.push({
    sourceTopic: letter.sourceTopic,
    sourcePartition: letter.sourcePartition,
    sourceOffset: letter.sourceOffset,
    errorCode: letter.errorCode,
    reason: letter.reason.slice(0, 1000),
    service: letter.service,
    failedAt: letter.failedAt,
    key: letter.key ? letter.key.toString('utf8').slice(0, 200) : null,
    preview: preview(letter.value),
    size: letter.value?.length ?? 0,
  });
  state.newest.sort((a, b) => a.failedAt - b.failedAt);
  if (state.newest.length > NEWEST_KEPT) state.newest.splice(0, state.newest.length - NEWEST_KEPT);
}

/** Totals (largest first), letters per step by code (at most `maxPoints` steps), newest first. */
export function deadLetterReport(state: DeadLetterState, maxPoints = 300) {
  const hours = Object.keys(state.hourly).map(Number);
  const codes = [...new Set(Object.values(state.totals).map((t) => t.errorCode))].sort();
  let stepMs = HISTORY_STEP_MS;
  const points: { at: number; counts: Record<string, number> }[] = [];
  if (hours.length > 0) {
    const span = Math.max(...hours) - Math.min(...hours) + HISTORY_STEP_MS;
    stepMs = Math.ceil(span / maxPoints / HISTORY_STEP_MS) * HISTORY_STEP_MS;
    const steps = new Map<number, Record<string, number>>();
    for (const hour of hours.sort((a, b) => a - b)) {
      const at = Math.floor(hour / stepMs) * stepMs;
      const into = steps.get(at) ?? {};
      for (const [code, n] of Object.entries(state.hourly[hour]!)) into[code] = (into[code] ?? 0) + n;
      steps.set(at, into);
    }
    for (const [at, counts] of steps) points.push({ at, counts });
  }
  return {
    totals: Object.values(state.totals).sort((a, b) => b.n - a.n),
    codes,
    stepMs,
    points,
    newest: state.newest.slice().reverse(),
  };
}
