// The model registry on a filesystem: immutable versions (artifacts + metadata, read-only once
// written), aliases moved atomically under a lock, and an append-only history of every move.
//
//   <root>/versions/<id>/manifest.json, weights.bin, ...   artifacts (sha256 in metadata.json)
//   <root>/versions/<id>/metadata.json                     lineage, metrics, status
//   <root>/aliases.json                                    current routing (write-then-rename)
//   <root>/alias-history.jsonl                             who moved which alias when, and why
import { randomUUID } from 'node:crypto';
import { appendFile, chmod, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FlywheelError, RegistryError } from '../common/errors.js';
import { artifactsSha256, parseManifest } from '../model/artifacts.js';
import { isCode, withFileLock, writeAtomically } from './file-lock.js';
import {
  ALIASES,
  type Alias,
  type AliasMove,
  type NewVersion,
  type Routing,
  type Split,
  type VersionMetadata,
} from './metadata.js';
import { EMPTY_ROUTING, routingOf } from '../common/contracts.js';

export * from './metadata.js';

const VERSION_PATTERN = /^v\d{6}$/;

export class FileModelRegistry {
  private readonly versionsDir: string;

  constructor(readonly root: string) {
    this.versionsDir = join(root, 'versions');
  }

  artifactUri(version: string): string {
    return pathToFileURL(join(this.versionsDir, version)).href;
  }

  /** Store a new immutable version; ids are v000001, v000002, ... in registration order. */
  async register(input: NewVersion): Promise<VersionMetadata> {
    await mkdir(this.versionsDir, { recursive: true });
    const manifest = parseManifest(input.artifacts.files);
    const staging = join(this.versionsDir, `.staging-${randomUUID()}`);
    await mkdir(staging);
    try {
      const sha256 = artifactsSha256(input.artifacts.files);
      for (const [name, bytes] of Object.entries(input.artifacts.files))
        await writeFile(join(staging, name), bytes, { mode: 0o444 });
      for (let attempt = 0; attempt < 100; attempt++) {
        const version = `v${String((await this.highestNumber()) + 1 + attempt).padStart(6, '0')}`;
        const metadata: VersionMetadata = {
          version,
          parent: input.parent,
          kind: manifest.kind,
          featureSpecHash: manifest.featureSpecHash,
          hyperParameters: manifest.hyperParameters,
          seed: input.seed,
          training: input.training,
          metrics: input.metrics,
          ...(input.reference ? { reference: input.reference } : {}),
          sha256,
          files: Object.fromEntries(Object.entries(input.artifacts.files).map(([n, b]) => [n, b.length])),
          createdAt: new Date().toISOString(),
          createdBy: input.createdBy,
          status: input.status ?? 'registered',
          statusReason: input.statusReason ?? null,
        };
        await writeFile(join(staging, 'metadata.json'), JSON.stringify(metadata, null, 2), { mode: 0o444 });
        try {
          // rename() onto an existing non-empty directory fails: the id is taken, try the next.
          await rename(staging, join(this.versionsDir, version));
          await chmod(join(this.versionsDir, version), 0o555);
          return metadata;
        } catch (error) {
          if (!isCode(error, 'ENOTEMPTY', 'EEXIST')) throw error;
          await rm(join(staging, 'metadata.json'), { force: true });
        }
      }
      throw new RegistryError('FW_REGISTRY_BUSY', 'could not allocate a version id after 100 attempts');
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }

  private async highestNumber(): Promise<number> {
    const names = await readdir(this.versionsDir).catch(() => [] as string[]);
    return names
      .filter((n) => VERSION_PATTERN.test(n))
      .reduce((max, n) => Math.max(max, Number(n.slice(1))), 0);
  }

  async list(): Promise<VersionMetadata[]> {
    const names = await readdir(this.versionsDir).catch(() => [] as string[]);
    const versions = names.filter((n) => VERSION_PATTERN.test(n)).sort();
    return Promise.all(versions.map((v) => this.get(v)));
  }

  async get(version: string): Promise<VersionMetadata> {
    if (!VERSION_PATTERN.test(version))
      throw new RegistryError('FW_UNKNOWN_VERSION', `'${version}' is not a version id (v000001 style)`);
    try {
      return JSON.parse(
        await readFile(join(this.versionsDir, version, 'metadata.json'), 'utf8'),
      ) as VersionMetadata;
    } catch (error) {
      if (isCode(error, 'ENOENT'))
        throw new RegistryError('FW_UNKNOWN_VERSION', `no model version ${version} in ${this.root}`);
      throw error;
    }
  }

  /** The version's artifact files, verified against the recorded sha256. */
  async loadArtifacts(
    version: string,
  ): Promise<{ metadata: VersionMetadata; files: Record<string, Buffer> }> {
    const metadata = await this.get(version);
    const files: Record<string, Buffer> = {};
    for (const name of Object.keys(metadata.files)) {
      try {
        files[name] = await readFile(join(this.versionsDir, version, name));
      } catch (error) {
        if (isCode(error, 'ENOENT')) throw corrupt(version, `file ${name} is missing`);
        throw error;
      }
    }
    const actual = artifactsSha256(files);
    if (actual !== metadata.sha256) {
      const sizes = Object.entries(metadata.files)
        .filter(([name, size]) => files[name]?.length !== size)
        .map(([name, size]) => `${name} has ${files[name]?.length} bytes, expected ${size}`);
      throw corrupt(
        version,
        `sha256 ${actual.slice(0, 12)}… does not match the recorded ${metadata.sha256.slice(0, 12)}…${sizes.length ? ` (${sizes.join('; ')})` : ''}`,
      );
    }
    return { metadata, files };
  }

  async routing(): Promise<Routing> {
    try {
      return routingOf(
        JSON.parse(await readFile(join(this.root, 'aliases.json'), 'utf8')) as Partial<Routing>,
      );
    } catch (error) {
      if (isCode(error, 'ENOENT')) return routingOf(EMPTY_ROUTING);
      throw error;
    }
  }

  async history(): Promise<AliasMove[]> {
    const text = await readFile(join(this.root, 'alias-history.jsonl'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as AliasMove);
  }

  /**
   * Point `alias` at `version` (null removes it). For the challenger, `challengerWeight` sets the
   * share of users it gets. Returns the routing in force afterwards.
   */
  async moveAlias(
    alias: Alias,
    version: string | null,
    options: { actor: string; reason: string; challengerWeight?: number },
  ): Promise<{ routing: Routing; move: AliasMove }> {
    if (!ALIASES.includes(alias))
      throw new RegistryError('FW_BAD_REQUEST', `unknown alias '${alias}' (${ALIASES.join(', ')})`);
    if (version !== null) {
      const metadata = await this.get(version);
      if (metadata.status === 'rejected') {
        throw new RegistryError(
          'FW_VERSION_REJECTED',
          `${version} was rejected (${metadata.statusReason ?? 'no reason'}) and cannot take an alias`,
        );
      }
    }
    const weight = options.challengerWeight;
    if (weight !== undefined && !(weight >= 0 && weight <= 1)) {
      throw new RegistryError('FW_BAD_REQUEST', `challenger weight must be in [0, 1], got ${weight}`);
    }
    return this.withLock(async () => {
      const routing = await this.routing();
      const from = routing[alias];
      routing[alias] = version;
      if (alias === 'challenger') {
        routing.challengerWeight = version === null ? 0 : (weight ?? (routing.challengerWeight || 0.1));
        // One challenger by alias: a split of several is set whole (setSplit).
        routing.challengers = version === null ? [] : [{ version, weight: routing.challengerWeight }];
      }
      const move: AliasMove = {
        at: new Date().toISOString(),
        alias,
        from,
        to: version,
        challengerWeight: routing.challengerWeight,
        actor: options.actor,
        reason: options.reason,
      };
      await this.writeAtomically(join(this.root, 'aliases.json'), JSON.stringify(routing, null, 2));
      await appendFile(join(this.root, 'alias-history.jsonl'), `${JSON.stringify(move)}\n`);
      return { routing, move };
    });
  }

  /**
   * Sets the split in one move: every challenger with its share (the first is also `challenger`,
   * for readers of ModelUpdate v1), the baseline's share and the segments. Recorded in the history
   * as a move of the challenger alias.
   */
  async setSplit(
    split: Split,
    options: { actor: string; reason: string },
  ): Promise<{ routing: Routing; move: AliasMove }> {
    const problems = splitProblems(split);
    if (problems.length > 0)
      throw new RegistryError('FW_BAD_REQUEST', `the split is wrong: ${problems.join('; ')}`);
    for (const { version } of split.challengers) {
      const metadata = await this.get(version);
      if (metadata.status === 'rejected')
        throw new RegistryError('FW_VERSION_REJECTED', `${version} was rejected and cannot take a share`);
    }
    return this.withLock(async () => {
      const routing = await this.routing();
      const from = routing.challenger;
      const first = split.challengers[0];
      Object.assign(routing, {
        challenger: first?.version ?? null,
        challengerWeight: first?.weight ?? 0,
        challengers: split.challengers.map((c) => ({ ...c })),
        baselineWeight: split.baselineWeight,
        segments: [...split.segments],
      });
      const move: AliasMove = {
        at: new Date().toISOString(),
        alias: 'challenger',
        from,
        to: routing.challenger,
        challengerWeight: routing.challengerWeight,
        split: {
          challengers: routing.challengers,
          baselineWeight: routing.baselineWeight,
          segments: routing.segments,
        },
        actor: options.actor,
        reason: options.reason,
      };
      await this.writeAtomically(join(this.root, 'aliases.json'), JSON.stringify(routing, null, 2));
      await appendFile(join(this.root, 'alias-history.jsonl'), `${JSON.stringify(move)}\n`);
      return { routing, move };
    });
  }

  /** Move `alias` back to where it pointed before its latest move. */
  async rollback(
    alias: Alias,
    options: { actor: string; reason: string },
  ): Promise<{ routing: Routing; move: AliasMove }> {
    const moves = (await this.history()).filter((m) => m.alias === alias);
    const last = moves.at(-1);
    if (!last || last.from === null) {
      throw new RegistryError('FW_NOTHING_TO_ROLL_BACK', `${alias} has no earlier version to roll back to`);
    }
    return this.moveAlias(alias, last.from, { ...options, reason: `rollback: ${options.reason}` });
  }

  private writeAtomically(path: string, text: string): Promise<void> {
    return writeAtomically(path, text);
  }

  private withLock<T>(work: () => Promise<T>): Promise<T> {
    return withFileLock(this.root, 'aliases.lock', work);
  }
}

function corrupt(version: string, detail: string): FlywheelError {
  return new FlywheelError(
    'FW_ARTIFACT_CORRUPT',
    `model version ${version} is corrupt: ${detail}; refusing to load it`,
  );
}

/** Problems of a split (empty when sound): shares in (0, 1), distinct versions, room for a champion. */
export function splitProblems(split: Split): string[] {
  const problems: string[] = [];
  const versions = new Set<string>();
  for (const c of split.challengers) {
    if (!(c.weight > 0 && c.weight < 1)) problems.push(`${c.version}: share ${c.weight} is not in (0, 1)`);
    if (versions.has(c.version)) problems.push(`${c.version} is listed twice`);
    versions.add(c.version);
  }
  if (!(split.baselineWeight >= 0 && split.baselineWeight < 1))
    problems.push(`baseline share ${split.baselineWeight} is not in [0, 1)`);
  const taken = split.challengers.reduce((sum, c) => sum + c.weight, 0) + split.baselineWeight;
  if (!(taken < 1)) problems.push(`the shares add up to ${taken}: the champion needs some traffic`);
  for (const s of split.segments)
    if (!/^[^/\s]+\/[^/\s]+$/.test(s)) problems.push(`segment '${s}' is not country/device ('*' for any)`);
  return problems;
}
