// Externally labeled examples (an operator's batch, another team's annotations) into the feedback
// topic with label source `upload`. One example is either features already built with our
// feature spec, or the click itself, which is vectorized here. An upload is checked whole before
// anything is published; example ids are derived from the content, so uploading the same file
// twice gives the same ids and a consumer can drop the repeats.
import { createHash } from 'node:crypto';
import type { Producer } from 'kafkajs';
import { z } from 'zod';
import type { Codecs, LabeledExample } from '../common/contracts.js';
import { findProblems } from '../common/contracts.js';
import { InvalidLabelsError } from '../common/errors.js';
import { sendInChunks } from '../common/kafka.js';
import { segmentOf, type FeatureSpec } from '../model/features.js';

export const MAX_UPLOAD_EXAMPLES = 100_000;
const MAX_REPORTED_PROBLEMS = 10;

const id = z.string().trim().min(1).max(256);
const clickSchema = z
  .object({
    sessionId: id,
    category: id,
    price: z.number().min(0).max(1_000_000),
    device: id,
    country: id,
    referrer: id.default('unknown'),
    pageType: id.default('product'),
    clicksBefore: z.number().int().min(0).max(100_000).default(0),
    sessionStart: z.number().int().optional(),
    categoriesSeen: z.number().int().min(0).max(100_000).default(0),
  })
  .strict();

export const uploadedExampleSchema = z
  .object({
    exampleId: id.optional(),
    predictionId: id.optional(),
    eventId: id.optional(),
    userId: id,
    itemId: id,
    label: z.union([z.literal(0), z.literal(1)]),
    weight: z.number().gt(0).max(1000).default(1),
    clickTime: z.number().int(),
    category: id.optional(),
    segment: id.optional(),
    features: z
      .object({ indices: z.array(z.number().int().min(0)).max(10_000), values: z.array(z.number().finite()) })
      .strict()
      .optional(),
    featureSpecHash: z.string().optional(),
    click: clickSchema.optional(),
  })
  .strict()
  .refine((e) => (e.features === undefined) !== (e.click === undefined), {
    message: 'give either features (with featureSpecHash) or click, not both and not neither',
  });
export type UploadedExample = z.input<typeof uploadedExampleSchema>;

/** The examples of an NDJSON text (one JSON object per non-empty line) or of a JSON array. */
export function parseLabelsText(text: string): unknown[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed)) return parsed as unknown[];
    } catch (error) {
      throw new InvalidLabelsError(`the body is not valid JSON: ${(error as Error).message}`, []);
    }
  }
  const examples: unknown[] = [];
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    try {
      examples.push(JSON.parse(line));
    } catch {
      throw new InvalidLabelsError(`line ${i + 1} is not valid JSON`, [{ index: i, problems: ['not JSON'] }]);
    }
  }
  return examples;
}

function exampleIdOf(input: unknown): string {
  return `upload:${createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 32)}`;
}

/** Checks every example and builds its LabeledExample; throws listing the problems if any. */
export function toUploadedExamples(
  inputs: unknown[],
  spec: FeatureSpec,
  options: { now: number; maxClockSkewMs: number },
): LabeledExample[] {
  if (inputs.length === 0) throw new InvalidLabelsError('the upload holds no examples', []);
  if (inputs.length > MAX_UPLOAD_EXAMPLES)
    throw new InvalidLabelsError(
      `at most ${MAX_UPLOAD_EXAMPLES} examples per upload (got ${inputs.length})`,
      [],
    );
  const problems: { index: number; problems: string[] }[] = [];
  const examples: LabeledExample[] = [];
  for (const [index, input] of inputs.entries()) {
    const parsed = uploadedExampleSchema.safeParse(input);
    if (!parsed.success) {
      problems.push({
        index,
        problems: parsed.error.issues.map((i) => `${i.path.join('.') || 'example'}: ${i.message}`),
      });
      continue;
    }
    const { example, own } = exampleOf(parsed.data, input, spec, options.now);
    own.push(...findProblems('labeledExample', example, options));
    if (own.length > 0) problems.push({ index, problems: own });
    else examples.push(example);
  }
  if (problems.length > 0) {
    const shown = problems
      .slice(0, MAX_REPORTED_PROBLEMS)
      .map((p) => `example ${p.index + 1}: ${p.problems.join('; ')}`)
      .join(' | ');
    throw new InvalidLabelsError(
      `${problems.length} of ${inputs.length} examples are invalid, nothing was published: ${shown}`,
      problems,
    );
  }
  return examples;
}

/** The example an upload describes, with the problems found before the contract check. */
function exampleOf(
  e: z.output<typeof uploadedExampleSchema>,
  input: unknown,
  spec: FeatureSpec,
  now: number,
): { example: LabeledExample; own: string[] } {
  const own: string[] = [];
  let features = e.features;
  let category = e.category ?? e.click?.category ?? 'unknown';
  let segment = e.segment ?? 'unknown';
  if (features) {
    if (e.featureSpecHash !== spec.hash)
      own.push(`featureSpecHash must be ${spec.hash} (the features were built with another spec)`);
    if (features.indices.some((i) => i >= spec.dimension))
      own.push(`feature indices must be below ${spec.dimension}`);
  } else if (e.click) {
    const c = e.click;
    features = vectorizeUploaded(e, c, spec);
    category = e.category ?? c.category;
    segment = e.segment ?? segmentOf(c.country, c.device);
  }
  const exampleId = e.exampleId ?? exampleIdOf(input);
  const example: LabeledExample = {
    exampleId,
    predictionId: e.predictionId ?? exampleId,
    eventId: e.eventId ?? exampleId,
    userId: e.userId,
    itemId: e.itemId,
    category,
    segment,
    label: e.label,
    labelSource: 'upload',
    weight: e.weight,
    features: features as LabeledExample['features'],
    featureSpecHash: spec.hash,
    modelVersion: null,
    arm: null,
    score: null,
    clickTime: e.clickTime,
    purchaseEventId: null,
    purchaseTime: null,
    labelTime: now,
    delayMs: null,
    revision: 0,
    propensity: 1,
    split: null,
  };
  return { example, own };
}

/** The features of an uploaded click, as the scorer would have built them. */
function vectorizeUploaded(
  e: z.output<typeof uploadedExampleSchema>,
  c: NonNullable<z.output<typeof uploadedExampleSchema>['click']>,
  spec: FeatureSpec,
): LabeledExample['features'] {
  return spec.vectorize(
    {
      eventId: e.eventId ?? 'upload',
      userId: e.userId,
      itemId: e.itemId,
      sessionId: c.sessionId,
      category: c.category,
      price: c.price,
      device: c.device,
      country: c.country,
      referrer: c.referrer,
      pageType: c.pageType,
      eventTime: e.clickTime,
    },
    {
      clicksBefore: c.clicksBefore,
      sessionStart: c.sessionStart ?? e.clickTime,
      categoriesSeen: c.categoriesSeen,
    },
  );
}

/** Publishes checked examples, keyed by user (co-partitioned with the events). */
export async function publishUploadedExamples(
  producer: Producer,
  codecs: Codecs,
  topic: string,
  examples: LabeledExample[],
  onProgress?: (sent: number) => void,
): Promise<void> {
  const schemaId = await codecs.labeledExample.schemaId();
  const chunk = 5000;
  for (let i = 0; i < examples.length; i += chunk) {
    const part = examples.slice(i, i + chunk);
    await sendInChunks(
      producer,
      topic,
      part.map((e) => ({ key: e.userId, value: codecs.labeledExample.encodeWith(schemaId, e) })),
    );
    onProgress?.(i + part.length);
  }
}
