// A batch handler's failure narrowed to the records at fault: a thrown RecordError splits the
// batch in halves until each failing record stands alone; they are dead-lettered, the rest taken.
import { isRecordFault } from './errors.js';
import type { Logger } from './logger.js';

/** A record the handler refused, with why. */
export interface Rejection<R> {
  record: R;
  error: unknown;
}

/**
 * Run the handler over the records; when it throws a RecordError, split them to isolate the
 * records at fault. Any other failure is thrown (the batch is tried again, see processBatch).
 */
export async function isolateRecordFaults<R>(
  log: Logger,
  records: R[],
  run: (records: R[]) => Promise<Rejection<R>[]>,
): Promise<Rejection<R>[]> {
  if (records.length === 0) return [];
  try {
    return await run(records);
  } catch (error) {
    if (!isRecordFault(error)) throw error;
    if (records.length === 1) return [{ record: records[0] as R, error }];
    log.warn(
      { err: error, size: records.length },
      'handler failed on a batch; splitting it to isolate bad records',
    );
    const middle = Math.ceil(records.length / 2);
    return [
      ...(await isolateRecordFaults(log, records.slice(0, middle), run)),
      ...(await isolateRecordFaults(log, records.slice(middle), run)),
    ];
  }
}
