// `flywheel labels export`: every human label of fw.labels.human with the outcome its prediction
// met in fw.feedback.labeled (the newest revision), as NDJSON or CSV, to a file written whole or
// not at all (temporary file, fsync, rename) or to stdout; and each labeler's agreement with
// the outcomes on stderr. The rows are built by a pure function (exportRows) the tests call.
import { writeAtomically } from '../common/atomic-file.js';
import type { HumanLabel, LabeledExample } from '../common/contracts.js';
import { errorMessage } from '../common/errors.js';
import { Progress } from '../common/progress.js';
import { readTopicToEnd, scanTopic } from '../common/read-topic.js';
import type { Runtime } from '../common/runtime.js';
import { UsageError } from './args.js';

export type ExportRow = Pick<
  HumanLabel,
  'labelId' | 'taskId' | 'predictionId' | 'eventId' | 'userId' | 'itemId' | 'labelerId' | 'label'
> & {
  labelTime: string;
  note: string;
  /** Validity flags the labeler raised, joined by ";" (one CSV cell). */
  flags: string;
  /** The labeler's agreement with the task's other labelers, when several labeled it. */
  agreementWithPeers: number | null;
  /** What happened: 1 a purchase, 0 none within the window, null no outcome (yet). */
  outcome: number | null;
  outcomeSource: string | null;
  agreesWithOutcome: boolean | null;
};

export const EXPORT_COLUMNS: (keyof ExportRow)[] = [
  'labelId',
  'taskId',
  'predictionId',
  'eventId',
  'userId',
  'itemId',
  'labelerId',
  'label',
  'labelTime',
  'note',
  'flags',
  'agreementWithPeers',
  'outcome',
  'outcomeSource',
  'agreesWithOutcome',
];

/** The labels (a label published twice counts once), oldest first, each with its outcome. */
export function exportRows(
  labels: readonly HumanLabel[],
  outcomes: ReadonlyMap<string, LabeledExample>,
): ExportRow[] {
  const unique = new Map(labels.map((l) => [l.labelId, l]));
  return [...unique.values()]
    .sort((a, b) => a.labelTime - b.labelTime || a.labelId.localeCompare(b.labelId))
    .map((l) => {
      const outcome = outcomes.get(l.predictionId) ?? null;
      return {
        labelId: l.labelId,
        taskId: l.taskId,
        predictionId: l.predictionId,
        eventId: l.eventId,
        userId: l.userId,
        itemId: l.itemId,
        labelerId: l.labelerId,
        label: l.label,
        labelTime: new Date(l.labelTime).toISOString(),
        note: l.note ?? '',
        flags: l.flags.join(';'),
        agreementWithPeers: l.agreement,
        outcome: outcome ? outcome.label : null,
        outcomeSource: outcome ? outcome.labelSource : null,
        agreesWithOutcome: outcome ? outcome.label === l.label : null,
      };
    });
}

/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
function csvField(value: string | number | boolean | null): string {
  const text = value === null ? '' : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function formatRows(rows: readonly ExportRow[], format: 'ndjson' | 'csv'): string {
  if (format === 'ndjson') return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
  const lines = [
    EXPORT_COLUMNS.join(','),
    ...rows.map((r) => EXPORT_COLUMNS.map((c) => csvField(r[c])).join(',')),
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/** Each labeler's labels, and the share that agree with an outcome where one exists. */
export function agreementByLabeler(rows: readonly ExportRow[]) {
  const by = new Map<string, { labels: number; judged: number; agreed: number }>();
  for (const r of rows) {
    const s = by.get(r.labelerId) ?? { labels: 0, judged: 0, agreed: 0 };
    s.labels++;
    if (r.agreesWithOutcome !== null) {
      s.judged++;
      if (r.agreesWithOutcome) s.agreed++;
    }
    by.set(r.labelerId, s);
  }
  return [...by].map(([labelerId, s]) => ({
    labelerId,
    ...s,
    agreement: s.judged > 0 ? s.agreed / s.judged : null,
  }));
}

export async function exportLabels(
  runtime: Runtime,
  options: { labelsTopic: string; feedbackTopic: string; out: string | null; format: 'ndjson' | 'csv' },
): Promise<number> {
  const labels: HumanLabel[] = [];
  let unreadable = 0;
  for (const message of await readTopicToEnd(runtime.kafka, options.labelsTopic, { timeoutMs: 600_000 })) {
    try {
      labels.push(await runtime.codecs.humanLabel.decode(message.value));
    } catch {
      unreadable++;
    }
  }
  const wanted = new Set(labels.map((l) => l.predictionId));
  const outcomes = new Map<string, LabeledExample>();
  const progress = new Progress({ label: 'outcomes read', total: null, logger: runtime.logger }).start();
  try {
    // The outcomes of the labeled predictions only; a correction (a higher revision) wins.
    await scanTopic(runtime.kafka, options.feedbackTopic, { timeoutMs: 1_800_000 }, async (message) => {
      progress.add(1);
      try {
        const e = await runtime.codecs.labeledExample.decode(message.value);
        if (!wanted.has(e.predictionId) || (e.labelSource !== 'outcome' && e.labelSource !== 'timeout'))
          return;
        const seen = outcomes.get(e.predictionId);
        if (!seen || e.revision >= seen.revision) outcomes.set(e.predictionId, e);
      } catch (error) {
        runtime.logger.debug({ err: errorMessage(error) }, 'a feedback record does not decode: skipped');
      }
    });
  } finally {
    progress.stop();
  }
  const rows = exportRows(labels, outcomes);
  const text = formatRows(rows, options.format);
  if (options.out) await writeAtomically(options.out, text);
  else process.stdout.write(text);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  say(
    `${rows.length} human labels, ${rows.filter((r) => r.outcome !== null).length} with an outcome` +
      (unreadable > 0 ? `; ${unreadable} records of ${options.labelsTopic} do not decode` : '') +
      (options.out ? `; written to ${options.out}` : ''),
  );
  for (const l of agreementByLabeler(rows))
    say(
      `  ${l.labelerId}: ${l.labels} labels, ${l.judged} with an outcome, agreement ${l.agreement === null ? '–' : l.agreement.toFixed(3)}`,
    );
  return 0;
}

export function exportFormat(format: string | undefined, out: string | null): 'ndjson' | 'csv' {
  const chosen = format ?? (out?.endsWith('.csv') ? 'csv' : 'ndjson');
  if (chosen !== 'ndjson' && chosen !== 'csv') throw new UsageError(`--format ${chosen}: ndjson or csv`);
  return chosen;
}
