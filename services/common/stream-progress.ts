// How far a stage has processed its input in event time, carried in the metadata of its
// committed offsets: the newest event time of the records before the committed offset that the
// stage took (dead letters aside). The scorer commits it on the click topic, the joiner's
// repartitioner on the purchase topic; the joiner reads both to know up to when its inputs are
// complete (services/joiner/progress.ts). Committed with the offset, so it is exactly as durable.

const PREFIX = 'flywheel-progress t=';

export function progressMetadata(eventTime: number): string {
  return `${PREFIX}${Number.isFinite(eventTime) ? Math.floor(eventTime) : ''}`;
}

/** The event time in a committed offset's metadata; -Infinity when it carries none. */
export function parseProgress(metadata: string | null | undefined): number {
  if (!metadata?.startsWith(PREFIX)) return -Infinity;
  const value = Number(metadata.slice(PREFIX.length));
  return metadata.length > PREFIX.length && Number.isFinite(value) ? value : -Infinity;
}
