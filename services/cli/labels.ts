// `flywheel labels import FILE`: externally labeled examples (NDJSON, or a JSON array) to the
// feedback topic with label source `upload`; checked whole first, published with progress.
// `flywheel labels export`: the human labels with their outcomes, out again (labels-export.ts).
import { readFile } from 'node:fs/promises';
import { createProducer } from '../common/kafka.js';
import { Progress } from '../common/progress.js';
import { createRuntime } from '../common/runtime.js';
import { TOPICS } from '../common/topics.js';
import { FeatureSpec } from '../model/features.js';
import { loadRegistryConfig } from '../registry/config.js';
import { parseLabelsText, publishUploadedExamples, toUploadedExamples } from '../registry/label-upload.js';
import { UsageError, parseFlags } from './args.js';
import { exportFormat, exportLabels } from './labels-export.js';

const USAGE =
  'usage: flywheel labels import FILE [--topic T] | flywheel labels export [--out FILE] [--format ndjson|csv]';

export async function runLabels(args: string[]): Promise<number> {
  const { positionals, values } = parseFlags(
    args,
    { topic: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' } },
    true,
  );
  const [sub, file] = positionals;
  if (sub === 'export' && !file) {
    const out = values.out ?? null;
    return exportLabels(createRuntime('labels'), {
      labelsTopic: values.topic ?? TOPICS.humanLabels,
      feedbackTopic: TOPICS.feedback,
      out,
      format: exportFormat(values.format, out),
    });
  }
  if (sub !== 'import' || !file) throw new UsageError(USAGE);
  const runtime = createRuntime('labels');
  const spec = new FeatureSpec({ hashBits: loadRegistryConfig().FW_FEATURE_HASH_BITS });
  const examples = toUploadedExamples(parseLabelsText(await readFile(file, 'utf8')), spec, {
    now: Date.now(),
    maxClockSkewMs: runtime.config.FW_MAX_CLOCK_SKEW_MS,
  });
  const topic = values.topic ?? TOPICS.feedback;
  const producer = createProducer(runtime.kafka);
  await producer.connect();
  const progress = new Progress({ label: 'labels', total: examples.length, logger: runtime.logger }).start();
  try {
    let reported = 0;
    await publishUploadedExamples(producer, runtime.codecs, topic, examples, (sent) => {
      progress.add(sent - reported);
      reported = sent;
    });
  } finally {
    progress.stop();
    await producer.disconnect();
  }
  console.log(`published ${examples.length} labeled examples to ${topic} (label source upload)`);
  return 0;
}
