// The chart library of the HTML Flywheel serves (the console, an experiment's report): uPlot's
// script and stylesheet read from the installed package, to be inlined so a page needs no network.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

export async function chartLibrary(): Promise<{ script: string; style: string }> {
  const require = createRequire(import.meta.url);
  const [script, style] = await Promise.all([
    readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  ]);
  return { script, style };
}
