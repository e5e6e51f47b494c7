// Names for the generated types the client's API speaks in. Nothing here restates a field:
// every type is a path into src/generated/schema.ts.
import type { components, operations } from './generated/schema.js'

/** A log event or an error event of a server run in a session. */
export type SessionEvent = components['schemas']['SessionEvent']
/** A page of session events, as `listSessionEvents` answers. */
export type SessionEventList = components['schemas']['SessionEventList']
/** The query of `listSessionEvents`: `limit`, `order`, `after`, `before`, `cursor` and the filters. */
export type ListSessionEventsQuery = NonNullable<
  operations['listSessionEvents']['parameters']['query']
>
/** The one shape of every error body the API sends. */
export type ApiErrorBody = components['schemas']['Error']
/** The machine-readable codes the API puts in an error body. */
export type ApiErrorCode = ApiErrorBody['code']
/** Why one field failed validation (in `errors` of an `invalid_data` error). */
export type ValidationIssue = components['schemas']['ValidationIssue']
