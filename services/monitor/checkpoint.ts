// The monitor's checkpoint: its windows and alert state, the input offsets they reach, and the
// alert history, in one JSON file replaced atomically (written beside it, then renamed). A
// restart reads it and seeks every partition to its offset, so nothing is counted twice and the
// windows are not forgotten.
import { mkdir, readFile } from 'node:fs/promises';
import { writeAtomically } from '../common/atomic-file.js';
import { dirname, join } from 'node:path';
import { invariant } from '../common/errors.js';
import type { Alert } from './alerts.js';
import type { MonitorState } from './core.js';

export const CHECKPOINT_VERSION = 1;
/** Alerts kept in the history (the newest). */
export const HISTORY_SIZE = 1000;

export interface MonitorCheckpoint {
  version: typeof CHECKPOINT_VERSION;
  writtenAt: number;
  /** "topic:partition" → next offset to read. */
  offsets: Record<string, string>;
  state: MonitorState;
  history: Alert[];
  /** Newest serve, label and failure time read per input (absent in older checkpoints). */
  inputs?: Record<string, number | null>;
}

export function checkpointPath(dir: string): string {
  return join(dir, 'monitor.json');
}

export async function readCheckpoint(dir: string): Promise<MonitorCheckpoint | null> {
  let text: string;
  try {
    text = await readFile(checkpointPath(dir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const parsed = JSON.parse(text) as MonitorCheckpoint;
  invariant(parsed.version === CHECKPOINT_VERSION, `monitor checkpoint version ${String(parsed.version)}`);
  return parsed;
}

/** `serialized` is taken by the caller at one instant (state and offsets agree). */
export async function writeCheckpoint(dir: string, serialized: string): Promise<void> {
  const path = checkpointPath(dir);
  await mkdir(dirname(path), { recursive: true });
  await writeAtomically(path, serialized);
}
