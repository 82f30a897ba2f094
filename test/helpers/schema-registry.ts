// A stand-in for a Confluent-compatible schema registry (none installs from the registries this
// project can reach): the REST calls clients use, a BACKWARD compatibility check on register,
// an optional path prefix and credentials, and switches to refuse, fail, hang or go away.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import avro from 'avsc';

export type RegistryBehaviour =
  /** Answers as a registry does. */
  | 'normal'
  /** 409 on every register (as a registry whose subject is incompatible or locked). */
  | 'refuse-register'
  /** 500 on every call. */
  | 'error'
  /** Accepts the connection and never answers. */
  | 'hang';

export interface StandInRegistryOptions {
  /** Path the API sits under, e.g. `/apis/ccompat/v7`. */
  pathPrefix?: string;
  /** Basic-auth credentials every call must carry. */
  basicAuth?: { user: string; password: string };
  /** Clients may only look up and fetch (registering answers 403, as with RBAC). */
  readOnly?: boolean;
}

interface Version {
  id: number;
  version: number;
  schema: string;
}

export class StandInRegistry {
  behaviour: RegistryBehaviour = 'normal';
  /** Requests seen, as `METHOD path` without the prefix. */
  readonly requests: string[] = [];
  private readonly subjects = new Map<string, Version[]>();
  private readonly byId = new Map<number, string>();
  private nextId = 1;
  private server: Server | undefined;
  private port = 0;
  private readonly hanging = new Set<ServerResponse>();

  constructor(private readonly options: StandInRegistryOptions = {}) {}

  /** The base URL clients are given (with the prefix). */
  get url(): string {
    return `http://127.0.0.1:${this.port}${this.options.pathPrefix ?? ''}`;
  }

  /** Starts listening (on the same port as before after `stop`). */
  async start(): Promise<this> {
    const server = createServer((request, response) => void this.handle(request, response));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops answering: the port refuses connections until `start` again. */
  async stop(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    this.hanging.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Registers a schema directly (as an operator would), with the same check as the API. */
  register(subject: string, schema: string): { id: number } | { error: number; message: string } {
    const versions = this.subjects.get(subject) ?? [];
    const same = versions.find((v) => sameSchema(v.schema, schema));
    if (same) return { id: same.id };
    const latest = versions.at(-1);
    if (latest) {
      const problem = backwardProblem(schema, latest.schema);
      if (problem)
        return {
          error: 409,
          message: `Schema being registered is incompatible with an earlier schema: ${problem}`,
        };
    }
    const id = this.nextId++;
    versions.push({ id, version: versions.length + 1, schema });
    this.subjects.set(subject, versions);
    this.byId.set(id, schema);
    return { id };
  }

  /** The schema text registered under `id`. */
  schemaOf(id: number): string | undefined {
    return this.byId.get(id);
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const prefix = this.options.pathPrefix ?? '';
    const url = new URL(request.url ?? '/', 'http://registry');
    if (!url.pathname.startsWith(prefix))
      return send(response, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
    const path = url.pathname.slice(prefix.length);
    const method = request.method ?? 'GET';
    this.requests.push(`${method} ${path}`);
    if (this.behaviour === 'hang') {
      this.hanging.add(response);
      return;
    }
    if (this.options.basicAuth) {
      const { user, password } = this.options.basicAuth;
      const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      if (request.headers.authorization !== expected)
        return send(response, 401, { error_code: 40101, message: 'Unauthorized' });
    }
    if (this.behaviour === 'error')
      return send(response, 500, { error_code: 50001, message: 'Error in the backend data store' });

    let match = /^\/schemas\/ids\/(\d+)$/.exec(path);
    if (match && method === 'GET') {
      const schema = this.byId.get(Number(match[1]));
      return schema
        ? send(response, 200, { schema })
        : send(response, 404, { error_code: 40403, message: 'Schema not found' });
    }
    match = /^\/subjects\/([^/]+)\/versions$/.exec(path);
    if (match && method === 'POST') {
      if (this.options.readOnly)
        return send(response, 403, {
          error_code: 40301,
          message: 'User is denied operation Write on Subject',
        });
      if (this.behaviour === 'refuse-register')
        return send(response, 409, {
          error_code: 409,
          message: 'Schema being registered is incompatible with an earlier schema',
        });
      const schema = parseSchemaBody(body);
      if (!schema) return send(response, 422, { error_code: 42201, message: 'Invalid schema' });
      const result = this.register(decodeURIComponent(match[1] as string), schema);
      return 'id' in result
        ? send(response, 200, { id: result.id })
        : send(response, result.error, { error_code: result.error, message: result.message });
    }
    if (match && method === 'GET') {
      const versions = this.subjects.get(decodeURIComponent(match[1] as string));
      return versions
        ? send(
            response,
            200,
            versions.map((v) => v.version),
          )
        : send(response, 404, { error_code: 40401, message: 'Subject not found.' });
    }
    match = /^\/subjects\/([^/]+)$/.exec(path);
    if (match && method === 'POST') {
      const subject = decodeURIComponent(match[1] as string);
      const versions = this.subjects.get(subject);
      if (!versions)
        return send(response, 404, { error_code: 40401, message: `Subject '${subject}' not found.` });
      const schema = parseSchemaBody(body);
      const found = schema ? versions.find((v) => sameSchema(v.schema, schema)) : undefined;
      return found
        ? send(response, 200, { subject, id: found.id, version: found.version, schema: found.schema })
        : send(response, 404, { error_code: 40403, message: 'Schema not found' });
    }
    if (path === '/subjects' && method === 'GET') return send(response, 200, [...this.subjects.keys()]);
    return send(response, 404, { error_code: 404, message: 'HTTP 404 Not Found' });
  }
}

function parseSchemaBody(body: string): string | null {
  try {
    const schema = (JSON.parse(body) as { schema?: unknown }).schema;
    if (typeof schema !== 'string') return null;
    avro.Type.forSchema(JSON.parse(schema) as avro.Schema);
    return schema;
  } catch {
    return null;
  }
}

/** Same schema: equal as parsed JSON (key order and whitespace aside), docs and defaults included. */
function sameSchema(a: string, b: string): boolean {
  return canonical(JSON.parse(a)) === canonical(JSON.parse(b));
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** BACKWARD: the new schema can read data written with the latest one; null when it can. */
function backwardProblem(newSchema: string, latest: string): string | null {
  try {
    const reader = avro.Type.forSchema(JSON.parse(newSchema) as avro.Schema);
    reader.createResolver(avro.Type.forSchema(JSON.parse(latest) as avro.Schema));
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/vnd.schemaregistry.v1+json' });
  response.end(JSON.stringify(body));
}
