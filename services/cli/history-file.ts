// A shop's history as JSON lines of ClickEvent and PurchaseEvent, read and checked line by line.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { ClickEvent, PurchaseEvent } from '../common/contracts.js';
import { findProblems } from '../common/contracts.js';
import type { Runtime } from '../common/runtime.js';

export interface HistoryLine {
  file: string;
  line: number;
  reason: string;
}

export interface History {
  clicks: ClickEvent[];
  purchases: PurchaseEvent[];
  invalid: HistoryLine[];
}

/** Reads JSON lines of ClickEvent and PurchaseEvent (a purchase has `quantity`); bad lines are listed. */
export async function readHistory(
  files: readonly string[],
  runtime: Pick<Runtime, 'codecs'>,
  limits: { now: number; maxClockSkewMs: number },
): Promise<History> {
  const history: History = { clicks: [], purchases: [], invalid: [] };
  for (const file of files) {
    let line = 0;
    for await (const text of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      line++;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        history.invalid.push({ file, line, reason: 'not JSON' });
        continue;
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        history.invalid.push({ file, line, reason: 'not a JSON object' });
        continue;
      }
      const kind = 'quantity' in value ? 'purchase' : 'click';
      const codec = kind === 'purchase' ? runtime.codecs.purchase : runtime.codecs.click;
      const event = value as ClickEvent & PurchaseEvent;
      // The Avro type says what is missing or mistyped; the checks, what is absurd.
      const typeErrors: string[] = [];
      if (
        !codec.readerType.isValid(event, { errorHook: (path) => typeErrors.push(path.join('.') || kind) })
      ) {
        history.invalid.push({
          file,
          line,
          reason: `not a ${kind}: bad or missing ${typeErrors.join(', ')}`,
        });
        continue;
      }
      const problems = findProblems(kind, event, limits);
      if (problems.length > 0) {
        history.invalid.push({ file, line, reason: `${kind}: ${problems.join('; ')}` });
        continue;
      }
      if (kind === 'purchase') history.purchases.push(event);
      else history.clicks.push(event);
    }
  }
  return history;
}
