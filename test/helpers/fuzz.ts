// Absurd values for every field of every record type, from the Avro schemas: what a producer
// nobody here wrote could send. Used by the unit fuzz of the contract checks and by the
// integration fuzz of every consumer and HTTP door.
import avro from 'avsc';

export const NUMBERS = [
  NaN,
  Infinity,
  -Infinity,
  2 ** 53,
  -(2 ** 53),
  9e15,
  -1,
  0,
  1e308,
  2 ** 31 - 1,
  -(2 ** 31),
];

/** Strings of every awkward kind; `longest` caps the longest (Kafka's message size, say). */
export function strings(longest = 1024 * 1024): string[] {
  return ['', ' ', 'x'.repeat(longest), '\u0000', '💥'.repeat(300)];
}

/** Values a field of this Avro type can hold that a sane producer would not send. */
export function absurdValues(type: avro.Type, sample: unknown, longest?: number): unknown[] {
  if (avro.Type.isType(type, 'union:unwrapped', 'union:wrapped')) {
    const union = type as unknown as { types: avro.Type[] };
    return union.types.flatMap((t) => (t.typeName === 'null' ? [null] : absurdValues(t, sample, longest)));
  }
  switch (type.typeName) {
    case 'string':
      return strings(longest);
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return NUMBERS.filter((n) => type.isValid(n));
    case 'boolean':
      return [true, false];
    case 'array': {
      const items = (type as unknown as { itemsType: avro.Type }).itemsType;
      return [
        [],
        ...absurdValues(items, (sample as unknown[] | undefined)?.[0], longest).map((v) => [v]),
        new Array(200_000).fill(0),
      ].filter((v) => type.isValid(v));
    }
    case 'record':
      return mutations(type as avro.types.RecordType, (sample ?? {}) as Record<string, unknown>, longest).map(
        (m) => m.value,
      );
    default:
      return [];
  }
}

/** One record per (field, absurd value), nested records included. */
export function mutations(
  type: avro.types.RecordType,
  record: Record<string, unknown>,
  longest?: number,
): { field: string; value: Record<string, unknown> }[] {
  const out: { field: string; value: Record<string, unknown> }[] = [];
  for (const field of type.fields) {
    for (const value of absurdValues(field.type, record[field.name], longest)) {
      const mutated = { ...record, [field.name]: value };
      if (type.isValid(mutated)) out.push({ field: field.name, value: mutated });
    }
  }
  return out;
}
