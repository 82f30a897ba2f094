// Files the registry shares between processes (the CLI, the admin API, the trainer, the rollout
// controller): written whole then renamed, so a reader never sees half a file, and changed under
// a lock file created exclusively, so two writers never interleave.
import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryError } from '../common/errors.js';

/** Write-then-rename, synced: the file holds the old text or the new one. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const temp = `${path}.${randomUUID()}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

/** Runs `work` holding `<dir>/<name>`; a lock older than 30 s is taken as left by a dead process. */
export async function withFileLock<T>(dir: string, name: string, work: () => Promise<T>): Promise<T> {
  await mkdir(dir, { recursive: true });
  const lockPath = join(dir, name);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const handle = await open(lockPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
      const age =
        Date.now() -
        (await stat(lockPath)
          .then((s) => s.mtimeMs)
          .catch(() => Date.now()));
      if (age > 30_000) await rm(lockPath, { force: true });
      else if (Date.now() > deadline)
        throw new RegistryError('FW_REGISTRY_BUSY', `lock ${lockPath} is held by another process`);
      else await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    return await work();
  } finally {
    await rm(lockPath, { force: true });
  }
}

export function isCode(error: unknown, ...codes: string[]): boolean {
  return (
    typeof error === 'object' && error !== null && codes.includes((error as { code?: string }).code ?? '')
  );
}
