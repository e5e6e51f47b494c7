// The server side of the spec: zod schemas, createRoute definitions and the handler map, all
// generated from openapi/session-events.yaml. The spec's plain values (id patterns, limits,
// defaults, the stream's message names) are `@session-events/server-stubs/values`, which code
// without Hono (the store) can import without loading it.
export * from './generated/routes.js'
export * from './generated/handlers.js'
