import type {
  Mcp,
  Metadata,
  Pagination,
  ServerPreview,
  ServerRun,
  SessionEvent,
  SessionEventList,
} from '@session-events/server-stubs'
import { LRUCache } from 'lru-cache'
import type { EventRecord, RunRecord } from './store/types.js'

// Responses are the hot path: a page of 20 events is about 40 KB of JSON. Nothing here walks
// an event's object graph per request. Log lines were serialised once, when they were written,
// and are copied in as they are; a run's JSON is built once per version of the run (its
// `updated_at` and those of its previews), as text and as UTF-8 bytes, and reused by every event
// and every page that shows it. A response is written straight into one buffer: the runs, most
// of a page's bytes, are copied in, never encoded again.

/** JSON text of a value of type T: the compiler keeps the text and its type together. */
export type Json<T> = string & { readonly __json: T }
/** The same as UTF-8 bytes. */
export type JsonBytes<T> = Buffer & { readonly __json: T }
const json = <T>(value: T) => JSON.stringify(value) as Json<T>

const serverPreview = (s: RunRecord['server']): ServerPreview => ({
  object: 'server#preview',
  id: s.id,
  name: s.name,
  description: s.description,
  type: s.type,
  created_at: s.created_at,
  updated_at: s.updated_at,
})

function serverRun(r: RunRecord): ServerRun {
  const server = serverPreview(r.server)
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

/** A run's JSON, as text and as bytes. */
interface RunJson {
  version: string
  text: Json<ServerRun>
  bytes: Buffer
}

const runCache = new LRUCache<string, RunJson>({ max: 10_000 })

/** The run as it is now, serialised once per version of it. */
function serverRunJson(r: RunRecord): RunJson {
  const version = `${r.run.updated_at}|${r.serverSession.updated_at}|${r.deployment.updated_at}|${r.server.updated_at}`
  const cached = runCache.get(r.run.id)
  if (cached && cached.version === version) return cached
  const text = json(serverRun(r))
  const made = { version, text, bytes: Buffer.from(text) }
  runCache.set(r.run.id, made)
  return made
}

/** A response in pieces: text to encode, and runs' bytes to copy. */
type Piece = string | RunJson

/** The fields of a SessionEvent, in the spec's order, around its pre-serialised parts. */
function eventPieces(out: Piece[], e: EventRecord, run: RunRecord | undefined): void {
  const runJson = run ? serverRunJson(run) : undefined
  out.push(`{"object":"session.event","id":"${e.id}","session_id":"${e.session_id}","type":"${e.type}","server_run":`)
  out.push(runJson ?? 'null')
  if (e.type === 'server_run_error' && e.server_run_error_id && runJson) {
    out.push(
      `,"server_run_error":{"object":"server.server_run.error","id":${JSON.stringify(e.server_run_error_id)}` +
        `,"code":${JSON.stringify(e.error_code)},"message":${JSON.stringify(e.error_message)}` +
        `,"metadata":${e.error_metadata_json ?? '{}'},"server_run":`,
    )
    out.push(runJson)
    out.push(`,"created_at":"${e.error_created_at}"}`)
  } else {
    out.push(',"server_run_error":null')
  }
  out.push(`,"log_lines":${e.log_lines_json},"created_at":"${e.created_at}"}`)
}

/** The pieces in one buffer: measured, then written, with no string of the whole in between. */
function toBytes<T>(pieces: readonly Piece[]): JsonBytes<T> {
  let size = 0
  for (const piece of pieces) size += typeof piece === 'string' ? Buffer.byteLength(piece) : piece.bytes.length
  const out = Buffer.allocUnsafe(size)
  let at = 0
  for (const piece of pieces) {
    if (typeof piece === 'string') {
      at += out.write(piece, at)
    } else {
      out.set(piece.bytes, at)
      at += piece.bytes.length
    }
  }
  return out as JsonBytes<T>
}

/** One event, as the API sends it. */
export function sessionEventJson(e: EventRecord, run: RunRecord | undefined): JsonBytes<SessionEvent> {
  const pieces: Piece[] = []
  eventPieces(pieces, e, run)
  return toBytes(pieces)
}

/** A page: the list envelope around its events. */
export function sessionEventListJson(
  events: readonly EventRecord[],
  runs: ReadonlyMap<string, RunRecord>,
  pagination: Pagination,
): JsonBytes<SessionEventList> {
  const pieces: Piece[] = ['{"__typename":"list","items":[']
  for (let i = 0; i < events.length; i++) {
    if (i > 0) pieces.push(',')
    const e = events[i]!
    eventPieces(pieces, e, e.server_run_id ? runs.get(e.server_run_id) : undefined)
  }
  pieces.push(`],"pagination":${JSON.stringify(pagination)}}`)
  return toBytes(pieces)
}
