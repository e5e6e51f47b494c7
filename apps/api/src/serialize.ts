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
// `updated_at` and those of its previews) and reused by every event and every page that shows it.

/** JSON text of a value of type T: the compiler keeps the text and its type together. */
export type Json<T> = string & { readonly __json: T }
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

const runCache = new LRUCache<string, { version: string; json: Json<ServerRun> }>({ max: 10_000 })

/** The run as it is now, serialised once per version of it. */
export function serverRunJson(r: RunRecord): Json<ServerRun> {
  const version = `${r.run.updated_at}|${r.serverSession.updated_at}|${r.deployment.updated_at}|${r.server.updated_at}`
  const cached = runCache.get(r.run.id)
  if (cached && cached.version === version) return cached.json
  const text = json(serverRun(r))
  runCache.set(r.run.id, { version, json: text })
  return text
}

/** The fields of a SessionEvent, in the spec's order, around its pre-serialised parts. */
export function sessionEventJson(e: EventRecord, run: RunRecord | undefined): Json<SessionEvent> {
  const runText = run ? serverRunJson(run) : 'null'
  let errorText = 'null'
  if (e.type === 'server_run_error' && e.server_run_error_id && run) {
    errorText =
      `{"object":"server.server_run.error","id":${JSON.stringify(e.server_run_error_id)}` +
      `,"code":${JSON.stringify(e.error_code)},"message":${JSON.stringify(e.error_message)}` +
      `,"metadata":${e.error_metadata_json ?? '{}'},"server_run":${runText}` +
      `,"created_at":"${e.error_created_at}"}`
  }
  return (`{"object":"session.event","id":"${e.id}","session_id":"${e.session_id}","type":"${e.type}"` +
    `,"server_run":${runText},"server_run_error":${errorText},"log_lines":${e.log_lines_json}` +
    `,"created_at":"${e.created_at}"}`) as Json<SessionEvent>
}

/** A page: the list envelope around events that are JSON already. */
export function sessionEventListJson(items: Json<SessionEvent>[], pagination: Pagination): Json<SessionEventList> {
  return `{"__typename":"list","items":[${items.join(',')}],"pagination":${JSON.stringify(pagination)}}` as Json<SessionEventList>
}

