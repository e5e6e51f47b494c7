import type { LogLine } from '@session-events/server-stubs'
import * as specValues from '@session-events/server-stubs/values'
import type { AnyValue, KeyValue } from '../generated/otlp/opentelemetry/proto/common/v1/common_pb.js'
import {
  SeverityNumber,
  type LogRecord,
  type ResourceLogs,
} from '../generated/otlp/opentelemetry/proto/logs/v1/logs_pb.js'

// OTLP records as the API's log lines: what a resource says of itself (the attributes that
// choose its session and run), and each record one line (more when its body is too long) with
// its time, level and trace context.

/** The longest line the API takes (the spec's `LogLine.line` `maxLength`). */
const MAX_LINE_LENGTH = specValues.schemas.LogLine.properties.line.maxLength
/** The longest level a line keeps (`LogLine.severity_text`'s `maxLength`). */
const MAX_SEVERITY_TEXT = specValues.schemas.LogLine.properties.severity_text.maxLength

/** The resource attributes that say where a resource's records go (semantic conventions' names). */
export interface ResourceIdentity {
  /** `service.name`; the SDKs' default when it has none. */
  serviceName: string
  serviceVersion: string | undefined
  /** `service.instance.id`, else the service's name: the run. */
  instanceId: string
  /** `session.id`: the session, when the resource names one. */
  sessionId: string | undefined
}

export function identityOf(resource: ResourceLogs): ResourceIdentity {
  const attributes = resource.resource?.attributes ?? []
  const text = (key: string) => {
    const value = attributes.find((a) => a.key === key)?.value?.value
    if (value === undefined || value.case === undefined) return undefined
    // A string as it is; a number or a boolean as its text; bytes, arrays and maps name nothing.
    const v = value.value
    const s =
      typeof v === 'string'
        ? v
        : typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean'
          ? String(v)
          : undefined
    if (s === undefined) return undefined
    return s === '' ? undefined : s
  }
  const serviceName = text('service.name') ?? 'unknown_service'
  return {
    serviceName,
    serviceVersion: text('service.version'),
    instanceId: text('service.instance.id') ?? serviceName,
    sessionId: text('session.id'),
  }
}

/** How many records a resource carries. */
export const recordCount = (resource: ResourceLogs) =>
  resource.scopeLogs.reduce((n, scope) => n + scope.logRecords.length, 0)

/** When a record was made, in ns since the epoch: its time, or when it was observed; 0 for neither. */
const timeOf = (record: LogRecord) => record.timeUnixNano || record.observedTimeUnixNano

/**
 * When a resource's records were made, in ms: its first record's time (or, without one, when it
 * was observed); undefined when neither is set. Its Idempotency-Key is kept by this time
 * (store/idempotency.ts), and a retry of the same body gives the same.
 */
export function timeOfRecords(resource: ResourceLogs): number | undefined {
  for (const scope of resource.scopeLogs) {
    for (const record of scope.logRecords) {
      const nanos = timeOf(record)
      return nanos > 0n ? Number(nanos / 1_000_000n) : undefined
    }
  }
  return undefined
}

/**
 * A resource's records as log lines, in order: the body as the line (a string as it is, any
 * other value as JSON), `stderr` from WARN up, cut into pieces of the API's longest line (never
 * inside a surrogate pair), as `session-events run` cuts a long line.
 */
export function logLinesOf(resource: ResourceLogs): LogLine[] {
  const lines: LogLine[] = []
  const times = new TimeText()
  for (const scope of resource.scopeLogs) {
    for (const record of scope.logRecords) {
      const type = record.severityNumber >= SeverityNumber.WARN ? 'stderr' : 'stdout'
      const text = lineOf(record.body)
      if (text.length <= MAX_LINE_LENGTH) {
        lines.push(withContext({ type, line: text }, record, times))
        continue
      }
      for (let start = 0; start < text.length; ) {
        let end = Math.min(start + MAX_LINE_LENGTH, text.length)
        const last = text.charCodeAt(end - 1)
        if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1
        lines.push(withContext({ type, line: text.slice(start, end) }, record, times))
        start = end
      }
    }
  }
  return lines
}

/** A line with what it keeps of its record besides the text: its time, level and trace, those it has. */
function withContext(line: LogLine, record: LogRecord, times: TimeText): LogLine {
  const time = times.of(timeOf(record))
  if (time !== undefined) line.time = time
  if (record.severityText !== '') line.severity_text = record.severityText.slice(0, MAX_SEVERITY_TEXT)
  if (record.traceId.length === 16 && record.traceId.some((b) => b !== 0))
    line.trace_id = Buffer.from(record.traceId).toString('hex')
  if (record.spanId.length === 8 && record.spanId.some((b) => b !== 0))
    line.span_id = Buffer.from(record.spanId).toString('hex')
  return line
}

/**
 * Nanoseconds since the epoch as RFC 3339 UTC to the millisecond. The records of one export are
 * mostly of one second: its text is made once (Date#toISOString costs more than the rest of a
 * line) and the milliseconds put after it.
 */
class TimeText {
  #second = NaN
  #prefix = ''
  of(nanos: bigint): string | undefined {
    if (nanos <= 0n) return undefined
    const ms = Number(nanos / 1_000_000n)
    // A time a Date cannot hold (past the year 275760) is left out rather than refused.
    if (ms > 8.64e15) return undefined
    const second = Math.floor(ms / 1000)
    if (second !== this.#second) {
      this.#second = second
      this.#prefix = new Date(second * 1000).toISOString().slice(0, -4)
    }
    return `${this.#prefix}${String(ms % 1000).padStart(3, '0')}Z`
  }
}

function lineOf(body: AnyValue | undefined): string {
  if (body?.value.case === 'stringValue') return body.value.value
  if (body === undefined || body.value.case === undefined) return ''
  return JSON.stringify(plain(body))
}

/** An AnyValue as the JSON value it stands for: arrays and maps as such, bytes in base64, 64-bit integers exactly. */
function plain(value: AnyValue | undefined): unknown {
  const v = value?.value
  switch (v?.case) {
    case undefined:
      return null
    case 'intValue':
      return Number.isSafeInteger(Number(v.value)) ? Number(v.value) : v.value.toString()
    case 'bytesValue':
      return Buffer.from(v.value).toString('base64')
    case 'arrayValue':
      return v.value.values.map(plain)
    case 'kvlistValue':
      return Object.fromEntries(v.value.values.map((kv: KeyValue) => [kv.key, plain(kv.value)]))
    default:
      return v!.value
  }
}
