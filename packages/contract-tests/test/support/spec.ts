import { createSpecValidator, loadSpec } from '@session-events/openapi'

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

export interface Operation {
  operationId: string
  method: string
  /** The path template, such as `/sessions/{sessionId}/events`. */
  path: string
  parameters: Parameter[]
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
    ...(schemaRef?.startsWith('#/components/schemas/') && { schemaName: schemaRef.slice('#/components/schemas/'.length) }),
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

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']

/** Every operation of the spec, in the spec's order. */
export const operations: Operation[] = Object.entries(spec.paths as Record<string, any>).flatMap(([path, item]) => {
  const itemPointer = `#/paths/${escapePointer(path)}`
  const shared = (item.parameters ?? []).map((p: any, i: number) => readParameter(p, `${itemPointer}/parameters/${i}`))
  return METHODS.filter((m) => item[m]).map((method) => {
    const op = item[method]
    const opPointer = `${itemPointer}/${method}`
    const own: Parameter[] = (op.parameters ?? []).map((p: any, i: number) => readParameter(p, `${opPointer}/parameters/${i}`))
    // An operation's parameter overrides a path item's of the same name and location.
    const parameters = [...shared.filter((s: Parameter) => !own.some((o) => o.name === s.name && o.in === s.in)), ...own]
    const responses = Object.fromEntries(
      Object.entries(op.responses ?? {}).map(([status, r]) => [status, readResponse(status, r, `${opPointer}/responses/${status}`)]),
    )
    return { operationId: op.operationId, method: method.toUpperCase(), path, parameters, responses }
  })
})

export function operation(operationId: string): Operation {
  const op = operations.find((o) => o.operationId === operationId)
  if (!op) throw new Error(`the spec has no operation ${operationId}`)
  return op
}

/** Every operation×status pair the spec declares, as `listSessionEvents 200`. */
export const declaredPairs = operations.flatMap((op) => Object.keys(op.responses).map((status) => `${op.operationId} ${status}`))

/** The declared response for a status: exact, then `4XX`-style ranges, then `default`. */
export function declaredResponse(op: Operation, status: number): DeclaredResponse | undefined {
  return op.responses[String(status)] ?? op.responses[`${String(status)[0]}XX`] ?? op.responses.default
}

/** Headers any HTTP response may carry that an API description does not list. */
export const TRANSPORT_HEADERS = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive', 'transfer-encoding'])

/** A header's text as the value its schema describes (headers are `simple` style). */
function headerValue(text: string, schema: Schema): unknown {
  const types = [schema.type].flat()
  if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(text)) return Number(text)
  if (types.includes('boolean') && (text === 'true' || text === 'false')) return text === 'true'
  return text
}

export interface CheckedResponse {
  status: number
  text: string
  /** The parsed body, when it is JSON. */
  body: unknown
  /** Every way the response departs from what the spec declares for it; empty when none. */
  problems: string[]
}

/**
 * Holds a response to the spec: a declared status, a declared content type, every required
 * header present and valid, no header the spec does not declare (transport headers aside) and a
 * body that validates against the declared schema.
 */
export async function checkResponse(op: Operation, res: Response): Promise<CheckedResponse> {
  const problems: string[] = []
  const text = await res.text()
  let body: unknown
  const declared = declaredResponse(op, res.status)
  if (!declared) {
    problems.push(`status ${res.status} is not declared for ${op.operationId}`)
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }
    return { status: res.status, text, body, problems }
  }

  const seen = new Map<string, string>()
  res.headers.forEach((value, name) => seen.set(name.toLowerCase(), value))
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
    if (!declaredNames.has(name) && !TRANSPORT_HEADERS.has(name)) problems.push(`header ${name} is not declared for ${op.operationId} ${declared.status}`)
  }

  const mediaTypes = Object.keys(declared.content)
  const contentType = seen.get('content-type')?.split(';')[0]?.trim().toLowerCase()
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
    }
  }
  return { status: res.status, text, body, problems }
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
export function formatQuery(values: Record<string, WireValue | undefined>, options: { indexed?: boolean } = {}): string {
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
