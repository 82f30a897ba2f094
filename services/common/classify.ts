// Decoding and validation of one message, as every consumer does it: a value, or the code and
// reason it goes to the dead-letter topic. A failure that is not the record's (the schema
// registry away) is thrown, so the batch is tried again.
import type { KafkaMessage } from 'kafkajs';
import type { Codecs, RecordKind, RecordTypes, ValidationLimits } from './contracts.js';
import { findProblems } from './contracts.js';
import { OversizedMessageError, errorCode, errorMessage, isRecordFault } from './errors.js';

export type Classified<V> = { ok: true; value: V } | { ok: false; code: string; reason: string };

/** Decode and validate one message: a value, or the reason it goes to the dead-letter topic. */
export async function classifyMessage<K extends RecordKind>(
  message: Pick<KafkaMessage, 'value'>,
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits & { maxMessageBytes: number },
): Promise<Classified<RecordTypes[K]>> {
  return classifyKnown(message, kind, codecs, limits) ?? classifyUnseen(message, kind, codecs, limits);
}

/**
 * classifyMessage of each message, in order. A promise per message cost more than the decoding:
 * only the first message of an unseen schema waits (for the registry).
 */
export async function classifyAll<K extends RecordKind>(
  messages: readonly Pick<KafkaMessage, 'value'>[],
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits & { maxMessageBytes: number },
): Promise<Classified<RecordTypes[K]>[]> {
  const results = new Array<Classified<RecordTypes[K]>>(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as Pick<KafkaMessage, 'value'>;
    results[i] =
      classifyKnown(message, kind, codecs, limits) ?? (await classifyUnseen(message, kind, codecs, limits));
  }
  return results;
}

/** The rest of classifyMessage when classifyKnown could not decode: fetch the writer schema. */
async function classifyUnseen<K extends RecordKind>(
  message: Pick<KafkaMessage, 'value'>,
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits,
): Promise<Classified<RecordTypes[K]>> {
  let value: RecordTypes[K];
  try {
    value = await codecs[kind].decode(message.value);
  } catch (error) {
    // A registry outage or refusal is not the message's fault: the batch is tried again.
    if (!isRecordFault(error)) throw error;
    return { ok: false, code: errorCode(error), reason: errorMessage(error) };
  }
  return validated(kind, value, limits);
}

/**
 * classifyMessage without waiting, for the hot loop: undefined when the writer schema must be
 * fetched first (the first message of a schema id).
 */
export function classifyKnown<K extends RecordKind>(
  message: Pick<KafkaMessage, 'value'>,
  kind: K,
  codecs: Codecs,
  limits: ValidationLimits & { maxMessageBytes: number },
): Classified<RecordTypes[K]> | undefined {
  const size = message.value?.length ?? 0;
  if (size > limits.maxMessageBytes) {
    const error = new OversizedMessageError(size, limits.maxMessageBytes);
    return { ok: false, code: error.code, reason: error.message };
  }
  let known: { value: RecordTypes[K] } | undefined;
  try {
    known = codecs[kind].decodeKnown(message.value);
  } catch (error) {
    return { ok: false, code: errorCode(error), reason: errorMessage(error) };
  }
  return known && validated(kind, known.value, limits);
}

function validated<K extends RecordKind>(
  kind: K,
  value: RecordTypes[K],
  limits: ValidationLimits,
): Classified<RecordTypes[K]> {
  const problems = findProblems(kind, value, limits);
  if (problems.length > 0) return { ok: false, code: 'FW_INVALID_RECORD', reason: problems.join('; ') };
  return { ok: true, value };
}
