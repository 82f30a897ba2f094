// The Confluent schema-registry client against a small in-process server that speaks the two
// REST calls it uses (register under a subject, fetch by id), including failure answers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { ConfluentSchemaRegistry, EmbeddedSchemaRegistry } from '../../services/common/avro/registry.js';
import { unframe } from '../../services/common/avro/wire.js';
import { createCodecs } from '../../services/common/contracts.js';
import { FlywheelError } from '../../services/common/errors.js';
import { sampleRecords } from '../helpers/records.js';

describe('Confluent schema registry client', () => {
  let server: FastifyInstance;
  let url: string;
  const schemas: string[] = [];
  let failNext = 0;

  before(async () => {
    server = Fastify();
    server.addContentTypeParser(
      'application/vnd.schemaregistry.v1+json',
      { parseAs: 'string' },
      (_req, body, done) => {
        done(null, JSON.parse(body as string));
      },
    );
    server.post<{ Params: { subject: string }; Body: { schema: string } }>(
      '/subjects/:subject/versions',
      (request, reply) => {
        if (failNext > 0) {
          failNext--;
          return reply.status(500).send({ error_code: 50001, message: 'store unavailable' });
        }
        const existing = schemas.indexOf(request.body.schema);
        if (existing >= 0) return { id: 100 + existing };
        schemas.push(request.body.schema);
        return { id: 100 + schemas.length - 1 };
      },
    );
    server.get<{ Params: { id: string } }>('/schemas/ids/:id', (request, reply) => {
      const schema = schemas[Number(request.params.id) - 100];
      if (!schema) return reply.status(404).send({ error_code: 40403, message: 'Schema not found' });
      return { schema };
    });
    await server.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(server.server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  it('registers the writer schema, frames with the registry id, and decodes through the registry', async () => {
    const codecs = createCodecs(new ConfluentSchemaRegistry(url), new EmbeddedSchemaRegistry());
    const click = sampleRecords(1_800_000_000_000).click;
    const bytes = await codecs.click.encode(click);
    assert.equal(unframe(bytes).schemaId, 100);
    assert.equal(
      (await codecs.click.encode(click)).readInt32BE(1),
      100,
      'the id is cached, not registered twice',
    );
    assert.equal(schemas.length, 1);
    // A fresh client (another process) resolves the id from the registry.
    const reader = createCodecs(new ConfluentSchemaRegistry(url), new EmbeddedSchemaRegistry());
    assert.equal((await reader.click.decode(bytes)).eventId, click.eventId);
  });

  it('answers an unknown id with FW_UNKNOWN_SCHEMA_ID and an outage with a retriable error', async () => {
    const registry = new ConfluentSchemaRegistry(url);
    await assert.rejects(
      registry.getById(4242),
      (e: unknown) => e instanceof FlywheelError && e.code === 'FW_UNKNOWN_SCHEMA_ID' && !e.retriable,
    );
    failNext = 1;
    const codecs = createCodecs(registry, new EmbeddedSchemaRegistry());
    await assert.rejects(
      codecs.purchase.encode(sampleRecords().purchase),
      (e: unknown) => e instanceof FlywheelError && e.retriable,
    );
    // The failed lookup is not cached: the next call registers.
    assert.equal(unframe(await codecs.purchase.encode(sampleRecords().purchase)).schemaId, 101);
    const down = new ConfluentSchemaRegistry('http://127.0.0.1:9', 500);
    await assert.rejects(
      down.getById(1),
      (e: unknown) =>
        e instanceof FlywheelError && e.code === 'FW_SCHEMA_REGISTRY_UNAVAILABLE' && e.retriable,
    );
  });
});
