// Schema registry seam. The embedded registry serves the schemas in schemas/ under fixed ids
// (schemas/registry.json); the Confluent registry client speaks the Confluent REST API, so our
// topics stay readable by any Confluent-compatible consumer when a registry is configured.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { DecodeError, SchemaRegistryError } from '../errors.js';
import { SCHEMAS_DIR } from '../paths.js';

export { SCHEMAS_DIR };

export type AvroType = avro.Type;

export interface SchemaRegistry {
  /** The writer schema registered under `id`; rejects with FW_UNKNOWN_SCHEMA_ID when there is none. */
  getById(id: number): Promise<AvroType>;
  /** The id of `schema` under `subject`, registering it where the registry allows that. */
  idFor(subject: string, schema: AvroType): Promise<number>;
}

interface ManifestEntry {
  id: number;
  file: string;
  subject: string;
  version: number;
}

export interface EmbeddedSchema extends ManifestEntry {
  type: AvroType;
}

export function loadSchemaFile(file: string, dir = SCHEMAS_DIR): AvroType {
  return avro.Type.forSchema(JSON.parse(readFileSync(join(dir, file), 'utf8')) as avro.Schema);
}

/** Schemas shipped in schemas/, with the ids fixed by schemas/registry.json. */
export class EmbeddedSchemaRegistry implements SchemaRegistry {
  readonly entries: readonly EmbeddedSchema[];
  private readonly byId = new Map<number, EmbeddedSchema>();

  constructor(dir = SCHEMAS_DIR) {
    const manifest = JSON.parse(readFileSync(join(dir, 'registry.json'), 'utf8')) as {
      schemas: ManifestEntry[];
    };
    this.entries = manifest.schemas.map((entry) => ({ ...entry, type: loadSchemaFile(entry.file, dir) }));
    for (const entry of this.entries) {
      if (this.byId.has(entry.id)) throw new Error(`schemas/registry.json: id ${entry.id} is used twice`);
      this.byId.set(entry.id, entry);
    }
  }

  getById(id: number): Promise<AvroType> {
    const entry = this.byId.get(id);
    if (!entry) return Promise.reject(unknownSchema(id));
    return Promise.resolve(entry.type);
  }

  idFor(subject: string, schema: AvroType): Promise<number> {
    const fingerprint = schema.fingerprint('sha256').toString('hex');
    const entry = this.entries.find(
      (e) => e.subject === subject && e.type.fingerprint('sha256').toString('hex') === fingerprint,
    );
    if (!entry) {
      return Promise.reject(
        new DecodeError(
          'FW_UNKNOWN_SCHEMA_ID',
          `schema ${schema.name ?? '(anonymous)'} is not registered under subject ${subject} in schemas/registry.json`,
        ),
      );
    }
    return Promise.resolve(entry.id);
  }

  /** Newest version of a subject (what producers write). */
  latest(subject: string): EmbeddedSchema {
    const versions = this.entries.filter((e) => e.subject === subject).sort((a, b) => b.version - a.version);
    const newest = versions[0];
    if (!newest) throw new Error(`no schema for subject ${subject} in schemas/registry.json`);
    return newest;
  }
}

/** Client of a Confluent-compatible schema registry (REST), with caches on both lookups. */
export class ConfluentSchemaRegistry implements SchemaRegistry {
  private readonly byId = new Map<number, Promise<AvroType>>();
  private readonly ids = new Map<string, Promise<number>>();

  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 5000,
  ) {}

  getById(id: number): Promise<AvroType> {
    let pending = this.byId.get(id);
    if (!pending) {
      pending = this.request<{ schema: string }>(`/schemas/ids/${id}`).then(
        (body) => avro.Type.forSchema(JSON.parse(body.schema) as avro.Schema),
        (error: unknown) => {
          this.byId.delete(id); // a transient failure must not stick in the cache
          throw error;
        },
      );
      this.byId.set(id, pending);
    }
    return pending;
  }

  idFor(subject: string, schema: AvroType): Promise<number> {
    const key = `${subject}\u0000${schema.fingerprint('sha256').toString('hex')}`;
    let pending = this.ids.get(key);
    if (!pending) {
      pending = this.request<{ id: number }>(`/subjects/${encodeURIComponent(subject)}/versions`, {
        method: 'POST',
        body: JSON.stringify({ schema: JSON.stringify(schema.schema()) }),
      }).then(
        (body) => body.id,
        (error: unknown) => {
          this.ids.delete(key);
          throw error;
        },
      );
      this.ids.set(key, pending);
    }
    return pending;
  }

  private async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        ...init,
        headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (cause) {
      throw new SchemaRegistryError(`schema registry ${this.baseUrl} unreachable`, { cause });
    }
    if (response.status === 404 && path.startsWith('/schemas/ids/')) {
      throw unknownSchema(Number(path.split('/').pop()));
    }
    if (!response.ok) {
      throw new SchemaRegistryError(`schema registry answered ${response.status} for ${path}`, {
        retriable: response.status >= 500,
      });
    }
    return (await response.json()) as T;
  }
}

function unknownSchema(id: number): DecodeError {
  return new DecodeError('FW_UNKNOWN_SCHEMA_ID', `no schema with id ${id} in the schema registry`);
}
