import type { RouteConfig } from '@hono/zod-openapi'
import { z } from 'zod'

// @hono/zod-openapi validates each part of a request (params, query, headers, a JSON body) with
// the schema's safeParseAsync. zod 4 parses an object with code it compiles for the object's
// shape, but only in a synchronous parse: an asynchronous one walks the shape property by property.
// The spec's schemas have no asynchronous refinement, so their parse is synchronous anyway, and
// safeParse gives the same result: for an append of 100 lines, 6 µs against 35 for the body alone
// (node, this machine). registerRoutes (generated) hands every route through here.

const SYNCHRONOUS = Symbol('validated synchronously')

type Schema = z.ZodType & { [SYNCHRONOUS]?: true }

/** Makes the schema's safeParseAsync a safeParse, where the schema allows it; in place, once. */
function synchronous(schema: unknown): void {
  if (!(schema instanceof z.ZodType)) return // a body read by its handler: a $ref, not a schema
  const s = schema as Schema
  if (s[SYNCHRONOUS]) return
  const parseAsync = s.safeParseAsync.bind(s)
  s.safeParseAsync = (async (data: unknown, params?: Parameters<typeof s.safeParse>[1]) => {
    try {
      return s.safeParse(data, params)
    } catch (error) {
      // An asynchronous refinement (none in the spec today): the parse zod would have made.
      if (error instanceof z.core.$ZodAsyncError) return parseAsync(data, params)
      throw error
    }
  }) as typeof s.safeParseAsync
  s[SYNCHRONOUS] = true
}

/**
 * The route, its request's schemas (params, query, headers, each JSON body) parsed synchronously
 * when @hono/zod-openapi validates a request: the same result, zod's compiled parser.
 */
export function validatedSynchronously<R extends RouteConfig>(route: R): R {
  const request = route.request
  if (!request) return route
  for (const part of [request.params, request.query, request.headers, request.cookies]) synchronous(part)
  for (const media of Object.values(request.body?.content ?? {}))
    if (media && 'schema' in media) synchronous(media.schema)
  return route
}
