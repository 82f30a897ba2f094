#!/usr/bin/env node
// Runs the built CLI (npm run build); in a source checkout without a build, runs the
// TypeScript sources through tsx.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/services/cli/index.js', import.meta.url));
if (existsSync(built)) {
  await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../services/cli/index.ts', import.meta.url).href);
}
