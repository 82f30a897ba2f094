// Files the registry shares between processes (the CLI, the admin API, the trainer, the rollout
// controller): written whole then renamed, so a reader never sees half a file, and changed under
// a lock file created exclusively, so two writers never interleave.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryError } from '../common/errors.js';

// Write-then-rename, synced: the file holds the old text or the new one.
export { writeAtomically } from '../common/atomic-file.js';

/** A lock not touched for this long is taken as left by a dead process. */
const STALE_LOCK_MS = 30_000;

/**
 * Runs `work` holding `<dir>/<name>`. The holder touches the lock every few seconds (work that
 * waits on Kafka may take longer than the stale age), and removes it only if it is still its own.
 */
export async function withFileLock<T>(dir: string, name: string, work: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true });
  const lockPath = join(dir, name);
  const owner = `${process.pid}:${randomUUID()}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const handle = await open(lockPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
      await handle.writeFile(owner);
      await handle.close();
      break;
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
      const age =
        Date.now() -
        (await stat(lockPath)
          .then((s) => s.mtimeMs)
          .catch(() => Date.now()));
      if (age > STALE_LOCK_MS) await rm(lockPath, { force: true });
      else if (Date.now() > deadline)
        throw new RegistryError('FW_REGISTRY_BUSY', `lock ${lockPath} is held by another process`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  const keepAlive = setInterval(() => {
    const now = new Date();
    void utimes(lockPath, now, now).catch(() => undefined);
  }, STALE_LOCK_MS / 6);
  try {
    return await work();
  } finally {
    clearInterval(keepAlive);
    const holder = await readFile(lockPath, 'utf8').catch(() => null);
    if (holder === owner) await rm(lockPath, { force: true });
  }
}

export function isCode(error: unknown, ...codes: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && codes.includes((error as { code?: string }).code ?? '')
  );
}
