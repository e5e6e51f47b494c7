import type { LogLine } from '@session-events/server-stubs'
import * as specValues from '@session-events/server-stubs/values'
import type { AnyValue, KeyValue } from '../generated/otlp/opentelemetry/proto/common/v1/common_pb.js'
import { SeverityNumber, type ResourceLogs } from '../generated/otlp/opentelemetry/proto/logs/v1/logs_pb.js'

// OTLP records as the API's log lines: what a resource says of itself (the attributes that
// choose its session and run), and each record one line (more when its body is too long).

/** The longest line the API takes (the spec's `LogLine.line` `maxLength`). */
const MAX_LINE_LENGTH = specValues.schemas.LogLine.properties.line.maxLength

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
    const s = value.case === 'stringValue' ? value.value : String(value.value)
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

/**
 * A resource's records as log lines, in order: the body as the line (a string as it is, any
 * other value as JSON), `stderr` from WARN up, cut into pieces of the API's longest line (never
 * inside a surrogate pair), as `session-events run` cuts a long line.
 */
export function logLinesOf(resource: ResourceLogs): LogLine[] {
  const lines: LogLine[] = []
  for (const scope of resource.scopeLogs) {
    for (const record of scope.logRecords) {
      const type = record.severityNumber >= SeverityNumber.WARN ? 'stderr' : 'stdout'
      const text = lineOf(record.body)
      if (text.length <= MAX_LINE_LENGTH) {
        lines.push({ type, line: text })
        continue
      }
      for (let start = 0; start < text.length; ) {
        let end = Math.min(start + MAX_LINE_LENGTH, text.length)
        const last = text.charCodeAt(end - 1)
        if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1
        lines.push({ type, line: text.slice(start, end) })
        start = end
      }
    }
  }
  return lines
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
