import { createSpecValidator, loadSpec } from '@session-events/openapi'
import { field, readEventStream, throughEvent, type ReadOptions, type SseMessage, type StreamRead } from './sse.js'

// The spec, read once, and what the suites need from it: its operations with their parameters
// and declared responses, and one function that holds a response to what the spec declares for
// it. Nothing here knows a field of any response: shapes come from the spec's schemas.

export type Schema = Record<string, any>

export const spec = loadSpec()
export const validator = createSpecValidator(spec)

const escapePointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1')
const unescapePointer = (segment: string) => segment.replace(/~1/g, '/').replace(/~0/g, '~')

/** The node at a local JSON pointer (`#/components/schemas/SessionEvent`). */
export function at(pointer: string): any {
  let node: any = spec
  for (const segment of pointer.replace(/^#\/?/, '').split('/').filter(Boolean)) {
    node = node?.[unescapePointer(segment)]
    if (node === undefined) throw new Error(`nothing at ${pointer}`)
  }
  return node
}

/** Follows a chain of `$ref`s: the node it ends on, and that node's pointer. */
export function resolve(node: any, pointer: string): { node: any; pointer: string } {
  const seen = new Set<string>()
  while (node && typeof node === 'object' && typeof node.$ref === 'string') {
    if (seen.has(node.$ref)) throw new Error(`$ref cycle at ${node.$ref}`)
    seen.add(node.$ref)
    pointer = node.$ref
    node = at(pointer)
  }
  return { node, pointer }
}

/** A schema with every `$ref` inlined (the parameter schemas of this spec have no cycles). */
export function deref(schema: any, depth = 0): any {
  if (depth > 32) throw new Error('schema too deep to inline')
  if (Array.isArray(schema)) return schema.map((s) => deref(s, depth + 1))
  if (!schema || typeof schema !== 'object') return schema
  if (typeof schema.$ref === 'string') {
    const { $ref, ...rest } = schema
    return { ...deref(at($ref), depth + 1), ...deref(rest, depth + 1) }
  }
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, deref(v, depth + 1)]))
}

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header' | 'cookie'
  required: boolean
  style?: string
  explode?: boolean
  /** The schema with every $ref inlined. */
  schema: Schema
  /** Where the schema sits in the spec, for the validator. */
  schemaPointer: string
  /** The component name of the schema, when it is a `$ref` to one (`SessionId`). */
  schemaName?: string
}

export interface DeclaredHeader {
  name: string
  required: boolean
  schema: Schema
  schemaPointer: string
}

export interface DeclaredResponse {
  status: string
  pointer: string
  headers: DeclaredHeader[]
  /** Media type → pointer of its schema. */
  content: Record<string, string | undefined>
}

export interface RequestBody {
  required: boolean
  /** The media type the body is sent as (the spec's only one: `application/json`). */
  mediaType: string
  /** The schema with every $ref inlined. */
  schema: Schema
  /** Where the schema sits in the spec, for the validator. */
  schemaPointer: string
}

export interface Operation {
  operationId: string
  method: string
  /** The path template, such as `/sessions/{sessionId}/events`. */
  path: string
  parameters: Parameter[]
  /** The request body the operation takes, if any. */
  requestBody?: RequestBody
  responses: Record<string, DeclaredResponse>
}

function readParameter(raw: any, pointer: string): Parameter {
  const { node, pointer: p } = resolve(raw, pointer)
  const schemaRef = node.schema?.$ref as string | undefined
  return {
    name: node.name,
    in: node.in,
    required: node.required === true,
    ...(node.style !== undefined && { style: node.style }),
    ...(node.explode !== undefined && { explode: node.explode }),
    schema: deref(node.schema),
    schemaPointer: `${p}/schema`,
    ...(schemaRef?.startsWith('#/components/schemas/') && {
      schemaName: schemaRef.slice('#/components/schemas/'.length),
    }),
  }
}

function readResponse(status: string, raw: any, pointer: string): DeclaredResponse {
  const { node, pointer: p } = resolve(raw, pointer)
  const headers = Object.entries(node.headers ?? {}).map(([name, h]) => {
    const header = resolve(h, `${p}/headers/${escapePointer(name)}`)
    return {
      name,
      required: header.node.required === true,
      schema: deref(header.node.schema),
      schemaPointer: `${header.pointer}/schema`,
    }
  })
  const content = Object.fromEntries(
    Object.entries(node.content ?? {}).map(([media, m]: [string, any]) => [
      media.toLowerCase(),
      m.schema ? `${p}/content/${escapePointer(media)}/schema` : undefined,
    ]),
  )
  return { status, pointer: p, headers, content }
}

function readRequestBody(raw: any, pointer: string): RequestBody {
  const { node, pointer: p } = resolve(raw, pointer)
  const media = Object.keys(node.content ?? {})
  if (media.length !== 1)
    throw new Error(`${p}: the suite knows request bodies of one media type, not ${media.join(', ') || 'none'}`)
  const mediaType = media[0]!
  return {
    required: node.required === true,
    mediaType,
    schema: deref(node.content[mediaType].schema),
    schemaPointer: `${p}/content/${escapePointer(mediaType)}/schema`,
  }
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

/**
 * Every operation of the spec, in the spec's order, but those whose body its handler reads
 * (`x-read-by-handler`: POST /v1/logs, OTLP/HTTP, protobuf or OTLP JSON, answered in OTLP's own
 * shapes), which apps/api/test/otlp.test.ts tests with the OpenTelemetry exporters.
 */
export const allOperations: Operation[] = Object.entries(spec.paths as Record<string, any>).flatMap(([path, item]) => {
  const itemPointer = `#/paths/${escapePointer(path)}`
  const shared = (item.parameters ?? []).map((p: any, i: number) => readParameter(p, `${itemPointer}/parameters/${i}`))
  return METHODS.filter((m) => item[m] && !item[m].requestBody?.['x-read-by-handler']).map((method) => {
    const op = item[method]
    const opPointer = `${itemPointer}/${method}`
    const own: Parameter[] = (op.parameters ?? []).map((p: any, i: number) =>
      readParameter(p, `${opPointer}/parameters/${i}`),
    )
    // An operation's parameter overrides a path item's of the same name and location.
    const parameters = [
      ...shared.filter((s: Parameter) => !own.some((o) => o.name === s.name && o.in === s.in)),
      ...own,
    ]
    const responses = Object.fromEntries(
      Object.entries(op.responses ?? {}).map(([status, r]) => [
        status,
        readResponse(status, r, `${opPointer}/responses/${status}`),
      ]),
    )
    return {
      operationId: op.operationId,
      method: method.toUpperCase(),
      path,
      parameters,
      ...(op.requestBody && { requestBody: readRequestBody(op.requestBody, `${opPointer}/requestBody`) }),
      responses,
    }
  })
})

/**
 * Operations of the spec that the suites do not drive yet, by name, so that none is skipped
 * quietly: `the suites drive every operation` fails while this is not empty, and the conformance
 * count still counts their pairs. Empty: streamSessionEvents (`text/event-stream`, a response that
 * does not end), the last to come into the spec, is driven too; checkResponse reads a stream only
 * as far as a test needs.
 */
export const NOT_DRIVEN_YET: ReadonlySet<string> = new Set<string>()

/** The operations the suites drive: every one of the spec but those NOT_DRIVEN_YET. */
export const operations: Operation[] = allOperations.filter((op) => !NOT_DRIVEN_YET.has(op.operationId))

/**
 * The schema of the ids a list's positions stand for (its `after`): a cursor of the list holds
 * one of them (an event's for events, a session's for sessions).
 */
export const positionSchema = (op: Operation): Schema => {
  const after = op.parameters.find((p) => p.in === 'query' && p.name === 'after')
  if (!after) throw new Error(`${op.operationId} is not a list: it has no \`after\``)
  return after.schema
}
/** The pattern of the ids a list's cursors hold. */
export const positionPattern = (op: Operation) => new RegExp(positionSchema(op).pattern as string)

export function operation(operationId: string): Operation {
  const op = allOperations.find((o) => o.operationId === operationId)
  if (!op) throw new Error(`the spec has no operation ${operationId}`)
  return op
}

/** Every operation×status pair the spec declares, as `listSessionEvents 200`. */
export const declaredPairs = allOperations.flatMap((op) =>
  Object.keys(op.responses).map((status) => `${op.operationId} ${status}`),
)

/** The declared response for a status: exact, then `4XX`-style ranges, then `default`. */
export function declaredResponse(op: Operation, status: number): DeclaredResponse | undefined {
  return op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`] ?? op.responses.default
}

/** Headers any HTTP response may carry that an API description does not list. */
export const TRANSPORT_HEADERS = new Set([
  'content-type',
  'content-length',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  // For browsers, on every answer of the server: a body is what its content-type says.
  'x-content-type-options',
])

/** A header's text as the value its schema describes (headers are `simple` style). */
function headerValue(text: string, schema: Schema): unknown {
  const types = [schema.type].flat()
  if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(text)) return Number(text)
  if (types.includes('boolean') && (text === 'true' || text === 'false')) return text === 'true'
  return text
}

export interface CheckedResponse {
  status: number
  headers: Headers
  /** The body as read: all of it, or for a stream the messages read (see `CheckOptions`). */
  text: string
  /** The parsed body, when it is JSON; for a stream, the SessionEvents its `session.event` messages carry. */
  body: unknown
  /** For a stream (`text/event-stream`), the messages read. */
  messages?: SseMessage[]
  /** Every way the response departs from what the spec declares for it; empty when none. */
  problems: string[]
}

const streamMedia = at(
  `#/paths/${escapePointer('/sessions/{sessionId}/events/stream')}/get/responses/200/content/${escapePointer('text/event-stream')}`,
)
/** The messages of `streamSessionEvents` by what they are for, with their `event:` names (`x-sse-events`). */
const sseEvents: Record<'sessionEvent' | 'position', { name: string; data?: { $ref: string } }> =
  streamMedia['x-sse-events']
/** Its comment line while there is nothing to send (`x-sse-keep-alive`). */
const sseKeepAlive: { line: string } = streamMedia['x-sse-keep-alive']

/**
 * The body of `streamSessionEvents` (`text/event-stream`, whose schema is `type: string`): a
 * `retry:` line, the events asked for with `tail`, one `session.position` message (an `id:`, an
 * empty `data:`), then one `session.event` message per event (`id:` the event's id, `data:` the
 * SessionEvent as JSON on one line, exactly as getSessionEvent returns it), and `: keep-alive`
 * comments. The messages' names and data schema are the spec's `x-sse-events`, the comment its
 * `x-sse-keep-alive`; the rest it says in words.
 */
export const EVENT_STREAM = {
  mediaType: 'text/event-stream',
  event: sseEvents.sessionEvent.name,
  position: sseEvents.position.name,
  /** The text of the keep-alive comment, after its colon. */
  keepAlive: sseKeepAlive.line.slice(1),
  /** The schema of a `session.event` message's data. */
  dataSchema: sseEvents.sessionEvent.data!.$ref,
  /** The schema of an `id:`. */
  idSchema: '#/components/schemas/SessionEventId',
} as const
for (const pointer of [EVENT_STREAM.dataSchema, EVENT_STREAM.idSchema]) at(pointer)

/** A stream read as far as its `session.position` message: where it stands, with the events `tail` asked for before it. */
export const throughPosition = throughEvent(EVENT_STREAM.position)

export interface CheckOptions {
  /** For a stream: how far to read it (default: through its `session.position` message). */
  until?: ReadOptions['until']
  /** For a stream: how long to read it at most (default 4 s); not getting as far as `until` in that time is a problem. */
  timeoutMs?: number
}

/**
 * Holds a response to the spec: a declared status, a declared content type, every required
 * header present and valid, no header the spec does not declare (transport headers aside) and a
 * body that validates against the declared schema. A stream (`text/event-stream`) is never read
 * to its end: only as far as `options.until` says, then cancelled; its messages are held to
 * EVENT_STREAM.
 */
export async function checkResponse(
  op: Operation,
  res: Response,
  options: CheckOptions = {},
): Promise<CheckedResponse> {
  const problems: string[] = []
  const seen = new Map<string, string>()
  res.headers.forEach((value, name) => seen.set(name.toLowerCase(), value))
  const contentType = seen.get('content-type')?.split(';')[0]?.trim().toLowerCase()

  let text: string
  let body: unknown
  let messages: SseMessage[] | undefined
  if (contentType === EVENT_STREAM.mediaType) {
    const read = await readEventStream(res.body, {
      until: options.until ?? throughPosition,
      timeoutMs: options.timeoutMs ?? 4_000,
    })
    text = read.text
    messages = read.messages
    const checked = checkEventStream(
      read,
      options.until === undefined ? 'its session.position message' : 'as far as the test reads',
    )
    problems.push(...checked.problems)
    body = checked.events
  } else {
    text = await res.text()
  }
  const done = (): CheckedResponse => ({
    status: res.status,
    headers: res.headers,
    text,
    body,
    ...(messages && { messages }),
    problems,
  })

  const declared = declaredResponse(op, res.status)
  if (!declared) {
    problems.push(`status ${res.status} is not declared for ${op.operationId}`)
    if (!messages) {
      try {
        body = JSON.parse(text)
      } catch {
        body = undefined
      }
    }
    return done()
  }

  for (const header of declared.headers) {
    const value = seen.get(header.name.toLowerCase())
    if (value === undefined) {
      if (header.required) problems.push(`header ${header.name} is required but missing`)
      continue
    }
    for (const error of validator.validate(header.schemaPointer, headerValue(value, header.schema))) {
      problems.push(`header ${header.name}: ${JSON.stringify(value)} ${error}`)
    }
  }
  const declaredNames = new Set(declared.headers.map((h) => h.name.toLowerCase()))
  for (const name of seen.keys()) {
    if (!declaredNames.has(name) && !TRANSPORT_HEADERS.has(name))
      problems.push(`header ${name} is not declared for ${op.operationId} ${declared.status}`)
  }

  const mediaTypes = Object.keys(declared.content)
  if (mediaTypes.length === 0) {
    if (text !== '') problems.push(`a body where ${op.operationId} ${declared.status} declares none`)
  } else if (!contentType || !mediaTypes.includes(contentType)) {
    problems.push(`content type ${contentType ?? '(none)'} is not one of ${mediaTypes.join(', ')}`)
  } else {
    const schemaPointer = declared.content[contentType]
    if (contentType === 'application/json' || contentType.endsWith('+json')) {
      try {
        body = JSON.parse(text)
      } catch {
        problems.push(`the body is not JSON: ${text.slice(0, 200)}`)
      }
      if (body !== undefined && schemaPointer) {
        for (const error of validator.validate(schemaPointer, body)) problems.push(`body${error}`)
      }
    } else if (contentType === EVENT_STREAM.mediaType && schemaPointer) {
      // The schema of a stream is `type: string`: what was read, as text.
      for (const error of validator.validate(schemaPointer, text)) problems.push(`body${error}`)
    }
  }
  return done()
}

/**
 * Holds the messages read from a stream to EVENT_STREAM: a `retry:` message first; `session.event`
 * messages (the `tail`), one `session.position` message; then `session.event` messages and
 * keep-alive comments. Every `session.event` carries a SessionEvent that validates, with the id of
 * its `id:`, ids rising; those before the position at or below it, those after it above it.
 * Returns the problems, and the events carried.
 */
export function checkEventStream(read: StreamRead, goal: string): { problems: string[]; events: unknown[] } {
  const problems: string[] = []
  const events: unknown[] = []
  const brief = (m: SseMessage) => JSON.stringify(m.raw.length > 200 ? `${m.raw.slice(0, 200)}…` : m.raw)
  if (read.failed !== undefined)
    problems.push(
      `reading the stream failed: ${read.failed instanceof Error ? read.failed.message : String(read.failed as string)}`,
    )
  if (read.timedOut && !read.satisfied)
    problems.push(`the stream did not get as far as ${goal} in time (read: ${JSON.stringify(read.text.slice(0, 300))})`)
  if (read.ended && !read.satisfied && !read.messages.some((m) => field(m, 'event') === EVENT_STREAM.position)) {
    problems.push(`the stream ended before its ${EVENT_STREAM.position} message`)
  }
  if (read.rest !== '') problems.push(`the stream ended inside a message: ${JSON.stringify(read.rest.slice(0, 200))}`)

  const names = (m: SseMessage) =>
    m.fields
      .map(([n]) => n)
      .sort()
      .join(',')
  const isComment = (m: SseMessage) => m.fields.length === 0 && m.comments.length > 0
  let position: string | undefined
  let lastEvent: string | undefined
  read.messages.forEach((m, i) => {
    for (const comment of m.comments) {
      if (comment !== EVENT_STREAM.keepAlive)
        problems.push(`message ${i}: a comment the spec does not describe: ${JSON.stringify(comment)}`)
    }
    if (i === 0) {
      const retry = field(m, 'retry')
      if (names(m) !== 'retry' || retry === undefined || !/^\d+$/.test(retry))
        problems.push(`the stream does not start with a retry: line: ${brief(m)}`)
      return
    }
    if (isComment(m)) return
    const event = field(m, 'event')
    const id = field(m, 'id')
    if (event === EVENT_STREAM.position) {
      if (position !== undefined) problems.push(`message ${i}: a second ${EVENT_STREAM.position} message`)
      if (names(m) !== 'data,event,id' || field(m, 'data') !== '')
        problems.push(
          `message ${i}: a ${EVENT_STREAM.position} message is an id:, its event: and an empty data:, not ${brief(m)}`,
        )
      for (const error of validator.validate(EVENT_STREAM.idSchema, id))
        problems.push(`message ${i}: the position's id ${JSON.stringify(id)} ${error}`)
      if (id !== undefined && lastEvent !== undefined && lastEvent > id)
        problems.push(`message ${i}: the position ${id} stands before an event sent already (${lastEvent})`)
      position = id ?? ''
      return
    }
    if (event !== EVENT_STREAM.event) {
      problems.push(`message ${i}: an event the spec does not describe: ${brief(m)}`)
      return
    }
    if (names(m) !== 'data,event,id')
      problems.push(
        `message ${i}: a ${EVENT_STREAM.event} message is an id:, its event: and one data: line, not ${brief(m)}`,
      )
    for (const error of validator.validate(EVENT_STREAM.idSchema, id))
      problems.push(`message ${i}: id ${JSON.stringify(id)} ${error}`)
    let data: unknown
    try {
      data = JSON.parse(field(m, 'data') ?? '')
    } catch {
      problems.push(`message ${i}: the data is not JSON: ${brief(m)}`)
      return
    }
    events.push(data)
    for (const error of validator.validate(EVENT_STREAM.dataSchema, data)) problems.push(`message ${i}: data${error}`)
    const dataId = (data as { id?: unknown } | null)?.id
    if (dataId !== id) problems.push(`message ${i}: id: ${id} but the event's id is ${JSON.stringify(dataId)}`)
    if (id !== undefined) {
      if (lastEvent !== undefined && id <= lastEvent)
        problems.push(`message ${i}: event ${id} after ${lastEvent}: not in id order, or sent twice`)
      if (position !== undefined && id <= position)
        problems.push(`message ${i}: event ${id} after the position ${position}, at or before it`)
      lastEvent = id
    }
  })
  return { problems, events }
}

/** The value of a parameter as it goes on the wire: one string, or several for an exploded array. */
export type WireValue = string | string[]

/** A request path: the template's `{name}`s filled in, each value percent-encoded. */
export function fillPath(op: Operation, values: Record<string, string>): string {
  return op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = values[name]
    if (value === undefined) throw new Error(`no value for path parameter ${name}`)
    return encodeURIComponent(value)
  })
}

/**
 * A query string for `values`, each parameter serialised as the spec says (`form`, exploded):
 * arrays as repeated keys, or as Metorial's SDK sends them (`key[0]=a&key[1]=b`) when `indexed`.
 */
export function formatQuery(
  values: Record<string, WireValue | undefined>,
  options: { indexed?: boolean } = {},
): string {
  const parts: string[] = []
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined) continue
    if (Array.isArray(value)) {
      const key = encodeURIComponent(name)
      value.forEach((v, i) => parts.push(`${options.indexed ? `${key}[${i}]` : key}=${encodeURIComponent(v)}`))
    } else {
      parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    }
  }
  return parts.length > 0 ? `?${parts.join('&')}` : ''
}

/** Every `pattern` in the spec. */
export const patterns: string[] = (() => {
  const found = new Set<string>()
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk)
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'pattern' && typeof value === 'string') found.add(value)
        else walk(value)
      }
    }
  }
  walk(spec)
  return [...found]
})()

/** Known values grouped by the spec patterns they match, for generators that mix real ids in. */
export function poolsOf(values: readonly string[]): Record<string, string[]> {
  return Object.fromEntries(patterns.map((p) => [p, values.filter((v) => new RegExp(p, 'u').test(v))]))
}

/** Whether an operation answers a stream (`text/event-stream`): streamSessionEvents. */
export const isStream = (op: Operation) => Object.values(op.responses).some((r) => EVENT_STREAM.mediaType in r.content)

/**
 * The parts of a stream read so far: the events sent before its `session.position` message (the
 * `tail`), where it stands, and the events after it, each with its data as sent.
 */
export function streamParts(messages: readonly SseMessage[]): {
  before: string[]
  position?: string
  after: { id: string; data: string }[]
} {
  const at = messages.findIndex((m) => field(m, 'event') === EVENT_STREAM.position)
  const events = (ms: readonly SseMessage[]) =>
    ms
      .filter((m) => field(m, 'event') === EVENT_STREAM.event)
      .map((m) => ({ id: field(m, 'id') ?? '', data: field(m, 'data') ?? '' }))
  if (at < 0) return { before: events(messages).map((e) => e.id), after: [] }
  return {
    before: events(messages.slice(0, at)).map((e) => e.id),
    position: field(messages[at]!, 'id'),
    after: events(messages.slice(at + 1)),
  }
}
