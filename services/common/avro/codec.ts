// Typed Avro codec for one subject: writes with the newest schema we know, reads whatever schema
// version the writer used (resolving it to our reader schema, Avro's evolution rules).
import type avro from 'avsc';
import { DecodeError, FlywheelError } from '../errors.js';
import type { AvroType, SchemaRegistry, WriterSchema } from './registry.js';
import { HEADER_BYTES, unframe, writeHeader } from './wire.js';

export class AvroCodec<T> {
  private writerId: Promise<number> | undefined;
  // Resolvers by writer schema id; `null` marks "writer schema equals reader schema".
  private readonly resolvers = new Map<number, avro.Resolver | null>();
  private scratch = Buffer.allocUnsafe(4096);

  readonly readerType: AvroType;

  constructor(
    private readonly registry: SchemaRegistry,
    readonly subject: string,
    /** The newest schema: what this codec writes with and reads into. */
    private readonly writer: WriterSchema,
  ) {
    this.readerType = writer.type;
  }

  /** Id of the schema this codec writes with (resolved once per codec). */
  schemaId(): Promise<number> {
    this.writerId ??= this.registry.idFor(this.subject, this.writer).catch((error: unknown) => {
      this.writerId = undefined; // let a later call retry a failed lookup
      throw error;
    });
    return this.writerId;
  }

  async encode(value: T): Promise<Buffer> {
    return this.encodeWith(await this.schemaId(), value);
  }

  /** Synchronous encode with an id from `schemaId()`; for hot loops. */
  encodeWith(schemaId: number, value: T): Buffer {
    // Header and body written into one scratch buffer, then copied out once (toBuffer and
    // framing allocated and copied twice per message).
    for (;;) {
      const end = this.readerType.encode(value, this.scratch, HEADER_BYTES);
      if (end >= 0) {
        writeHeader(this.scratch, schemaId);
        return Buffer.from(this.scratch.subarray(0, end));
      }
      this.scratch = Buffer.allocUnsafe(2 * (this.scratch.length - end));
    }
  }

  /**
   * Synchronous encode of many values into one allocation; each returned buffer is a view of
   * it (a buffer per message cost an allocation and a copy each).
   */
  encodeAllWith(schemaId: number, values: readonly T[]): Buffer[] {
    const { slab, ends } = this.encodeAll(schemaId, values);
    let from = 0;
    return ends.map((end) => {
      const view = slab.subarray(from, end);
      from = end;
      return view;
    });
  }

  /**
   * Many values into one slab, value k ending at ends[k]. The slab owns its memory (never Node's
   * shared pool), so its ArrayBuffer can be transferred to another thread.
   */
  encodeAll(schemaId: number, values: readonly T[]): { slab: Buffer; ends: number[] } {
    let slab = Buffer.allocUnsafeSlow(Math.max(4096, values.length * 256));
    const ends: number[] = [];
    let start = 0;
    for (const value of values) {
      for (;;) {
        const end = this.readerType.encode(value, slab, start + HEADER_BYTES);
        if (end >= 0) {
          writeHeader(slab, schemaId, start);
          ends.push(end);
          start = end;
          break;
        }
        // Out of room (end is minus the bytes missing): a larger slab, the values so far copied over.
        const larger = Buffer.allocUnsafeSlow(2 * (slab.length - end));
        slab.copy(larger, 0, 0, start);
        slab = larger;
      }
    }
    return { slab, ends };
  }

  async decode(bytes: Buffer | null | undefined): Promise<T> {
    const { schemaId, body } = unframe(bytes);
    if (!this.resolvers.has(schemaId)) await this.prepareReader(schemaId);
    return this.read(schemaId, body);
  }

  /** Decode without awaiting when the writer schema is already known; returns undefined if not. */
  decodeKnown(bytes: Buffer | null | undefined): { value: T } | undefined {
    const { schemaId, body } = unframe(bytes);
    if (!this.resolvers.has(schemaId)) return undefined;
    return { value: this.read(schemaId, body) };
  }

  private async prepareReader(schemaId: number): Promise<void> {
    const writer = await this.registry.getById(schemaId);
    if (writer.equals(this.readerType)) {
      this.resolvers.set(schemaId, null);
      return;
    }
    try {
      this.resolvers.set(schemaId, this.readerType.createResolver(writer));
    } catch (cause) {
      throw new DecodeError(
        'FW_SCHEMA_MISMATCH',
        `writer schema ${schemaId} (${writer.name ?? 'anonymous'}) cannot be read as ${this.readerType.name ?? 'anonymous'}: ${(cause as Error).message}`,
        { cause },
      );
    }
  }

  private read(schemaId: number, body: Buffer): T {
    const resolver = this.resolvers.get(schemaId);
    try {
      return (resolver ? this.readerType.fromBuffer(body, resolver) : this.readerType.fromBuffer(body)) as T;
    } catch (cause) {
      if (cause instanceof FlywheelError) throw cause;
      throw new DecodeError(
        'FW_MALFORMED_AVRO',
        `Avro body does not decode with schema ${schemaId}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  }
}
