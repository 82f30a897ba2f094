// Schema registry seam. The embedded registry serves the schemas in schemas/ under fixed ids
// (schemas/registry.json); the Confluent registry client speaks the Confluent REST API, so our
// topics stay readable by any Confluent-compatible consumer when a registry is configured.
// Writer schemas are registered as their .avsc files are written (docs, defaults, logical types),
// so another client's deserializer and the registry's compatibility check see the whole schema.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { DecodeError, SchemaRegistryError, invariant } from '../errors.js';
import { SCHEMAS_DIR } from '../paths.js';

export { SCHEMAS_DIR };

export type AvroType = avro.Type;

/** A schema Flywheel writes with: its type, and its JSON as written in schemas/ (what is registered). */
export interface WriterSchema {
  type: AvroType;
  text: string;
}

export interface SchemaRegistry {
  /**
   * The writer schema registered under `id`; rejects with FW_UNKNOWN_SCHEMA_ID (a record fault)
   * when the registry says there is none, with a SchemaRegistryError when it cannot say.
   */
  getById(id: number): Promise<AvroType>;
  /** The id of `schema` under `subject`: looked up, and registered where that is allowed. */
  idFor(subject: string, schema: WriterSchema): Promise<number>;
}

interface ManifestEntry {
  id: number;
  file: string;
  subject: string;
  version: number;
}

export interface EmbeddedSchema extends ManifestEntry, WriterSchema {}

export function loadSchemaFile(file: string, dir = SCHEMAS_DIR): AvroType {
  return loadWriterSchema(file, dir).type;
}

/** A schema file's type and its JSON text, compacted (the same bytes every time). */
export function loadWriterSchema(file: string, dir = SCHEMAS_DIR): WriterSchema {
  const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as avro.Schema;
  return { type: avro.Type.forSchema(json), text: JSON.stringify(json) };
}

/** Schemas shipped in schemas/, with the ids fixed by schemas/registry.json. */
export class EmbeddedSchemaRegistry implements SchemaRegistry {
  readonly entries: readonly EmbeddedSchema[];
  private readonly byId = new Map<number, EmbeddedSchema>();

  constructor(dir = SCHEMAS_DIR) {
    const manifest = JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')) as {
      schemas: ManifestEntry[];
    };
    this.entries = manifest.schemas.map((entry) => ({ ...entry, ...loadWriterSchema(entry.file, dir) }));
    for (const entry of this.entries) {
      invariant(!this.byId.has(entry.id), `schemas/registry.json: id ${entry.id} is used twice`);
      this.byId.set(entry.id, entry);
    }
  }

  getById(id: number): Promise<AvroType> {
    const entry = this.byId.get(id);
    if (!entry)
      return Promise.reject(
        unknownSchema(id, 'schemas/registry.json (the embedded registry knows only its own ids)'),
      );
    return Promise.resolve(entry.type);
  }

  idFor(subject: string, schema: WriterSchema): Promise<number> {
    const fingerprint = schema.type.fingerprint('sha256').toString('hex');
    const entry = this.entries.find(
      (e) => e.subject === subject && e.type.fingerprint('sha256').toString('hex') === fingerprint,
    );
    if (!entry) {
      // Our own writer schema missing from schemas/registry.json: a build fault, not a record's.
      return Promise.reject(
        new SchemaRegistryError(
          `schema ${schema.type.name ?? '(anonymous)'} is not registered under subject ${subject} in schemas/registry.json`,
          { status: 404 },
        ),
      );
    }
    return Promise.resolve(entry.id);
  }

  /** Newest version of a subject (what producers write). */
  latest(subject: string): EmbeddedSchema {
    const versions = this.entries.filter((e) => e.subject === subject).sort((a, b) => b.version - a.version);
    const newest = versions[0];
    invariant(newest, `no schema for subject ${subject} in schemas/registry.json`);
    return newest;
  }
}

/** How Flywheel talks to a Confluent-compatible registry (FW_SCHEMA_REGISTRY_* settings). */
export interface ConfluentRegistryOptions {
  /** Base URL; a path (a proxy's, Apicurio's `/apis/ccompat/v7`) is kept. Userinfo = basic auth. */
  url: string;
  /** `user:password` (HTTP basic) or `Bearer <token>`; never logged. */
  auth?: string | undefined;
  /** Register writer schemas the registry lacks (false: look them up only, for read-only registries). */
  autoRegister?: boolean;
  timeoutMs?: number;
  /** How long an id the registry does not know is remembered as unknown. */
  unknownIdTtlMs?: number;
}

/** Confluent's error code for "schema not found" (by id, or under a subject). */
const SCHEMA_NOT_FOUND = 40403;
const SUBJECT_NOT_FOUND = 40401;

/**
 * Client of a Confluent-compatible schema registry (REST): ids by writer schema are looked up
 * (`POST /subjects/{subject}`) before anything is registered, then registered if allowed; schemas
 * by id are cached for good (ids are immutable), and an id the registry answers 40403 for is
 * remembered as unknown for a while so a burst of such messages does not become a burst of requests.
 */
export class ConfluentSchemaRegistry implements SchemaRegistry {
  private readonly byId = new Map<number, Promise<AvroType>>();
  private readonly unknownIds = new Map<number, number>();
  private readonly ids = new Map<string, Promise<number>>();
  private readonly base: URL;
  private readonly authorization: string | undefined;
  private readonly autoRegister: boolean;
  private readonly timeoutMs: number;
  private readonly unknownIdTtlMs: number;
  /** The URL without credentials, for messages. */
  readonly shownUrl: string;

  constructor(options: ConfluentRegistryOptions | string) {
    const o = typeof options === 'string' ? { url: options } : options;
    const base = new URL(o.url);
    let authorization = authorizationOf(o.auth);
    if (!authorization && (base.username || base.password)) {
      const user = decodeURIComponent(base.username);
      const password = decodeURIComponent(base.password);
      authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    }
    base.username = '';
    base.password = '';
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
    this.shownUrl = base.href.replace(/\/$/, '');
    this.authorization = authorization;
    this.autoRegister = o.autoRegister ?? true;
    this.timeoutMs = o.timeoutMs ?? 5000;
    this.unknownIdTtlMs = o.unknownIdTtlMs ?? 60_000;
  }

  getById(id: number): Promise<AvroType> {
    const unknownUntil = this.unknownIds.get(id);
    if (unknownUntil !== undefined) {
      if (Date.now() < unknownUntil) return Promise.reject(unknownSchema(id, this.shownUrl));
      this.unknownIds.delete(id);
    }
    let pending = this.byId.get(id);
    if (!pending) {
      pending = this.request<{ schema: string }>('GET', `schemas/ids/${id}`).then((answer) => {
        if (answer.status === 404 && answer.errorCode === SCHEMA_NOT_FOUND) {
          this.unknownIds.set(id, Date.now() + this.unknownIdTtlMs);
          throw unknownSchema(id, this.shownUrl);
        }
        const body = this.expectOk(answer, `fetching schema id ${id}`);
        try {
          return avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema);
        } catch (cause) {
          throw new DecodeError(
            'FW_SCHEMA_MISMATCH',
            `schema id ${id} in ${this.shownUrl} is not an Avro schema avsc can read: ${errorText(cause)}`,
            { cause },
          );
        }
      });
      // A failure must not stick in the cache (an unknown id is remembered above, for a while).
      pending.catch(() => this.byId.delete(id));
      this.byId.set(id, pending);
    }
    return pending;
  }

  idFor(subject: string, schema: WriterSchema): Promise<number> {
    const key = `${subject}\u0000${schema.text}`;
    let pending = this.ids.get(key);
    if (!pending) {
      pending = this.lookUpOrRegister(subject, schema);
      pending.catch(() => this.ids.delete(key));
      this.ids.set(key, pending);
    }
    return pending;
  }

  private async lookUpOrRegister(subject: string, schema: WriterSchema): Promise<number> {
    const path = `subjects/${encodeURIComponent(subject)}`;
    const body = JSON.stringify({ schema: schema.text });
    const found = await this.request<{ id: number }>('POST', path, body);
    if (found.status === 200) return this.expectOk(found, `looking up the schema under ${subject}`).id;
    const notFound =
      found.status === 404 && (found.errorCode === SCHEMA_NOT_FOUND || found.errorCode === SUBJECT_NOT_FOUND);
    if (!notFound) this.expectOk(found, `looking up the schema under ${subject}`);
    if (!this.autoRegister)
      throw new SchemaRegistryError(
        `schema ${schema.type.name ?? ''} is not registered under ${subject} in ${this.shownUrl}, and ` +
          'FW_SCHEMA_REGISTRY_AUTO_REGISTER is false: register schemas/ files there first',
        { status: found.status },
      );
    const registered = await this.request<{ id: number }>('POST', `${path}/versions`, body);
    return this.expectOk(registered, `registering the schema under ${subject}`).id;
  }

  private expectOk<T>(answer: RegistryAnswer<T>, doing: string): T {
    if (answer.status >= 200 && answer.status < 300 && answer.body) return answer.body;
    const said = answer.message ? `: ${answer.message}` : '';
    const code = answer.errorCode === null ? '' : ` (error_code ${answer.errorCode})`;
    throw new SchemaRegistryError(
      `schema registry ${this.shownUrl} answered ${answer.status}${code} ${doing}${said}`,
      { status: answer.status },
    );
  }

  private async request<T>(method: string, path: string, body?: string): Promise<RegistryAnswer<T>> {
    const url = new URL(path, this.base);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: {
          accept: 'application/vnd.schemaregistry.v1+json, application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/vnd.schemaregistry.v1+json' }),
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (cause) {
      const timedOut = (cause as Error).name === 'TimeoutError';
      throw new SchemaRegistryError(
        `schema registry ${this.shownUrl} ${timedOut ? `did not answer within ${this.timeoutMs} ms` : `unreachable: ${errorText(cause)}`} (${method} ${path})`,
        { cause },
      );
    }
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON (an HTML error page of a proxy, say): the status and the text's start say enough.
    }
    const error = (parsed ?? {}) as { error_code?: unknown; message?: unknown };
    const ok = response.status >= 200 && response.status < 300;
    return {
      status: response.status,
      body: ok && parsed !== null ? (parsed as T) : null,
      errorCode: typeof error.error_code === 'number' ? error.error_code : null,
      message:
        typeof error.message === 'string' ? error.message : ok ? null : text.slice(0, 200).trim() || null,
    };
  }
}

interface RegistryAnswer<T> {
  status: number;
  body: T | null;
  errorCode: number | null;
  message: string | null;
}

/** The Authorization header for FW_SCHEMA_REGISTRY_AUTH (`user:password` or `Bearer <token>`). */
function authorizationOf(auth: string | undefined): string | undefined {
  if (!auth) return undefined;
  if (/^bearer\s+/i.test(auth)) return `Bearer ${auth.replace(/^bearer\s+/i, '')}`;
  return `Basic ${Buffer.from(auth).toString('base64')}`;
}

function errorText(error: unknown): string {
  const cause = (error as { cause?: { message?: string; code?: string } }).cause;
  const base = error instanceof Error ? error.message : String(error);
  return cause?.code ? `${base} (${cause.code})` : base;
}

function unknownSchema(id: number, where = 'the schema registry'): DecodeError {
  return new DecodeError('FW_UNKNOWN_SCHEMA_ID', `no schema with id ${id} in ${where}`);
}
