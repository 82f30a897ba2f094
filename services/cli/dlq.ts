// `flywheel dlq`: the newest dead letters, one line each, for an operator to see what broke.
import { readTopicToEnd } from '../common/read-topic.js';
import { createRuntime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { numberFlag, parseFlags } from './args.js';

export async function runDlq(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { count: { type: 'string' }, json: { type: 'boolean' } });
  const count = numberFlag(values.count, 'count', 20, 1);
  const runtime = createRuntime('dlq');
  const messages = await readTopicToEnd(runtime.kafka, TOPICS.deadLetters);
  const letters = await Promise.all(messages.map((m) => runtime.codecs.deadLetter.decode(m.value)));
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
  console.log(
    `\n${letters.length} dead letters: ${[...byCode].map(([code, n]) => `${code} ${n}`).join(', ') || 'none'}`,
  );
  return 0;
}
