// The Confluent schema-registry client against a stand-in registry that checks BACKWARD
// compatibility, sits under a path and asks for credentials: what is registered, look-up before
// register, and which failures are the record's (an unknown id) and which the registry's.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  ConfluentSchemaRegistry,
  EmbeddedSchemaRegistry,
  loadWriterSchema,
} from '../../services/common/avro/registry.js';
import { AvroCodec } from '../../services/common/avro/codec.js';
import { unframe } from '../../services/common/avro/wire.js';
import { createCodecs } from '../../services/common/contracts.js';
import { FlywheelError, isRecordFault } from '../../services/common/errors.js';
import { sampleRecords } from '../helpers/records.js';
import { StandInRegistry } from '../helpers/schema-registry.js';

const CLICKS = 'fw.events.click-value';
const failsWith = (code: string, pattern?: RegExp) => (e: unknown) =>
  e instanceof FlywheelError && e.code === code && !isRecordFault(e) && (!pattern || pattern.test(e.message));

describe('Confluent schema registry client', () => {
  let registry: StandInRegistry;
  const credentials = { user: 'flywheel', password: 's3cret-pass' };
  const client = (extra: { autoRegister?: boolean; timeoutMs?: number; auth?: string } = {}) =>
    new ConfluentSchemaRegistry({ url: registry.url, auth: 'flywheel:s3cret-pass', ...extra });

  before(async () => {
    registry = await new StandInRegistry({ pathPrefix: '/apis/ccompat/v7', basicAuth: credentials }).start();
  });
  after(() => registry.stop());
  beforeEach(() => {
    registry.behaviour = 'normal';
  });

  it('registers the whole schema (docs, defaults, logical types) under a path, and decodes through it', async () => {
    const codecs = createCodecs(client(), new EmbeddedSchemaRegistry());
    const click = sampleRecords(1_800_000_000_000).click;
    const bytes = await codecs.click.encode(click);
    const id = unframe(bytes).schemaId;
    const registered = JSON.parse(registry.schemaOf(id) ?? 'null') as {
      doc?: string;
      fields: { name: string; doc?: string; default?: unknown; type: unknown }[];
    };
    assert.match(registered.doc ?? '', /clicked/);
    const eventTime = registered.fields.find((f) => f.name === 'eventTime');
    assert.deepEqual(eventTime?.type, { type: 'long', logicalType: 'timestamp-millis' });
    assert.ok(eventTime?.doc, 'field docs are registered');
    assert.equal(registered.fields.find((f) => f.name === 'pageType')?.default, 'product');
    const before = registry.requests.length;
    assert.equal((await codecs.click.encode(click)).readInt32BE(1), id, 'the id is cached');
    assert.equal(registry.requests.length, before);
    // A fresh client (another process) resolves the id from the registry.
    const reader = createCodecs(client(), new EmbeddedSchemaRegistry());
    assert.equal((await reader.click.decode(bytes)).eventId, click.eventId);
  });

  it('ClickEvent v1 then v2 pass a BACKWARD check through the client; a v2 without the default does not', async () => {
    const subject = 'compat.check-value';
    const v1 = new AvroCodec(client(), subject, loadWriterSchema('ClickEvent.v1.avsc'));
    const v2 = new AvroCodec(client(), subject, loadWriterSchema('ClickEvent.v2.avsc'));
    const v1Id = await v1.schemaId();
    assert.ok((await v2.schemaId()) > v1Id, 'v2 adds pageType with a default: compatible');
    const broken = loadWriterSchema('ClickEvent.v2.avsc');
    const json = JSON.parse(broken.text) as { fields: { name: string; default?: unknown }[] };
    delete json.fields.find((f) => f.name === 'pageType')?.default;
    const noDefault = new AvroCodec(client(), 'compat.other-value', loadWriterSchema('ClickEvent.v1.avsc'));
    await noDefault.schemaId();
    const incompatible = new AvroCodec(client(), 'compat.other-value', {
      type: broken.type,
      text: JSON.stringify(json),
    });
    await assert.rejects(incompatible.schemaId(), failsWith('FW_SCHEMA_REGISTRY_REFUSED', /409/));
  });

  it('looks a schema up before registering: a read-only registry works once the schemas are there', async () => {
    const readOnly = await new StandInRegistry({ readOnly: true }).start();
    try {
      const v2 = loadWriterSchema('ClickEvent.v2.avsc').text;
      const { id } = readOnly.register(CLICKS, v2) as { id: number };
      const codecs = createCodecs(
        new ConfluentSchemaRegistry({ url: readOnly.url, autoRegister: false }),
        new EmbeddedSchemaRegistry(),
      );
      assert.equal(unframe(await codecs.click.encode(sampleRecords().click)).schemaId, id);
      assert.deepEqual(readOnly.requests, [`POST /subjects/${encodeURIComponent(CLICKS)}`]);
      await assert.rejects(
        codecs.purchase.encode(sampleRecords().purchase),
        failsWith(
          'FW_SCHEMA_REGISTRY_REFUSED',
          /not registered under fw\.events\.purchase-value.*AUTO_REGISTER/,
        ),
      );
      // Allowed to register, the read-only registry's own refusal comes back with its text.
      const registering = createCodecs(
        new ConfluentSchemaRegistry(readOnly.url),
        new EmbeddedSchemaRegistry(),
      );
      await assert.rejects(
        registering.purchase.encode(sampleRecords().purchase),
        failsWith('FW_SCHEMA_REGISTRY_REFUSED', /403 \(error_code 40301\).*denied operation Write/),
      );
    } finally {
      await readOnly.stop();
    }
  });

  it('an id the registry does not know is the record’s fault, asked once; a wrong path is not', async () => {
    const registered = client();
    await assert.rejects(
      registered.getById(4242),
      (e: unknown) => isRecordFault(e) && e.code === 'FW_UNKNOWN_SCHEMA_ID',
    );
    const asked = registry.requests.length;
    await assert.rejects(registered.getById(4242), (e: unknown) => isRecordFault(e));
    assert.equal(registry.requests.length, asked, 'the unknown id is remembered');
    const wrongPath = new ConfluentSchemaRegistry({
      url: `${registry.url}/nope`,
      auth: 'flywheel:s3cret-pass',
    });
    await assert.rejects(wrongPath.getById(1), failsWith('FW_SCHEMA_REGISTRY_REFUSED', /404/));
  });

  it('refusals, failures, hangs and an unreachable registry are the registry’s: retriable, with its text, no secrets', async () => {
    const purchase = sampleRecords().purchase;
    registry.behaviour = 'refuse-register';
    await assert.rejects(
      createCodecs(client(), new EmbeddedSchemaRegistry()).purchase.encode(purchase),
      failsWith('FW_SCHEMA_REGISTRY_REFUSED', /409.*incompatible with an earlier schema/),
    );
    registry.behaviour = 'error';
    await assert.rejects(
      client().getById(1),
      failsWith('FW_SCHEMA_REGISTRY_REFUSED', /500.*backend data store/),
    );
    registry.behaviour = 'hang';
    await assert.rejects(
      client({ timeoutMs: 200 }).getById(1),
      failsWith('FW_SCHEMA_REGISTRY_UNAVAILABLE', /did not answer within 200 ms/),
    );
    registry.behaviour = 'normal';
    await assert.rejects(
      client({ auth: 'flywheel:wrong-pass' }).getById(1),
      (e: unknown) => failsWith('FW_SCHEMA_REGISTRY_REFUSED', /401/)(e) && !/wrong-pass/.test(String(e)),
    );
    const inUrl = new ConfluentSchemaRegistry({
      url: registry.url.replace('//', '//flywheel:s3cret-pass@'),
    });
    assert.doesNotMatch(inUrl.shownUrl, /s3cret/);
    const codecs = createCodecs(inUrl, new EmbeddedSchemaRegistry());
    assert.ok(unframe(await codecs.purchase.encode(purchase)).schemaId > 0, 'credentials in the URL work');
    const down = new ConfluentSchemaRegistry({ url: 'http://127.0.0.1:9', timeoutMs: 500 });
    await assert.rejects(
      down.getById(1),
      (e: unknown) =>
        failsWith('FW_SCHEMA_REGISTRY_UNAVAILABLE', /unreachable/)(e) && (e as FlywheelError).retriable,
    );
  });
});
