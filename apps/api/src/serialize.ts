import { randomBytes } from 'node:crypto'
import type {
  LogLine,
  Mcp,
  Metadata,
  Pagination,
  ServerPreview,
  ServerRun,
  ServerRunError,
  Session,
  SessionEvent,
  SessionEventList,
} from '@session-events/server-stubs'
import type { SessionTable } from './store/db.js'
import type { EventRecord, RunRecord } from './store/types.js'

// From the store's rows to the API's objects, and from those to the bytes the API sends.
//
// 1. One mapping per object, typed by the generated types: the compiler checks every field of
//    toServerRun and toSessionEvent against the spec.
// 2. Bytes, made from those objects by JSON.stringify and nothing else. An event never changes,
//    but the run it shows does; so an event is serialised once with a slot where its run goes,
//    and a run once per version of it, and a response is those bytes copied into one buffer.
//    Whatever the mapping puts in an object reaches the bytes: nothing here names a field.

// ---- the objects ----

export function toSession(s: SessionTable): Session {
  return {
    object: 'session',
    id: s.id,
    status: s.status,
    metadata: JSON.parse(s.metadata_json) as Metadata,
    created_at: s.created_at,
    updated_at: s.updated_at ?? s.created_at,
  }
}

function toServerPreview(s: RunRecord['server']): ServerPreview {
  return {
    object: 'server#preview',
    id: s.id,
    name: s.name,
    description: s.description,
    type: s.type,
    created_at: s.created_at,
    updated_at: s.updated_at,
  }
}

export function toServerRun(r: RunRecord): ServerRun {
  const server = toServerPreview(r.server)
  const ss = r.serverSession
  return {
    object: 'server.server_run',
    id: r.run.id,
    type: r.run.type,
    status: r.run.status,
    server_version_id: r.run.server_version_id,
    server,
    server_deployment: {
      object: 'server.server_deployment#preview',
      id: r.deployment.id,
      name: r.deployment.name,
      description: r.deployment.description,
      metadata: JSON.parse(r.deployment.metadata_json) as Metadata,
      server,
      created_at: r.deployment.created_at,
      updated_at: r.deployment.updated_at,
    },
    server_session: {
      object: 'session.server_session#preview',
      id: ss.id,
      status: ss.status,
      mcp: JSON.parse(ss.mcp_json) as Mcp,
      usage: {
        total_productive_message_count: ss.client_message_count + ss.server_message_count,
        total_productive_client_message_count: ss.client_message_count,
        total_productive_server_message_count: ss.server_message_count,
      },
      session_id: ss.session_id,
      created_at: ss.created_at,
    },
    created_at: r.run.created_at,
    updated_at: r.run.updated_at,
    started_at: r.run.started_at,
    stopped_at: r.run.stopped_at,
  }
}

function toServerRunError(x: NonNullable<EventRecord['error']>, run: ServerRun): ServerRunError {
  return {
    object: 'server.server_run.error',
    id: x.id,
    code: x.code,
    message: x.message,
    metadata: JSON.parse(x.metadata_json) as Metadata,
    server_run: run,
    created_at: x.created_at,
  }
}

/**
 * An event as the API shows it, with its run as it is now (null when it has none). `lines`: its
 * log lines, read from the stored JSON unless given.
 */
export function toSessionEvent(
  e: EventRecord,
  run: ServerRun | null,
  lines: LogLine[] = JSON.parse(e.event.log_lines_json) as LogLine[],
): SessionEvent {
  return {
    object: 'session.event',
    id: e.event.id,
    session_id: e.event.session_id,
    type: e.event.type,
    server_run: run,
    server_run_error: e.error && run ? toServerRunError(e.error, run) : null,
    log_lines: lines,
    created_at: e.event.created_at,
  }
}

// ---- the bytes ----

/** UTF-8 JSON of a value of type T: the compiler keeps the bytes and their type together. */
export type JsonBytes<T> = Buffer & { readonly __json: T }

/**
 * A value that JSON.stringify writes as a string no data can hold (it is random, made when the
 * process starts), to cut the text where something else goes.
 */
const SLOT_TEXT = `\u0000slot:${randomBytes(12).toString('base64url')}\u0000`
const SLOT_JSON = JSON.stringify(SLOT_TEXT)
const slot = <T>(text = SLOT_TEXT): T => ({ toJSON: () => text }) as T

/** The same for where an event's lines go, as the JSON they are stored as. */
const LINES_TEXT = `\u0000lines:${randomBytes(12).toString('base64url')}\u0000`
const LINES_JSON = JSON.stringify(LINES_TEXT)

/** `value` as JSON text, cut at its slots. */
function cutAtSlots(value: unknown): Buffer[] {
  return JSON.stringify(value)
    .split(SLOT_JSON)
    .map((piece) => Buffer.from(piece))
}

/** A run as the API sends it: its JSON, and the session whose events show it. */
export interface ServerRunJson {
  id: string
  session_id: string
  bytes: Buffer
}

export function serverRunJson(r: RunRecord): ServerRunJson {
  return { id: r.run.id, session_id: r.serverSession.session_id, bytes: Buffer.from(JSON.stringify(toServerRun(r))) }
}

/**
 * An event as the API sends it, less its run: its JSON cut where the run goes (once for a log
 * event, twice for an error event, which shows the run in its error too; never for an event
 * without a run).
 */
export interface SessionEventJson {
  id: string
  session_id: string
  server_run_id: string | null
  pieces: Buffer[]
}

export function sessionEventJson(e: EventRecord): SessionEventJson {
  const run = e.event.server_run_id === null ? null : slot<ServerRun>()
  const text = JSON.stringify(toSessionEvent(e, run, slot<LogLine[]>(LINES_TEXT)))
  // The lines go in as they are stored: JSON.stringify made that text of them when the event was
  // written (store/new-rows.ts), so it is the text it would make of them again; an append of 100
  // lines parsed and wrote them again for nothing (about 30 µs).
  const at = text.indexOf(LINES_JSON)
  const whole = text.slice(0, at) + e.event.log_lines_json + text.slice(at + LINES_JSON.length)
  return {
    id: e.event.id,
    session_id: e.event.session_id,
    server_run_id: e.event.server_run_id,
    pieces: whole.split(SLOT_JSON).map((piece) => Buffer.from(piece)),
  }
}

/** How many bytes an event's JSON takes in memory, for a cache's budget. */
export const sizeOfEventJson = (e: SessionEventJson) => e.pieces.reduce((n, piece) => n + piece.length, 0)

const NULL = Buffer.from('null')
const COMMA = 0x2c

/**
 * Events between `head` and `tail`, with commas between them and each run in its places:
 * measured first, then copied into one buffer.
 */
function eventsBytes(
  head: Buffer,
  events: readonly SessionEventJson[],
  runOf: (e: SessionEventJson) => ServerRunJson | undefined,
  tail: Buffer,
): Buffer {
  const runBytes = events.map((e) => runOf(e)?.bytes ?? NULL)
  let size = head.length + tail.length + Math.max(0, events.length - 1)
  for (let i = 0; i < events.length; i++) {
    const pieces = events[i]!.pieces
    for (const piece of pieces) size += piece.length
    size += (pieces.length - 1) * runBytes[i]!.length
  }
  const out = Buffer.allocUnsafe(size)
  let at = head.copy(out, 0)
  for (let i = 0; i < events.length; i++) {
    if (i > 0) out[at++] = COMMA
    const pieces = events[i]!.pieces
    at += pieces[0]!.copy(out, at)
    for (let k = 1; k < pieces.length; k++) {
      at += runBytes[i]!.copy(out, at)
      at += pieces[k]!.copy(out, at)
    }
  }
  tail.copy(out, at)
  return out
}

const EMPTY = Buffer.alloc(0)

/** One event, as the API sends it. */
export function sessionEventBytes(e: SessionEventJson, run: ServerRunJson | undefined): JsonBytes<SessionEvent> {
  return eventsBytes(EMPTY, [e], () => run, EMPTY) as JsonBytes<SessionEvent>
}

/** A page: the list around its events. */
export function sessionEventListBytes(
  events: readonly SessionEventJson[],
  runs: ReadonlyMap<string, ServerRunJson>,
  pagination: Pagination,
): JsonBytes<SessionEventList> {
  const list: SessionEventList = { __typename: 'list', items: [slot<SessionEvent>()], pagination }
  const [head, tail] = cutAtSlots(list)
  return eventsBytes(
    head!,
    events,
    (e) => (e.server_run_id === null ? undefined : runs.get(e.server_run_id)),
    tail!,
  ) as JsonBytes<SessionEventList>
}

/** Any other object of the API, as bytes of its type. */
export function jsonBytes<T>(value: T): JsonBytes<T> {
  return Buffer.from(JSON.stringify(value)) as JsonBytes<T>
}
