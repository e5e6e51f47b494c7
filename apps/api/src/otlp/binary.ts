import {
  AnyValueSchema,
  ArrayValueSchema,
  InstrumentationScopeSchema,
  KeyValueListSchema,
  KeyValueSchema,
  type AnyValue,
  type ArrayValue,
  type InstrumentationScope,
  type KeyValue,
  type KeyValueList,
} from '../generated/otlp/opentelemetry/proto/common/v1/common_pb.js'
import {
  ExportLogsServiceRequestSchema,
  type ExportLogsServiceRequest,
} from '../generated/otlp/opentelemetry/proto/collector/logs/v1/logs_service_pb.js'
import {
  LogRecordSchema,
  ResourceLogsSchema,
  ScopeLogsSchema,
  type LogRecord,
  type ResourceLogs,
  type ScopeLogs,
} from '../generated/otlp/opentelemetry/proto/logs/v1/logs_pb.js'
import { ResourceSchema, type Resource } from '../generated/otlp/opentelemetry/proto/resource/v1/resource_pb.js'
import { field, fieldOf, nested, NOT_PLAIN, Reader, tag, Wire, type Bytes } from './binary-reader.js'

// The binary form of an ExportLogsServiceRequest as exporters send it, read by hand: the
// intake's hot path. fromBinary (@bufbuild/protobuf) reads any message by reflection; for the
// bench's bodies of 100 records it took 70–80 µs a request, most of it making each message field
// by field, against about 27 µs here, which builds each message whole. The wire itself (the
// cursor, tags, nesting) is binary-reader.ts.
//
// One rule keeps it to fromBinary's word: it reads only the plain form (every field of the
// pinned .proto files with its own wire type, each singular message and each AnyValue's value at
// most once, strings of valid UTF-8, no unknown field, no group, nesting well under fromBinary's
// limit), and gives up on anything else by returning undefined: the caller then reads the body
// with fromBinary, which decides and words any refusal. What it reads, it reads into the
// messages fromBinary makes, field for field (test/otlp-binary.test.ts holds the two to each
// other on generated messages and on random bytes).

/** An absent bytes field: one empty array for every message, as create() gives them (a new one each took half the time here). */
const NO_BYTES = new Uint8Array(0)

/**
 * The request in `body`, as fromBinary(ExportLogsServiceRequestSchema, body) reads it; undefined
 * where the body is not in the plain form (above), for fromBinary to read.
 */
export function readPlainRequest(body: Uint8Array): ExportLogsServiceRequest | undefined {
  const r = new Reader(body)
  try {
    const resourceLogs: ResourceLogs[] = []
    while (r.pos < body.length) {
      const t = tag(r)
      if (fieldOf(t) !== 1) throw NOT_PLAIN
      resourceLogs.push(nested(r, t, 1, readResourceLogs))
    }
    return { $typeName: ExportLogsServiceRequestSchema.typeName as ExportLogsServiceRequest['$typeName'], resourceLogs }
  } catch (error) {
    if (error === NOT_PLAIN) return undefined
    throw error
  }
}

function readResourceLogs(r: Reader, end: number, depth: number): ResourceLogs {
  let resource: Resource | undefined
  const scopeLogs: ScopeLogs[] = []
  let schemaUrl = ''
  while (r.pos < end) {
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        if (resource) throw NOT_PLAIN // a second one is merged into the first: fromBinary's
        resource = nested(r, t, depth, readResource)
        break
      case 2:
        scopeLogs.push(nested(r, t, depth, readScopeLogs))
        break
      case 3:
        schemaUrl = field(r, t, Wire.Length).string()
        break
      default:
        throw NOT_PLAIN
    }
  }
  const message: ResourceLogs = {
    $typeName: ResourceLogsSchema.typeName as ResourceLogs['$typeName'],
    scopeLogs,
    schemaUrl,
  }
  if (resource) message.resource = resource
  return message
}

function readResource(r: Reader, end: number, depth: number): Resource {
  const attributes: KeyValue[] = []
  let droppedAttributesCount = 0
  while (r.pos < end) {
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        attributes.push(nested(r, t, depth, readKeyValue))
        break
      case 2:
        droppedAttributesCount = field(r, t, Wire.Varint).uint32()
        break
      default:
        throw NOT_PLAIN
    }
  }
  return { $typeName: ResourceSchema.typeName as Resource['$typeName'], attributes, droppedAttributesCount }
}

function readScopeLogs(r: Reader, end: number, depth: number): ScopeLogs {
  let scope: InstrumentationScope | undefined
  const logRecords: LogRecord[] = []
  let schemaUrl = ''
  while (r.pos < end) {
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        if (scope) throw NOT_PLAIN
        scope = nested(r, t, depth, readScope)
        break
      case 2:
        logRecords.push(nested(r, t, depth, readLogRecord))
        break
      case 3:
        schemaUrl = field(r, t, Wire.Length).string()
        break
      default:
        throw NOT_PLAIN
    }
  }
  const message: ScopeLogs = { $typeName: ScopeLogsSchema.typeName as ScopeLogs['$typeName'], logRecords, schemaUrl }
  if (scope) message.scope = scope
  return message
}

function readScope(r: Reader, end: number, depth: number): InstrumentationScope {
  let name = ''
  let version = ''
  const attributes: KeyValue[] = []
  let droppedAttributesCount = 0
  while (r.pos < end) {
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        name = field(r, t, Wire.Length).string()
        break
      case 2:
        version = field(r, t, Wire.Length).string()
        break
      case 3:
        attributes.push(nested(r, t, depth, readKeyValue))
        break
      case 4:
        droppedAttributesCount = field(r, t, Wire.Varint).uint32()
        break
      default:
        throw NOT_PLAIN
    }
  }
  return {
    $typeName: InstrumentationScopeSchema.typeName as InstrumentationScope['$typeName'],
    name,
    version,
    attributes,
    droppedAttributesCount,
  }
}

function readLogRecord(r: Reader, end: number, depth: number): LogRecord {
  let timeUnixNano = 0n
  let observedTimeUnixNano = 0n
  let severityNumber = 0
  let severityText = ''
  let body: AnyValue | undefined
  const attributes: KeyValue[] = []
  let droppedAttributesCount = 0
  let flags = 0
  let traceId: Bytes | undefined
  let spanId: Bytes | undefined
  let eventName = ''
  while (r.pos < end) {
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        timeUnixNano = field(r, t, Wire.Fixed64).fixed64()
        break
      case 2:
        severityNumber = field(r, t, Wire.Varint).int32()
        break
      case 3:
        severityText = field(r, t, Wire.Length).string()
        break
      case 5:
        if (body) throw NOT_PLAIN
        body = nested(r, t, depth, readAnyValue)
        break
      case 6:
        attributes.push(nested(r, t, depth, readKeyValue))
        break
      case 7:
        droppedAttributesCount = field(r, t, Wire.Varint).uint32()
        break
      case 8:
        flags = field(r, t, Wire.Fixed32).fixed32()
        break
      case 9:
        traceId = field(r, t, Wire.Length).bytes()
        break
      case 10:
        spanId = field(r, t, Wire.Length).bytes()
        break
      case 11:
        observedTimeUnixNano = field(r, t, Wire.Fixed64).fixed64()
        break
      case 12:
        eventName = field(r, t, Wire.Length).string()
        break
      default:
        throw NOT_PLAIN
    }
  }
  const message: LogRecord = {
    $typeName: LogRecordSchema.typeName as LogRecord['$typeName'],
    timeUnixNano,
    observedTimeUnixNano,
    severityNumber,
    severityText,
    attributes,
    droppedAttributesCount,
    flags,
    traceId: traceId ?? NO_BYTES,
    spanId: spanId ?? NO_BYTES,
    eventName,
  }
  if (body) message.body = body
  return message
}

function readKeyValue(r: Reader, end: number, depth: number): KeyValue {
  let key = ''
  let value: AnyValue | undefined
  while (r.pos < end) {
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        key = field(r, t, Wire.Length).string()
        break
      case 2:
        if (value) throw NOT_PLAIN
        value = nested(r, t, depth, readAnyValue)
        break
      default:
        throw NOT_PLAIN
    }
  }
  const message: KeyValue = { $typeName: KeyValueSchema.typeName as KeyValue['$typeName'], key }
  if (value) message.value = value
  return message
}

function readAnyValue(r: Reader, end: number, depth: number): AnyValue {
  let value: AnyValue['value'] = { case: undefined }
  while (r.pos < end) {
    // A second value replaces or merges into the first, as fromBinary decides.
    if (value.case !== undefined) throw NOT_PLAIN
    const t = tag(r)
    switch (fieldOf(t)) {
      case 1:
        value = { case: 'stringValue', value: field(r, t, Wire.Length).string() }
        break
      case 2:
        value = { case: 'boolValue', value: field(r, t, Wire.Varint).bool() }
        break
      case 3:
        value = { case: 'intValue', value: field(r, t, Wire.Varint).int64() }
        break
      case 4:
        value = { case: 'doubleValue', value: field(r, t, Wire.Fixed64).double() }
        break
      case 5:
        value = { case: 'arrayValue', value: nested(r, t, depth, readArrayValue) }
        break
      case 6:
        value = { case: 'kvlistValue', value: nested(r, t, depth, readKeyValueList) }
        break
      case 7:
        value = { case: 'bytesValue', value: field(r, t, Wire.Length).bytes() }
        break
      default:
        throw NOT_PLAIN
    }
  }
  return { $typeName: AnyValueSchema.typeName as AnyValue['$typeName'], value }
}

function readArrayValue(r: Reader, end: number, depth: number): ArrayValue {
  const values: AnyValue[] = []
  while (r.pos < end) {
    const t = tag(r)
    if (fieldOf(t) !== 1) throw NOT_PLAIN
    values.push(nested(r, t, depth, readAnyValue))
  }
  return { $typeName: ArrayValueSchema.typeName as ArrayValue['$typeName'], values }
}

function readKeyValueList(r: Reader, end: number, depth: number): KeyValueList {
  const values: KeyValue[] = []
  while (r.pos < end) {
    const t = tag(r)
    if (fieldOf(t) !== 1) throw NOT_PLAIN
    values.push(nested(r, t, depth, readKeyValue))
  }
  return { $typeName: KeyValueListSchema.typeName as KeyValueList['$typeName'], values }
}
