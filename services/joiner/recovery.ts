// What a new owner of a join partition does with the state it finds (pure). The joiner keeps
// its state in Redis and its input offsets in Kafka, each write tagged with the batch sequence:
// Redis first (with the batch's outputs as an outbox), then one Kafka transaction carrying the
// outputs and the offsets with `seq` as their metadata. So on taking a partition:
//
// | Redis state                                   | Kafka's committed seq | action          |
// |-----------------------------------------------|-----------------------|-----------------|
// | offsets past the end of an input topic        | any                   | discard, again  |
// | seq = committed                               | seq                   | in step         |
// | seq = committed + 1, outbox of that batch     | seq − 1               | publish outbox  |
// | anything else (lost writes, reset, old layout)| any                   | replay inputs   |
//
// Publishing the outbox finishes the batch the previous owner wrote to Redis but not to Kafka;
// replaying re-reads the inputs from the state's own offsets (the state decides what was applied).

export type JoinInputName = 'prediction' | 'purchase';

export interface FoundState {
  seq: number;
  offsets: Partial<Record<JoinInputName, string>>;
  /** Seq of the batch whose outputs Redis holds as an outbox, if any. */
  outboxSeq: number | null;
}

export type Recovery =
  | { action: 'discard'; reason: string }
  | { action: 'in-step' }
  | { action: 'publish-outbox' }
  | { action: 'replay'; reason: string };

export function chooseRecovery(
  found: FoundState,
  committedSeq: number,
  ends: Record<JoinInputName, bigint>,
): Recovery {
  for (const input of ['prediction', 'purchase'] as const) {
    const offset = found.offsets[input];
    if (offset !== undefined && BigInt(offset) > ends[input])
      return {
        action: 'discard',
        reason: `${input} offset ${offset} is past the topic's end ${ends[input]}`,
      };
  }
  if (found.seq === committedSeq) return { action: 'in-step' };
  if (found.seq === committedSeq + 1 && found.outboxSeq === found.seq) return { action: 'publish-outbox' };
  return {
    action: 'replay',
    reason:
      found.seq < committedSeq
        ? 'Redis is behind Kafka (lost writes or all of the state)'
        : 'Redis is ahead of Kafka without an outbox (offsets reset, or another layout)',
  };
}
