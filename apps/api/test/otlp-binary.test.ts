import { isDeepStrictEqual } from 'node:util'
import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { AnyValueSchema, KeyValueSchema } from '../src/generated/otlp/opentelemetry/proto/common/v1/common_pb.js'
import { ExportLogsServiceRequestSchema } from '../src/generated/otlp/opentelemetry/proto/collector/logs/v1/logs_service_pb.js'
import type { SeverityNumber } from '../src/generated/otlp/opentelemetry/proto/logs/v1/logs_pb.js'
import { readPlainRequest } from '../src/otlp/binary.js'

// The hand reader of OTLP's binary form (src/otlp/binary.ts) against fromBinary, which it stands
// in for: on every message it reads, the same messages, field for field; on every body it does
// not read (undefined), fromBinary decides. Random messages of every field, and random bytes.

type AnyInit = MessageInitShape<typeof AnyValueSchema>
type KeyValueInit = MessageInitShape<typeof KeyValueSchema>
type RequestInit = MessageInitShape<typeof ExportLogsServiceRequestSchema>

/** Text of whole code points, no U+FFFD (which the hand reader leaves to fromBinary). */
const text = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('\uFFFD'))
const bytes = fc.uint8Array({ maxLength: 16 })
const u32 = fc.integer({ min: 0, max: 0xffffffff })

const { any: anyValue, keyValue } = fc.letrec<{ any: AnyInit; keyValue: KeyValueInit }>((tie) => ({
  any: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant<AnyInit>({}),
    text.map((value): AnyInit => ({ value: { case: 'stringValue', value } })),
    fc.boolean().map((value): AnyInit => ({ value: { case: 'boolValue', value } })),
    fc
      .bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })
      .map((value): AnyInit => ({ value: { case: 'intValue', value } })),
    fc.double().map((value): AnyInit => ({ value: { case: 'doubleValue', value } })),
    bytes.map((value): AnyInit => ({ value: { case: 'bytesValue', value } })),
    fc
      .array(tie('any') as fc.Arbitrary<AnyInit>, { maxLength: 3 })
      .map((values): AnyInit => ({ value: { case: 'arrayValue', value: { values } } })),
    fc
      .array(tie('keyValue') as fc.Arbitrary<KeyValueInit>, { maxLength: 3 })
      .map((values): AnyInit => ({ value: { case: 'kvlistValue', value: { values } } })),
  ),
  keyValue: fc.record({ key: text, value: tie('any') as fc.Arbitrary<AnyInit> }, { requiredKeys: ['key'] }),
}))

const attributes = fc.array(keyValue, { maxLength: 3 })
const record = fc.record(
  {
    timeUnixNano: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    observedTimeUnixNano: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    severityNumber: fc.integer({ min: 0, max: 24 }),
    severityText: text,
    body: anyValue,
    attributes,
    droppedAttributesCount: u32,
    flags: u32,
    traceId: bytes,
    spanId: bytes,
    eventName: text,
  },
  { requiredKeys: [] },
)
const request: fc.Arbitrary<RequestInit> = fc.record({
  resourceLogs: fc.array(
    fc.record(
      {
        resource: fc.record({ attributes, droppedAttributesCount: u32 }, { requiredKeys: [] }),
        scopeLogs: fc.array(
          fc.record(
            {
              scope: fc.record(
                { name: text, version: text, attributes, droppedAttributesCount: u32 },
                { requiredKeys: [] },
              ),
              logRecords: fc.array(record, { maxLength: 4 }),
              schemaUrl: text,
            },
            { requiredKeys: [] },
          ),
          { maxLength: 3 },
        ),
        schemaUrl: text,
      },
      { requiredKeys: [] },
    ),
    { maxLength: 3 },
  ),
})

const encode = (init: RequestInit) =>
  Buffer.from(toBinary(ExportLogsServiceRequestSchema, create(ExportLogsServiceRequestSchema, init)))

/** fromBinary's reading, or the error it throws. */
function reference(body: Uint8Array) {
  try {
    return { message: fromBinary(ExportLogsServiceRequestSchema, body) }
  } catch (error) {
    return { error }
  }
}

describe('the hand reader of OTLP binary (otlp/binary.ts)', () => {
  it('reads every message an exporter can send as fromBinary does', () => {
    fc.assert(
      fc.property(request, (init) => {
        const body = encode(init)
        const mine = readPlainRequest(body)
        expect(mine).toBeDefined()
        expect(isDeepStrictEqual(mine, fromBinary(ExportLogsServiceRequestSchema, body))).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('on random changes to a body, reads only what fromBinary reads, and the same', () => {
    const change = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    )
    let read = 0
    let refused = 0
    fc.assert(
      fc.property(request, fc.array(change, { minLength: 1, maxLength: 3 }), (init, changes) => {
        let body = encode(init)
        for (const c of changes) {
          const at = body.length === 0 ? 0 : c.at % body.length
          if (c.kind === 'set' && body.length > 0) body[at] = c.byte
          else if (c.kind === 'cut') body = body.subarray(0, at)
          else if (c.kind === 'insert')
            body = Buffer.concat([body.subarray(0, at), Buffer.from([c.byte]), body.subarray(at)])
        }
        const mine = readPlainRequest(body)
        const theirs = reference(body)
        if (mine === undefined) return
        read += 1
        if ('error' in theirs) refused += 1
        expect(theirs.error).toBeUndefined()
        expect(isDeepStrictEqual(mine, theirs.message)).toBe(true)
      }),
      { numRuns: 1000 },
    )
    // The changes leave many bodies readable: the comparison was made, not passed over.
    expect(read).toBeGreaterThan(100)
    expect(refused).toBe(0)
  })

  it('leaves to fromBinary what is not the plain form', () => {
    const plain = encode({
      resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: { value: { case: 'stringValue', value: 'hello' } } }] }] }],
    })
    expect(readPlainRequest(plain)).toBeDefined()
    // An unknown field (99, varint) after the request's own.
    expect(readPlainRequest(Buffer.concat([plain, Buffer.from([0x98, 0x06, 0x01])]))).toBeUndefined()
    // resource_logs (1) with the varint wire type.
    expect(readPlainRequest(Buffer.from([0x08, 0x01]))).toBeUndefined()
    // A string that is not UTF-8: fromBinary refuses it.
    const bad = encode({ resourceLogs: [{ schemaUrl: 'ab' }] })
    bad[bad.length - 1] = 0xff
    expect(readPlainRequest(bad)).toBeUndefined()
    expect(() => fromBinary(ExportLogsServiceRequestSchema, bad)).toThrow(/not valid for encoding utf-8/)
    // Two resources in one ResourceLogs: fromBinary merges them.
    const resource = Buffer.from(
      toBinary(
        ExportLogsServiceRequestSchema,
        create(ExportLogsServiceRequestSchema, {
          resourceLogs: [{ resource: { droppedAttributesCount: 1 } }],
        }),
      ),
    )
    const inner = resource.subarray(2) // ResourceLogs' own bytes: the resource field
    const twice = Buffer.concat([Buffer.from([0x0a, inner.length * 2]), inner, inner])
    expect(readPlainRequest(twice)).toBeUndefined()
    expect(fromBinary(ExportLogsServiceRequestSchema, twice).resourceLogs[0]!.resource!.droppedAttributesCount).toBe(1)
    // Varints past their type: a uint32 of 35 bits (fromBinary keeps its low 32), an enum of -1
    // (ten bytes), an int64 whose tenth byte holds more than one bit.
    const resourceLogs = (resourceBytes: number[]) =>
      Buffer.from([0x0a, resourceBytes.length + 2, 0x0a, resourceBytes.length, ...resourceBytes])
    const wide = resourceLogs([0x10, 0xff, 0xff, 0xff, 0xff, 0x7f])
    expect(readPlainRequest(wide)).toBeUndefined()
    expect(fromBinary(ExportLogsServiceRequestSchema, wide).resourceLogs[0]!.resource!.droppedAttributesCount).toBe(
      0xffffffff,
    )
    const negative = encode({
      resourceLogs: [{ scopeLogs: [{ logRecords: [{ severityNumber: -1 as SeverityNumber }] }] }],
    })
    expect(readPlainRequest(negative)).toBeUndefined()
    expect(
      fromBinary(ExportLogsServiceRequestSchema, negative).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.severityNumber,
    ).toBe(-1)
    // An enum of 32 bits in five bytes, which fromBinary reads as negative.
    const record = [0x10, 0xff, 0xff, 0xff, 0xff, 0x0f]
    const scopeLogs = [0x12, record.length, ...record]
    const short = Buffer.from([0x0a, scopeLogs.length + 2, 0x12, scopeLogs.length, ...scopeLogs])
    expect(readPlainRequest(short)).toBeUndefined()
    expect(
      fromBinary(ExportLogsServiceRequestSchema, short).resourceLogs[0]!.scopeLogs[0]!.logRecords[0]!.severityNumber,
    ).toBe(-1)
    const anyInt = (tenth: number) => {
      const any = [0x18, ...Array<number>(9).fill(0x80), tenth]
      const keyValue = [0x0a, 0x00, 0x12, any.length, ...any]
      return resourceLogs([0x0a, keyValue.length, ...keyValue])
    }
    expect(readPlainRequest(anyInt(0x01))).toEqual(fromBinary(ExportLogsServiceRequestSchema, anyInt(0x01)))
    expect(readPlainRequest(anyInt(0x01))!.resourceLogs[0]!.resource!.attributes[0]!.value!.value.value).toBe(
      -(2n ** 63n),
    )
    expect(readPlainRequest(anyInt(0x02))).toBeUndefined()
    // Nesting deeper than the hand reader goes: arrays in arrays.
    let value: AnyInit = { value: { case: 'stringValue', value: 'deep' } }
    for (let i = 0; i < 40; i++) value = { value: { case: 'arrayValue', value: { values: [value] } } }
    const deep = encode({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ body: value }] }] }] })
    expect(readPlainRequest(deep)).toBeUndefined()
    expect(reference(deep).error).toBeUndefined()
  })
})
