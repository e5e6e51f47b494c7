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
// an object graph or encodes text per request. An event's own JSON (its log lines were
// serialised when they were written) is made into UTF-8 once, when the store first holds it; a
// run's, once per version of the run (its `updated_at` and those of its previews), and reused by
// every event and every page that shows it. A response is those bytes copied into one buffer.

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

/** A run's JSON as UTF-8 bytes, and which version of the run it shows. */
interface RunJson {
  version: string
  bytes: Buffer
}

const runCache = new LRUCache<string, RunJson>({ max: 10_000 })

/** The run as it is now, serialised once per version of it. */
function serverRunJson(r: RunRecord): RunJson {
  const version = `${r.run.updated_at}|${r.serverSession.updated_at}|${r.deployment.updated_at}|${r.server.updated_at}`
  const cached = runCache.get(r.run.id)
  if (cached && cached.version === version) return cached
  const made = { version, bytes: Buffer.from(json(serverRun(r))) }
  runCache.set(r.run.id, made)
  return made
}

/**
 * An event's own JSON in UTF-8, and the offsets where its run goes (one for a log event, two for
 * a run error, which shows the run in its error too; none when it has no run). An event never
 * changes, so this is made once per event the store holds, and kept as long as the store keeps it.
 */
type EventTemplate = { withRun: boolean; bytes: Buffer; cuts: number[] }
const templates = new WeakMap<EventRecord, EventTemplate>()

/** Where the run goes in an event's text. */
const RUN = '\u0000run\u0000'

/** The fields of a SessionEvent, in the spec's order, with RUN where its run goes. */
function eventText(e: EventRecord, withRun: boolean): string {
  const run = withRun ? RUN : 'null'
  const error =
    e.type === 'server_run_error' && e.server_run_error_id && withRun
      ? `{"object":"server.server_run.error","id":${JSON.stringify(e.server_run_error_id)}` +
        `,"code":${JSON.stringify(e.error_code)},"message":${JSON.stringify(e.error_message)}` +
        `,"metadata":${e.error_metadata_json ?? '{}'},"server_run":${run},"created_at":"${e.error_created_at}"}`
      : 'null'
  return (
    `{"object":"session.event","id":"${e.id}","session_id":"${e.session_id}","type":"${e.type}"` +
    `,"server_run":${run},"server_run_error":${error},"log_lines":${e.log_lines_json},"created_at":"${e.created_at}"}`
  )
}

function template(e: EventRecord, withRun: boolean): EventTemplate {
  let made = templates.get(e)
  if (made?.withRun !== withRun) {
    // RUN cannot occur inside the text around it: JSON escapes every control character.
    const pieces = eventText(e, withRun).split(RUN)
    const cuts: number[] = []
    let at = 0
    for (let k = 0; k < pieces.length - 1; k++) cuts.push((at += Buffer.byteLength(pieces[k]!)))
    made = { withRun, bytes: Buffer.from(pieces.join('')), cuts }
    templates.set(e, made)
  }
  return made
}

/**
 * JSON around a list of events, with the runs (as they are now) in their places and commas
 * between: measured first, then copied into one buffer. Nothing is encoded but `head` and `tail`.
 */
function eventsJson<T>(head: string, events: readonly EventRecord[], runOf: (e: EventRecord) => RunRecord | undefined, tail: string): JsonBytes<T> {
  const parts: EventTemplate[] = new Array(events.length)
  const runs: (Buffer | undefined)[] = new Array(events.length)
  let size = Buffer.byteLength(head) + Buffer.byteLength(tail) + Math.max(0, events.length - 1)
  // Neighbouring events mostly show the same run: look its bytes up once for them.
  let lastRun: RunRecord | undefined
  let lastBytes: Buffer | undefined
  for (let i = 0; i < events.length; i++) {
    const run = runOf(events[i]!)
    const part = (parts[i] = template(events[i]!, run !== undefined))
    if (run !== lastRun) {
      lastRun = run
      lastBytes = run && serverRunJson(run).bytes
    }
    runs[i] = lastBytes
    size += part.bytes.length + part.cuts.length * (lastBytes?.length ?? 0)
  }
  const out = Buffer.allocUnsafe(size)
  let at = out.write(head, 0)
  for (let i = 0; i < parts.length; i++) {
    if (i > 0) out[at++] = 0x2c // ,
    const { bytes, cuts } = parts[i]!
    let from = 0
    for (const cut of cuts) {
      at += bytes.copy(out, at, from, cut)
      at += runs[i]!.copy(out, at)
      from = cut
    }
    at += bytes.copy(out, at, from)
  }
  out.write(tail, at)
  return out as JsonBytes<T>
}

/** One event, as the API sends it. */
export function sessionEventJson(e: EventRecord, run: RunRecord | undefined): JsonBytes<SessionEvent> {
  return eventsJson('', [e], () => run, '')
}

/** A page: the list envelope around its events. */
export function sessionEventListJson(
  events: readonly EventRecord[],
  runs: ReadonlyMap<string, RunRecord>,
  pagination: Pagination,
): JsonBytes<SessionEventList> {
  return eventsJson(
    '{"__typename":"list","items":[',
    events,
    (e) => (e.server_run_id ? runs.get(e.server_run_id) : undefined),
    `],"pagination":${JSON.stringify(pagination)}}`,
  )
}
