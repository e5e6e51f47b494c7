// Names for the generated types the client's API speaks in. Nothing here restates a field:
// every type is a path into src/generated/schema.ts.
import type { components, operations } from './generated/schema.js'

/** A log event or an error event of a server run in a session. */
export type SessionEvent = components['schemas']['SessionEvent']
/** A page of session events, as `listSessionEvents` answers. */
export type SessionEventList = components['schemas']['SessionEventList']
/** The query of `listSessionEvents`: `limit`, `order`, `after`, `before`, `cursor` and the filters. */
export type ListSessionEventsQuery = NonNullable<operations['listSessionEvents']['parameters']['query']>
/** The query of `streamSessionEvents`: `after`, `tail`, and the filters of `listSessionEvents`. */
export type StreamSessionEventsQuery = NonNullable<operations['streamSessionEvents']['parameters']['query']>
/** The one shape of every error body the API sends. */
export type ApiErrorBody = components['schemas']['Error']
/** The machine-readable codes the API puts in an error body. */
export type ApiErrorCode = ApiErrorBody['code']
/** Why one field failed validation (in `errors` of an `invalid_data` error). */
export type ValidationIssue = components['schemas']['ValidationIssue']
/** A session, as far as this service holds it (`createSession` answers one). */
export type Session = components['schemas']['Session']
/** A page of sessions, newest first, as `listSessions` answers. */
export type SessionList = components['schemas']['SessionList']
/** The query of `listSessions`: `limit`, `after`, `before`, `cursor` and the `status` filter. */
export type ListSessionsQuery = NonNullable<operations['listSessions']['parameters']['query']>
/** The body of `createSession`: the session's metadata. */
export type SessionCreate = components['schemas']['SessionCreate']
/** One run of an MCP server in a session. */
export type ServerRun = components['schemas']['ServerRun']
/** The body of `startServerRun`: the run's type, server, deployment, version and server session. */
export type ServerRunStart = components['schemas']['ServerRunStart']
/** The body of `stopServerRun`: `completed`, or `failed` with the error that ended the run. */
export type ServerRunStop = components['schemas']['ServerRunStop']
/** The body of `createSessionEvent`: a run and some of its log lines (`specValues.schemas.SessionEventCreate` says how many). */
export type SessionEventCreate = components['schemas']['SessionEventCreate']
/** One line a server wrote, to stdout or stderr. */
export type LogLine = components['schemas']['LogLine']
/** The `Idempotency-Key` a write may carry (`specValues.parameters.IdempotencyKey` says how long). */
export type IdempotencyKey = components['parameters']['IdempotencyKey']
