// The typed client of the Session Events API. Types come from the spec through
// src/generated/schema.ts (openapi-typescript); requests go through openapi-fetch.
export {
  DEFAULT_BASE_URL,
  DEFAULT_METORIAL_VERSION,
  createSessionEventsClient,
  type Decoded,
  type RequestOptions,
  type SessionEventsClient,
  type SessionEventsClientOptions,
  type SessionEventsResource,
} from './client.js'
export { type WithDates, reviveDates } from './dates.js'
export {
  SessionEventsConnectionError,
  SessionEventsError,
  type SessionEventsErrorCode,
  SessionEventsTimeoutError,
} from './errors.js'
export type { components, operations, paths } from './generated/schema.js'
export type { Fetch } from './transport.js'
export type {
  ApiErrorBody,
  ApiErrorCode,
  ListSessionEventsQuery,
  SessionEvent,
  SessionEventList,
  ValidationIssue,
} from './types.js'
