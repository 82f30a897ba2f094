// Where the project's files are, from the sources (services/...) or the build (dist/services/...).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invariant } from './errors.js';

function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'schemas'))) return dir;
    invariant(dirname(dir) !== dir, `cannot find the Flywheel project root above ${start}`);
  }
}

export const PROJECT_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
export const SCHEMAS_DIR = join(PROJECT_ROOT, 'schemas');
export const SCRIPTS_DIR = join(PROJECT_ROOT, 'scripts');
