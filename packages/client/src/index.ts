// The typed client of the Session Events API. Types come from the spec through
// src/generated/schema.ts (openapi-typescript); requests go through openapi-fetch.
export {
  DEFAULT_BASE_URL,
  DEFAULT_METORIAL_VERSION,
  createSessionEventsClient,
  type Decoded,
  type RequestOptions,
  type ServerRunsResource,
  type SessionEventsClient,
  type SessionEventsClientOptions,
  type SessionEventsResource,
  type SessionsResource,
  type WriteRequestOptions,
} from './client.js'
export { type WithDates, reviveDates } from './dates.js'
export {
  SessionEventsConnectionError,
  SessionEventsError,
  type SessionEventsErrorCode,
  SessionEventsTimeoutError,
} from './errors.js'
export type { components, operations, paths } from './generated/schema.js'
/** The spec's values (limits, defaults, id patterns, the stream's message names), for code that needs them at run time. */
export * as specValues from './generated/values.js'
export type { TailOptions } from './tail.js'
export type { Fetch } from './transport.js'
export type {
  ApiErrorBody,
  ApiErrorCode,
  IdempotencyKey,
  ListSessionEventsQuery,
  ListSessionsQuery,
  LogLine,
  ServerRun,
  ServerRunStart,
  ServerRunStop,
  Session,
  SessionCreate,
  SessionEvent,
  SessionEventCreate,
  SessionEventList,
  SessionList,
  StreamSessionEventsQuery,
  ValidationIssue,
} from './types.js'
