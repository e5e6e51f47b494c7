// The server side of the spec: zod schemas, createRoute definitions and the handler map, all
// generated from openapi/session-events.yaml.
export * from './generated/routes.js'
export * from './generated/handlers.js'
