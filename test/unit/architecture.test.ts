// The import graph of services/: each folder may import only the layers below it. The libraries
// (common, then model, then registry, then training) know no service; the simulator is test data,
// imported by the CLI, tests and benchmarks only; a service imports the libraries, never another
// service; the CLI composes them all. A fixture shows that a forbidden edge is caught.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..', 'services');

/** What each folder of services/ may import, besides itself. */
const ALLOWED: Record<string, readonly string[]> = {
  common: [],
  model: ['common'],
  registry: ['common', 'model'],
  training: ['common', 'model', 'registry'],
  simulator: ['common', 'model'],
  scorer: ['common', 'model', 'registry'],
  joiner: ['common'],
  trainer: ['common', 'model', 'registry', 'training'],
  labeling: ['common'],
  rollout: ['common', 'model', 'registry'],
  monitor: ['common', 'model', 'registry'],
  console: ['common', 'registry'],
  cli: ['*'],
};

interface Edge {
  file: string;
  from: string;
  to: string;
}

/** The relative imports of a module's source (static, dynamic and re-exports). */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  const pattern =
    /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/gm;
  for (const match of source.matchAll(pattern)) found.push((match[1] ?? match[2]) as string);
  return found;
}

/** Edges between folders that ALLOWED forbids, for files at `path` (relative to services/). */
function forbidden(path: string, source: string): Edge[] {
  const from = path.split(sep)[0] as string;
  const allowed = ALLOWED[from];
  const edges: Edge[] = [];
  for (const specifier of importsOf(source)) {
    const target = relative(ROOT, join(ROOT, path, '..', specifier));
    if (target.startsWith('..')) {
      edges.push({ file: path, from, to: `outside services/ (${specifier})` });
      continue;
    }
    const to = target.split(sep)[0] as string;
    if (to === from || allowed?.includes('*') || allowed?.includes(to)) continue;
    edges.push({ file: path, from, to });
  }
  return edges;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('architecture', () => {
  it('every folder of services/ is in the layer table', () => {
    const folders = readdirSync(ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    assert.deepEqual(
      folders.filter((f) => !(f in ALLOWED)),
      [],
    );
  });

  it('no module imports a layer it may not', () => {
    const edges = sources(ROOT).flatMap((file) =>
      forbidden(relative(ROOT, file), readFileSync(file, 'utf8')),
    );
    assert.deepEqual(
      edges.map((e) => `${e.file}: ${e.from} → ${e.to}`),
      [],
    );
  });

  it('catches a forbidden edge (fixture)', () => {
    const fixture = [
      "import type { OffsetRange } from '../registry/store.js';",
      "import { Scorer } from '../scorer/service.js';",
      "export { x } from '../simulator/dataset.js';",
      "const lazy = await import('../joiner/join.js');",
      "import { ok } from './consumer.js';",
    ].join('\n');
    assert.deepEqual(
      forbidden(join('common', 'fixture.ts'), fixture).map((e) => e.to),
      ['registry', 'scorer', 'simulator', 'joiner'],
    );
    assert.deepEqual(
      forbidden(
        join('registry', 'fixture.ts'),
        "import { simulateLabeledExamples } from '../simulator/dataset.js';",
      ).map((e) => e.to),
      ['simulator'],
    );
    assert.deepEqual(forbidden(join('cli', 'fixture.ts'), fixture), []);
  });
});
