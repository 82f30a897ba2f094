// The README is where operators look things up: every dead-letter code, configuration variable
// and CLI command must be there.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { COMMANDS } from '../../services/cli/main.js';
import { commonConfigSchema } from '../../services/common/config.js';
import { ERROR_CODES } from '../../services/common/error-codes.js';
import { registryConfigSchema } from '../../services/registry/config.js';
import { scorerConfigSchema } from '../../services/scorer/config.js';
import { labelingConfigSchema } from '../../services/labeling/config.js';
import { joinerConfigSchema } from '../../services/joiner/config.js';
import { trainerConfigSchema } from '../../services/trainer/config.js';
import { consoleConfigSchema } from '../../services/console/config.js';
import { monitorConfigSchema } from '../../services/monitor/config.js';
import { rolloutConfigSchema } from '../../services/rollout/config.js';
import { TOPIC_SPECS } from '../../services/common/topics.js';

const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  it('opens with the demo and test commands', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    assert.match(firstBlock, /npm run demo/);
    assert.match(firstBlock, /npm test/);
  });

  it('documents every dead-letter code, configuration variable, topic and command', () => {
    for (const [code, { kind, status }] of Object.entries(ERROR_CODES)) {
      assert.ok(new RegExp(`\\| \`${code}\` \\|`).test(readme), `${code} in a README table`);
      // Refused requests are in the HTTP table with their status; a service failure an API
      // answers with may be there too, with its own.
      const row = new RegExp(`\\| \`${code}\` \\| (\\d{3}) \\|`).exec(readme);
      if (kind === 'request') assert.ok(row, `HTTP error ${code} in the HTTP table`);
      if (row) assert.equal(Number(row[1]), status, `HTTP status of ${code}`);
    }
    for (const name of Object.keys(commonConfigSchema.shape)) assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(registryConfigSchema.shape))
      assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(scorerConfigSchema.shape)) assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(labelingConfigSchema.shape))
      assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(joinerConfigSchema.shape)) assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(trainerConfigSchema.shape))
      assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(rolloutConfigSchema.shape))
      assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(monitorConfigSchema.shape))
      assert.ok(readme.includes(`\`${name}\``), name);
    for (const name of Object.keys(consoleConfigSchema.shape))
      assert.ok(readme.includes(`\`${name}\``), name);
    for (const spec of TOPIC_SPECS) assert.ok(readme.includes(`\`${spec.name}\``), spec.name);
    for (const name of Object.keys(COMMANDS)) assert.ok(readme.includes(`flywheel ${name}`), name);
  });
});
