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

/** Whether a parsed value nests objects and arrays more than `levels` deep (it looks no deeper). */
function nestsDeeperThan(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false
  if (levels === 0) return true
  if (Array.isArray(value)) {
    for (const item of value) if (nestsDeeperThan(item, levels - 1)) return true
  } else for (const key in value) if (nestsDeeperThan((value as Record<string, unknown>)[key], levels - 1)) return true
  return false
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
  let parsed: unknown
  try {
    // JSON.parse does not recurse (V8's parser keeps its own stack): any depth parses.
    parsed = JSON.parse(text)
  } catch {
    return next() // not JSON: the route's validation says so
  }
  if (nestsDeeperThan(parsed, MAX_BODY_DEPTH)) {
    throw errors.badRequest(
      `The request body nests more than ${MAX_BODY_DEPTH} levels deep.`,
      'Flatten the metadata you send.',
    )
  }
  if (text.includes('"__proto__"')) {
    const path = protoKeyPath(parsed)
    if (path) throw errors.invalidData([{ code: 'invalid_key', message: 'A key may not be named __proto__.', path }])
  }
  // The route's validator reads the body with c.req.json(), which would parse the text again
  // (Hono keeps the text, not what it parsed): it gets this parse. In a CPU profile of appends
  // of 100 lines in process, a scan of the text for its depth took 26 µs an append and the
  // validator's parse 27; the walk above takes 3.
  c.req.json = <T>() => Promise.resolve(parsed as T)
  await next()
}
