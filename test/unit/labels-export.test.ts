// `flywheel labels export`: each human label with its prediction's newest outcome, once, in
// NDJSON or CSV that an outside CSV reader (Python's csv module) reads back field for field.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import type { HumanLabel, LabeledExample } from '../../services/common/contracts.js';
import {
  EXPORT_COLUMNS,
  agreementByLabeler,
  exportFormat,
  exportRows,
  formatRows,
} from '../../services/cli/labels-export.js';
import { sampleRecords, servedLabel } from '../helpers/records.js';

const T = Date.UTC(2026, 11, 1);
const human = (
  labelId: string,
  predictionId: string,
  labelerId: string,
  label: 0 | 1,
  note: string | null = null,
): HumanLabel => ({
  ...sampleRecords(T).humanLabel,
  labelId,
  taskId: predictionId,
  predictionId,
  labelerId,
  label,
  labelTime: T + Number(labelId.replace(/\D/g, '')) * 1000,
  note,
});
const outcome = (predictionId: string, label: 0 | 1, revision = 0): LabeledExample =>
  servedLabel({ predictionId, label, labelSource: label ? 'outcome' : 'timeout', revision });

describe('labels export', () => {
  const labels = [
    human('l1', 'p1', 'ann', 1, 'bought, "clearly", later'),
    { ...human('l2', 'p1', 'bob', 0), flags: ['bot', 'broken'] },
    human('l3', 'p2', 'ann', 0, 'line\nbreak'),
    human('l4', 'p3', 'bob', 1),
    human('l1', 'p1', 'ann', 1, 'bought, "clearly", later'), // published twice
  ];
  // p1 was a timeout, then corrected to a purchase; p3 has no outcome yet.
  const outcomes = new Map([
    ['p1', outcome('p1', 1, 1)],
    ['p2', outcome('p2', 0)],
  ]);

  it('gives each label once, oldest first, with the outcome and whether they agree', () => {
    const rows = exportRows(labels, outcomes);
    assert.deepEqual(
      rows.map((r) => [r.labelId, r.outcome, r.agreesWithOutcome]),
      [
        ['l1', 1, true],
        ['l2', 1, false],
        ['l3', 0, true],
        ['l4', null, null],
      ],
    );
    assert.deepEqual(agreementByLabeler(rows), [
      { labelerId: 'ann', labels: 2, judged: 2, agreed: 2, agreement: 1 },
      { labelerId: 'bob', labels: 2, judged: 1, agreed: 0, agreement: 0 },
    ]);
    assert.deepEqual(
      formatRows(rows, 'ndjson')
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { labelId: string }).labelId),
      ['l1', 'l2', 'l3', 'l4'],
    );
  });

  it("writes CSV that Python's csv module reads back field for field", () => {
    const rows = exportRows(labels, outcomes);
    const csv = formatRows(rows, 'csv');
    const read = JSON.parse(
      execFileSync(
        '/usr/bin/python3',
        ['-c', 'import csv,json,sys; print(json.dumps(list(csv.reader(sys.stdin))))'],
        {
          input: csv,
        },
      ).toString(),
    ) as string[][];
    assert.deepEqual(read[0], EXPORT_COLUMNS);
    assert.equal(read.length, 5);
    const note = EXPORT_COLUMNS.indexOf('note');
    assert.equal(read[1]![note], 'bought, "clearly", later');
    assert.equal(read[3]![note], 'line\nbreak');
    assert.equal(read[2]![EXPORT_COLUMNS.indexOf('flags')], 'bot;broken');
    assert.equal(read[4]![EXPORT_COLUMNS.indexOf('outcome')], '', 'no outcome is an empty field');
  });

  it('takes the format from the flag or the file name', () => {
    assert.equal(exportFormat(undefined, 'labels.csv'), 'csv');
    assert.equal(exportFormat(undefined, null), 'ndjson');
    assert.equal(exportFormat('csv', null), 'csv');
    assert.throws(() => exportFormat('xlsx', null), /ndjson or csv/);
  });
});
