// `flywheel dlq`: the newest dead letters, one line each, for an operator to see what broke.
import { readTopicToEnd } from '../common/read-topic.js';
import { createRuntime } from '../common/runtime.js';
import { errorMessage } from '../common/errors.js';
import { TOPICS } from '../common/topics.js';
import { numberFlag, parseFlags } from './args.js';

export async function runDlq(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { count: { type: 'string' }, json: { type: 'boolean' } });
  const count = numberFlag(values.count, 'count', 20, 1);
  const runtime = createRuntime('dlq');
  const messages = await readTopicToEnd(runtime.kafka, TOPICS.deadLetters);
  // One record that does not decode must not hide the others: it is listed as undecodable.
  const decoded = await Promise.all(
    messages.map(async (m) => {
      try {
        return { letter: await runtime.codecs.deadLetter.decode(m.value) };
      } catch (error) {
        return { undecodable: { partition: m.partition, offset: m.offset, reason: errorMessage(error) } };
      }
    }),
  );
  const letters = decoded.flatMap((d) => (d.letter ? [d.letter] : []));
  const undecodable = decoded.flatMap((d) => (d.undecodable ? [d.undecodable] : []));
  const newest = letters.sort((a, b) => a.failedAt - b.failedAt).slice(-count);
  const byCode = new Map<string, number>();
  for (const letter of letters) byCode.set(letter.errorCode, (byCode.get(letter.errorCode) ?? 0) + 1);
  for (const l of newest) {
    const where = `${l.sourceTopic}/${l.sourcePartition}@${l.sourceOffset}`;
    if (values.json) {
      console.log(
        JSON.stringify({
          ...l,
          key: l.key?.toString('utf8') ?? null,
          value: l.value?.toString('base64') ?? null,
          headers: undefined,
        }),
      );
    } else {
      console.log(
        `${new Date(l.failedAt).toISOString()}  ${where.padEnd(28)}  ${l.errorCode.padEnd(22)}  ${l.service}: ${l.reason}`,
      );
    }
  }
  for (const u of undecodable) {
    if (values.json) console.log(JSON.stringify({ undecodable: true, topic: TOPICS.deadLetters, ...u }));
    else
      console.log(
        `(undecodable)  ${`${TOPICS.deadLetters}/${u.partition}@${u.offset}`.padEnd(28)}  ${u.reason}`,
      );
  }
  console.log(
    `\n${letters.length} dead letters: ${[...byCode].map(([code, n]) => `${code} ${n}`).join(', ') || 'none'}` +
      (undecodable.length > 0
        ? `; ${undecodable.length} records of ${TOPICS.deadLetters} do not decode`
        : ''),
  );
  return 0;
}
