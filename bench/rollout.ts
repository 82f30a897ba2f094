// The experiment decision core's error rates (services/rollout/experiment.ts), pure, no broker:
// seeded experiments on simulated outcomes (test/helpers/rollout-simulation.ts), looked at every
// 20 outcomes, in four cases: A/A (the candidate is the control), a better model (it knows each
// user's purchase probability), a worse one (it has them backwards), and one that predicts better
// but costs purchases. Prints the table for BENCHMARKS.md; results: bench/results/rollout.json.
//
//   npm run bench -- rollout [--runs 2000]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_RAMP, endings, type Scenario } from '../test/helpers/rollout-simulation.js';

const { values: flags } = parseArgs({ options: { runs: { type: 'string', default: '2000' } } });
const runs = Number(flags.runs);
const users = { low: 0.01, high: 0.2 };
const cases: [string, Scenario][] = [
  ['A/A: the candidate is the control', { ...users, rateLift: 0, candidate: 'mean' }],
  ['better: knows each user (log loss −0.058)', { ...users, rateLift: 0, candidate: 'own' }],
  ['worse: users backwards (log loss +0.25)', { ...users, rateLift: 0, candidate: 'swapped' }],
  ['predicts better, purchases −0.04', { ...users, rateLift: -0.04, candidate: 'own' }],
];

const rows = cases.map(([name, scenario]) => {
  const started = Date.now();
  const { counts, rollbackShares } = endings(runs, scenario, DEFAULT_RAMP, 1_000_000);
  const share = (k: number) => `${((100 * k) / runs).toFixed(1)}%`;
  const sorted = [...rollbackShares].sort((a, b) => a - b);
  const medianShare = sorted.length > 0 ? (sorted[Math.floor(sorted.length / 2)] as number) : null;
  return {
    name,
    runs,
    promote: share(counts.promote),
    rollback: share(counts.rollback),
    inconclusive: share(counts.inconclusive),
    medianShareAtRollback: medianShare,
    seconds: (Date.now() - started) / 1000,
  };
});
console.log(
  `ramp ${DEFAULT_RAMP.steps.join(' → ')}, ${DEFAULT_RAMP.minOutcomes} outcomes per step, budget ${DEFAULT_RAMP.budget}, alpha ${DEFAULT_RAMP.alpha}`,
);
console.log('| case | promoted | rolled back | inconclusive | median share at rollback |');
console.log('|---|---|---|---|---|');
for (const r of rows)
  console.log(
    `| ${r.name} | ${r.promote} | ${r.rollback} | ${r.inconclusive} | ${r.medianShareAtRollback === null ? '-' : `${r.medianShareAtRollback * 100}%`} |`,
  );
const dir = join(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'rollout.json'), `${JSON.stringify({ config: DEFAULT_RAMP, rows }, null, 2)}\n`);
