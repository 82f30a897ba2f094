import assert from 'node:assert/strict';
import { deepEqual as looseDeepEqual } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import avro from 'avsc';
import { AvroCodec } from '../../services/common/avro/codec.js';
import { EmbeddedSchemaRegistry, SCHEMAS_DIR, loadSchemaFile } from '../../services/common/avro/registry.js';
import { frame, unframe } from '../../services/common/avro/wire.js';
import { createCodecs, type PurchaseEvent, type RecordKind } from '../../services/common/contracts.js';
import { DecodeError } from '../../services/common/errors.js';
import { sampleRecords } from '../helpers/records.js';

const registry = new EmbeddedSchemaRegistry();
const codecs = createCodecs(registry);

async function decodeCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof DecodeError, `expected a DecodeError, got ${String(error)}`);
    return error.code;
  }
}

describe('schemas', () => {
  it('every .avsc file is registered once with a unique id, and every field has a doc', () => {
    const files = readdirSync(SCHEMAS_DIR)
      .filter((f) => f.endsWith('.avsc'))
      .sort();
    assert.deepEqual(registry.entries.map((e) => e.file).sort(), files);
    for (const file of files) {
      const schema = JSON.parse(readFileSync(join(SCHEMAS_DIR, file), 'utf8')) as {
        namespace: string;
        doc: string;
        fields: { name: string; doc?: string }[];
      };
      assert.equal(schema.namespace, 'dev.flywheel', file);
      assert.ok(schema.doc, `${file} has a record doc`);
      for (const field of schema.fields) assert.ok(field.doc, `${file}: field ${field.name} has a doc`);
    }
  });

  it('each new version of a subject can read every older one (backward compatible)', () => {
    const subjects = new Set(registry.entries.map((e) => e.subject));
    for (const subject of subjects) {
      const versions = registry.entries
        .filter((e) => e.subject === subject)
        .sort((a, b) => a.version - b.version);
      for (let i = 1; i < versions.length; i++) {
        for (let j = 0; j < i; j++) {
          assert.doesNotThrow(
            () => versions[i]!.type.createResolver(versions[j]!.type),
            `${subject} v${versions[i]!.version} reads v${versions[j]!.version}`,
          );
        }
      }
    }
  });
});

describe('AvroCodec', () => {
  it('round-trips a sample record of every kind with the newest schema id of its subject', async () => {
    const samples = sampleRecords(1_800_000_000_000);
    for (const kind of Object.keys(samples) as RecordKind[]) {
      const codec = codecs[kind] as AvroCodec<unknown>;
      const bytes = await codec.encode(samples[kind]);
      assert.equal(unframe(bytes).schemaId, registry.latest(codec.subject).id, kind);
      // Loose equality: avsc returns records as instances of generated classes.
      looseDeepEqual(await codec.decode(bytes), samples[kind], kind);
    }
  });

  it('encodeWith frames the Avro body, into buffers of its own, at any size', async () => {
    const samples = sampleRecords(1_800_000_000_000);
    const codec = codecs.prediction;
    const id = await codec.schemaId();
    const small = codec.encodeWith(id, samples.prediction);
    const framed = (value: unknown) => frame(id, codec.readerType.toBuffer(value));
    assert.deepEqual(small, framed(samples.prediction));
    // Past the 4 KB scratch buffer: it grows, and the earlier result is untouched.
    const copy = Buffer.from(small);
    const large = { ...samples.prediction, userId: 'u'.repeat(20_000) };
    const big = codec.encodeWith(id, large);
    assert.deepEqual(big, framed(large));
    assert.deepEqual(small, copy);
    assert.deepEqual(codec.encodeWith(id, samples.prediction), copy);
  });

  it('encodeAllWith frames each value into views of one allocation, growing it as needed', async () => {
    const samples = sampleRecords(1_800_000_000_000);
    const codec = codecs.prediction;
    const id = await codec.schemaId();
    const values = Array.from({ length: 50 }, (_, i) => ({
      ...samples.prediction,
      predictionId: `p-${i}`,
      // One value far larger than the first guess at the slab's size: it grows mid-way.
      userId: i === 30 ? 'u'.repeat(40_000) : `user-${i}`,
    }));
    const encoded = codec.encodeAllWith(id, values);
    assert.equal(encoded.length, values.length);
    encoded.forEach((bytes, i) =>
      assert.deepEqual(bytes, frame(id, codec.readerType.toBuffer(values[i])), `value ${i}`),
    );
    assert.deepEqual(codec.encodeAllWith(id, []), []);
  });

  it('reads a ClickEvent written with schema v1 through the v2 reader, filling pageType with its default', async () => {
    const v1 = loadSchemaFile('ClickEvent.v1.avsc');
    const { pageType: _dropped, ...v1Click } = sampleRecords(1_800_000_000_000).click;
    const bytes = frame(1, v1.toBuffer(v1Click));
    const decoded = await codecs.click.decode(bytes);
    assert.equal(decoded.pageType, 'product');
    assert.equal(decoded.eventId, v1Click.eventId);
    assert.equal(decoded.price, v1Click.price);
  });

  it('writes ClickEvent with v2 (id 8), which a v1 reader cannot see the new field of but still reads', async () => {
    const bytes = await codecs.click.encode({ ...sampleRecords().click, pageType: 'cart' });
    const { schemaId, body } = unframe(bytes);
    assert.equal(schemaId, 8);
    const v1 = loadSchemaFile('ClickEvent.v1.avsc');
    const oldReader = v1.fromBuffer(body, v1.createResolver(loadSchemaFile('ClickEvent.v2.avsc'))) as Record<
      string,
      unknown
    >;
    assert.equal(oldReader.eventId, 'c-1');
    assert.equal('pageType' in oldReader, false);
  });

  it('rejects unknown ids, records of another schema and cut bodies with distinct codes', async () => {
    const good = await codecs.click.encode(sampleRecords().click);
    assert.equal(
      await decodeCode(codecs.click.decode(frame(4242, unframe(good).body))),
      'FW_UNKNOWN_SCHEMA_ID',
    );
    assert.equal(
      await decodeCode(codecs.click.decode(await codecs.purchase.encode(sampleRecords().purchase))),
      'FW_SCHEMA_MISMATCH',
    );
    assert.equal(
      await decodeCode(codecs.click.decode(good.subarray(0, good.length - 4))),
      'FW_MALFORMED_AVRO',
    );
    assert.equal(
      await decodeCode(codecs.click.decode(Buffer.concat([good, Buffer.from([1, 2, 3])]))),
      'FW_MALFORMED_AVRO',
    );
  });

  it('decodeKnown decodes synchronously only once the writer schema is cached', async () => {
    const codec = new AvroCodec<PurchaseEvent>(
      registry,
      'fw.events.purchase-value',
      registry.latest('fw.events.purchase-value'),
    );
    const bytes = await codec.encode(sampleRecords().purchase);
    assert.equal(codec.decodeKnown(bytes), undefined);
    await codec.decode(bytes);
    assert.equal(codec.decodeKnown(bytes)?.value.eventId, 'p-1');
  });

  it('decodes the body with a plain avsc type parsed from the .avsc file (no codec involved)', async () => {
    const bytes = await codecs.prediction.encode(sampleRecords().prediction);
    assert.equal(bytes[0], 0);
    assert.equal(bytes.readInt32BE(1), 12, 'Prediction v3');
    const type = avro.Type.forSchema(
      JSON.parse(readFileSync(join(SCHEMAS_DIR, 'Prediction.v3.avsc'), 'utf8')) as avro.Schema,
    );
    const record = type.fromBuffer(bytes.subarray(5)) as {
      predictionId: string;
      score: number;
      propensity: number;
      split: string | null;
    };
    assert.equal(record.predictionId, 'pr-1');
    assert.equal(record.split, null);
    assert.equal(record.score, 0.2);
    assert.equal(record.propensity, 1);
  });
});
