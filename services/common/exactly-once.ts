// The exactly-once protocol of a stage that keeps state beside Kafka (the joiner today; any stage
// whose outputs depend on more than the current batch). Per input partition:
//
// - one transactional producer, whose transactional id names the partition: connecting it fences
//   the previous owner and finishes its open transaction;
// - per batch, the state store first (the new state tagged with the batch's `seq`, and the batch's
//   outputs as an outbox), then one Kafka transaction carrying the outputs and the input offsets
//   with `<tag> seq=<seq>` as their metadata (commitTransaction);
// - on taking a partition, the state found is reconciled with Kafka's committed seq:
//
// | state found                                   | Kafka's committed seq | action          |
// |-----------------------------------------------|-----------------------|-----------------|
// | offsets past the end of an input topic        | any                   | discard, again  |
// | seq = committed                               | seq                   | in step         |
// | seq = committed + 1, outbox of that batch     | seq − 1               | publish outbox  |
// | anything else (lost writes, reset, old layout)| any                   | replay inputs   |
//
// Publishing the outbox finishes the batch the previous owner wrote to the store but not to
// Kafka; replaying re-reads the inputs from the state's own offsets (the state decides what was
// applied). What the state is, how it is stored and how a replay seeks are the stage's.
import type { Admin, Kafka, Producer } from 'kafkajs';
import { createProducer } from './kafka.js';

export interface FoundState<I extends string> {
  seq: number;
  /** Next offset to read of each input, as the state has them. */
  offsets: Partial<Record<I, string>>;
  /** Seq of the batch whose outputs the store holds as an outbox, if any. */
  outboxSeq: number | null;
}

export type Recovery =
  | { action: 'discard'; reason: string }
  | { action: 'in-step' }
  | { action: 'publish-outbox' }
  | { action: 'replay'; reason: string };

/** The table above, for the state found, Kafka's committed seq and each input's end offset. */
export function chooseRecovery<I extends string>(
  found: FoundState<I>,
  committedSeq: number,
  ends: Record<I, bigint>,
): Recovery {
  for (const input of Object.keys(ends) as I[]) {
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
        ? 'the state is behind Kafka (lost writes or all of the state)'
        : 'the state is ahead of Kafka without an outbox (offsets reset, or another layout)',
  };
}

/** What reconcile needs of the stage: its state store for the partition, and the two actions. */
export interface ReconcileSteps<S, I extends string> {
  load(): Promise<S>;
  found(state: S): FoundState<I>;
  /** Drops the stored state (it lies past the topics: they were recreated). */
  discard(state: S, reason: string): Promise<void>;
  /** Sends the outbox's outputs with the state's offsets and seq in one transaction. */
  publishOutbox(state: S): Promise<void>;
  /** Moves the partition's inputs back to the state's offsets. */
  replay(state: S, reason: string): void;
}

/** Loads the state and runs the table's action; returns the state to go on from and the choice. */
export async function reconcile<S, I extends string>(
  steps: ReconcileSteps<S, I>,
  committedSeq: number,
  ends: Record<I, bigint>,
): Promise<{ state: S; recovery: Recovery; discarded: boolean }> {
  let state = await steps.load();
  let recovery = chooseRecovery(steps.found(state), committedSeq, ends);
  let discarded = false;
  if (recovery.action === 'discard') {
    await steps.discard(state, recovery.reason);
    discarded = true;
    state = await steps.load();
    recovery = chooseRecovery(steps.found(state), committedSeq, ends);
  }
  if (recovery.action === 'publish-outbox') await steps.publishOutbox(state);
  else if (recovery.action === 'replay') steps.replay(state, recovery.reason);
  return { state, recovery, discarded };
}

/** The offsets' metadata of batch `seq`, for a stage whose tag is `tag`. */
export function seqMetadata(tag: string, seq: number): string {
  return `${tag} seq=${seq}`;
}

/** The newest batch seq committed for the partition by `groupId` on any of `topics` (0: none). */
export async function committedSeq(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
  partition: number,
  tag: string,
): Promise<number> {
  const pattern = new RegExp(`^${tag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} seq=(\\d+)$`);
  const offsets = await admin.fetchOffsets({ groupId, topics: [...topics] });
  let seq = 0;
  for (const topic of offsets)
    for (const p of topic.partitions) {
      if (p.partition !== partition) continue;
      const match = pattern.exec(p.metadata ?? '');
      if (match) seq = Math.max(seq, Number(match[1]));
    }
  return seq;
}

/** A connected transactional producer for one partition; connecting fences the previous owner. */
export async function fencedProducer(kafka: Kafka, transactionalId: string): Promise<Producer> {
  const producer = createProducer(kafka, { transactionalId, maxInFlightRequests: 1 });
  await producer.connect();
  return producer;
}
