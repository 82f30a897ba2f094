// No Docker engine runs here, so the deployment files are checked by reading them: the compose
// file parses, its services run real CLI commands, and it matches the local stack's choices.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { COMMANDS } from '../../services/cli/main.js';
import { commonConfigSchema } from '../../services/common/config.js';
import { registryConfigSchema } from '../../services/registry/config.js';
import { scorerConfigSchema } from '../../services/scorer/config.js';
import { labelingConfigSchema } from '../../services/labeling/config.js';
import { joinerConfigSchema } from '../../services/joiner/config.js';
import { trainerConfigSchema } from '../../services/trainer/config.js';
import { rolloutConfigSchema } from '../../services/rollout/config.js';
import { monitorConfigSchema } from '../../services/monitor/config.js';
import { consoleConfigSchema } from '../../services/console/config.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface ComposeService {
  image?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  build?: { context: string; dockerfile: string };
  ports?: string[];
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, ComposeService>;
};

describe('docker-compose.yml', () => {
  it('runs Kafka in KRaft mode with the broker version of the local stack, and Redis with AOF', () => {
    const stackVersion = /KAFKA_VERSION=\$\{FLYWHEEL_KAFKA_VERSION:-([0-9.]+)\}/.exec(
      read('scripts/stack.sh'),
    )?.[1];
    const pomVersion = /<kafka.version>([0-9.]+)<\/kafka.version>/.exec(read('stack/kafka/pom.xml'))?.[1];
    const kafka = compose.services.kafka!;
    assert.equal(kafka.image, `apache/kafka:${stackVersion}`);
    assert.equal(pomVersion, stackVersion);
    assert.equal(kafka.environment?.KAFKA_PROCESS_ROLES, 'broker,controller');
    assert.equal(kafka.environment?.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, 1);
    assert.equal(kafka.environment?.KAFKA_TRANSACTION_STATE_LOG_MIN_ISR, 1);
    assert.ok(kafka.healthcheck);
    assert.ok(compose.services.redis?.command?.includes('--appendonly'));
  });

  it('every Flywheel service runs a real CLI command with valid configuration, after Kafka, Redis and topics', () => {
    const flywheel = Object.entries(compose.services).filter(([, s]) => s.build);
    assert.ok(flywheel.length >= 2);
    for (const [name, service] of flywheel) {
      const command = service.command?.[0];
      assert.ok(command && command in COMMANDS, `${name} runs a flywheel command (${command})`);
      assert.equal(service.build?.dockerfile, 'docker/Dockerfile');
      // Compose fills ${VAR:?message} from the operator's environment; stand in a valid value.
      const env = Object.fromEntries(
        Object.entries(service.environment ?? {}).map(([k, v]) => [
          k,
          String(v).replace(
            /^\$\{[A-Z_]+:\?[^}]*\}$/,
            k === 'FW_LABELER_TOKENS' ? `ann:${'x'.repeat(24)}` : 'x'.repeat(24),
          ),
        ]),
      );
      assert.doesNotThrow(() => commonConfigSchema.parse(env), `${name} environment is valid`);
      assert.doesNotThrow(() => registryConfigSchema.parse(env), `${name} registry settings are valid`);
      assert.doesNotThrow(() => scorerConfigSchema.parse(env), `${name} scorer settings are valid`);
      assert.doesNotThrow(() => labelingConfigSchema.parse(env), `${name} labeling settings are valid`);
      assert.doesNotThrow(() => joinerConfigSchema.parse(env), `${name} joiner settings are valid`);
      assert.doesNotThrow(() => trainerConfigSchema.parse(env), `${name} trainer settings are valid`);
      assert.doesNotThrow(() => rolloutConfigSchema.parse(env), `${name} rollout settings are valid`);
      assert.doesNotThrow(() => monitorConfigSchema.parse(env), `${name} monitor settings are valid`);
      assert.doesNotThrow(() => consoleConfigSchema.parse(env), `${name} console settings are valid`);
      assert.equal(env.KAFKA_BROKERS, 'kafka:9092');
      assert.equal(service.depends_on?.kafka?.condition, 'service_healthy', `${name} waits for kafka`);
      if (name !== 'topics')
        assert.equal(service.depends_on?.topics?.condition, 'service_completed_successfully');
    }
  });

  it('sets only variables some configuration accepts (a misspelt one would be ignored silently)', () => {
    const schemas = [
      commonConfigSchema,
      registryConfigSchema,
      scorerConfigSchema,
      labelingConfigSchema,
      joinerConfigSchema,
      trainerConfigSchema,
      rolloutConfigSchema,
      monitorConfigSchema,
      consoleConfigSchema,
    ];
    const known = new Set(schemas.flatMap((schema) => Object.keys(schema.shape)));
    for (const [name, service] of Object.entries(compose.services).filter(([, s]) => s.build))
      for (const key of Object.keys(service.environment ?? {}))
        assert.ok(known.has(key), `${name} sets ${key}, which no Flywheel configuration reads`);
  });

  it("publishes each service's HTTP port, the one its configuration listens on and its healthcheck asks", () => {
    const portVariables: Record<string, string> = {
      registry: 'FW_ADMIN_PORT',
      scorer: 'FW_HTTP_PORT',
      joiner: 'FW_JOINER_HTTP_PORT',
      trainer: 'FW_TRAINER_HTTP_PORT',
      labeling: 'FW_LABELING_PORT',
      rollout: 'FW_ROLLOUT_HTTP_PORT',
      monitor: 'FW_MONITOR_HTTP_PORT',
      console: 'FW_CONSOLE_PORT',
    };
    for (const [name, variable] of Object.entries(portVariables)) {
      const service = compose.services[name] as ComposeService;
      const listens = String(service.environment?.[variable]);
      assert.match(listens, /^\d+$/, `${name} sets ${variable}`);
      assert.deepEqual(service.ports, [`${listens}:${listens}`], `${name} publishes ${listens}`);
      const probe = service.healthcheck?.test.join(' ');
      if (probe?.includes('http://'))
        assert.ok(probe.includes(`127.0.0.1:${listens}/`), `${name}'s healthcheck asks port ${listens}`);
    }
    const withPorts = Object.entries(compose.services).filter(([, s]) => s.build && s.ports);
    assert.deepEqual(withPorts.map(([name]) => name).sort(), Object.keys(portVariables).sort());
  });

  it('every service that reads or writes models shares one registry volume at FW_REGISTRY_DIR', () => {
    for (const [name, writes] of [
      ['registry', true],
      ['trainer', true],
      ['rollout', true],
      ['scorer', false],
      ['monitor', false],
      ['console', false],
    ] as const) {
      const service = compose.services[name]!;
      const dir = service.environment?.FW_REGISTRY_DIR;
      assert.ok(dir, `${name} sets FW_REGISTRY_DIR`);
      const mount = service.volumes?.find((v) => v.startsWith(`registry:${dir}`));
      assert.ok(mount, `${name} mounts the registry volume at ${dir}`);
      assert.equal(
        mount.endsWith(':ro'),
        !writes,
        `${name} mounts it ${writes ? 'read-write' : 'read-only'}`,
      );
    }
  });

  it('the Dockerfile builds the CLI that bin/flywheel.js runs and ships the schemas', () => {
    const dockerfile = read('docker/Dockerfile');
    assert.match(dockerfile, /FROM node:20/);
    assert.match(dockerfile, /npm run build/);
    assert.match(dockerfile, /COPY schemas/);
    // Both stages' installs apply the dependency patches, so they must be in place first.
    const installs = dockerfile.split(/^FROM /m).slice(1);
    assert.equal(installs.length, 2);
    for (const stage of installs) assert.match(stage, /COPY patches \.\/patches\n(.*\n)*RUN npm ci/);
    assert.ok(existsSync(join(ROOT, 'patches', 'kafkajs+2.2.4.patch')));
    assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/flywheel.js"\]/);
    assert.match(read('bin/flywheel.js'), /dist\/services\/cli\/index\.js/);
  });
});
