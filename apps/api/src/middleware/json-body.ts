import * as specValues from '@session-events/server-stubs/values'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'

// What JSON Schema cannot say of a request body, checked before the route's validation:
// - how deep it nests: metadata is free-form, and a value nested thousands of levels deep would
//   overflow the stack of JSON.stringify when it is stored or answered;
// - keys named `__proto__`: valid JSON, but a JavaScript object copied from it loses them, so
//   what was stored would silently differ from what was sent.

/** How deep a body may nest: objects and arrays within each other (the spec's Metadata `x-max-depth`). */
export const MAX_BODY_DEPTH = specValues.schemas.Metadata['x-max-depth']

/** The deepest nesting of objects and arrays in JSON text, strings skipped. */
function depthOf(text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c /* \ */) i++
      else if (c === 0x22 /* " */) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > deepest) deepest = depth
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--
  }
  return deepest
}

/** Where a key named `__proto__` is in a parsed value, if anywhere. */
function protoKeyPath(value: unknown, path: (string | number)[] = []): (string | number)[] | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = protoKeyPath(value[i], [...path, i])
      if (found) return found
    }
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      if (key === '__proto__') return [...path, key]
      const found = protoKeyPath((value as Record<string, unknown>)[key], [...path, key])
      if (found) return found
    }
  }
  return undefined
}

export const jsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.req.method !== 'POST' || !c.req.header('content-type')?.includes('json')) return next()
  const text = await c.req.text()
  if (depthOf(text) > MAX_BODY_DEPTH) {
    throw errors.badRequest(
      `The request body nests more than ${MAX_BODY_DEPTH} levels deep.`,
      'Flatten the metadata you send.',
    )
  }
  if (text.includes('"__proto__"')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return next() // not JSON: the route's validation says so
    }
    const path = protoKeyPath(parsed)
    if (path) throw errors.invalidData([{ code: 'invalid_key', message: 'A key may not be named __proto__.', path }])
  }
  await next()
}
