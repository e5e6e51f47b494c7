import type { ServerRun, SessionEvent } from '@session-events/server-stubs'
import { expect } from 'vitest'
import { SerializingReader, type JsonReader } from '../src/json-reader.js'
import { sessionEventBytes, type ServerRunJson } from '../src/serialize.js'
import type { SqlStore } from '../src/store/sql-store.js'
import type { ListEventsQuery, StoreReader } from '../src/store/types.js'

// Reading and writing through the store as the API does, for the store's tests.

/** The store's reader as the API reads through it: its records made into the bytes the API sends. */
export const asJson = (reader: StoreReader): JsonReader => new SerializingReader(reader)

/**
 * A page read the way the list handler reads it (ids, then their events, then the runs they
 * show), as the API's objects; `json` is the events as the reader gave them.
 */
export async function readPage(reader: JsonReader, query: ListEventsQuery) {
  const page = await reader.listEventIds(query)
  const json = await reader.sessionEvents(query.sessionId, page.ids)
  expect(json.map((e) => e.id)).toEqual(page.ids)
  const runIds = [...new Set(json.flatMap((e) => e.server_run_id ?? []))]
  const runs = new Map((await reader.serverRuns(runIds)).map((run): [string, ServerRunJson] => [run.id, run]))
  return {
    ...page,
    json,
    events: json.map(
      (e) =>
        JSON.parse(
          sessionEventBytes(e, e.server_run_id === null ? undefined : runs.get(e.server_run_id)).toString(),
        ) as SessionEvent,
    ),
    runs: new Map([...runs].map(([id, run]) => [id, JSON.parse(run.bytes.toString()) as ServerRun])),
  }
}

/** One event read the way getSessionEvent reads it, as the API's object; undefined when the session has no such event. */
export async function readEvent(reader: JsonReader, sessionId: string, id: string): Promise<SessionEvent | undefined> {
  const [event] = await reader.sessionEvents(sessionId, [id])
  if (!event) return undefined
  const [run] = event.server_run_id === null ? [] : await reader.serverRuns([event.server_run_id])
  return JSON.parse(sessionEventBytes(event, run).toString()) as SessionEvent
}

/** A session with one run, made through the store's own write path. */
export async function sessionWithRun(store: SqlStore) {
  const { admin, seeding: writer } = store
  const { id: instanceId } = await admin.createInstance({ name: 'i' })
  const { id: serverId } = await writer.createServer({ name: 'S', description: null, type: 'custom' })
  const { id: versionId } = await writer.createServerVersion({ serverId })
  const { id: deploymentId } = await writer.createServerDeployment({
    instanceId,
    serverId,
    name: null,
    description: null,
    metadata: { a: [1, 'b'] },
  })
  const { id: sessionId } = await writer.createSession({ instanceId })
  const { id: serverSessionId } = await writer.createServerSession({
    sessionId,
    serverDeploymentId: deploymentId,
    mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'sse', client: null, server: null },
    clientMessageCount: 7,
    serverMessageCount: 5,
  })
  const { id: runId } = await writer.createServerRun({ serverSessionId, serverVersionId: versionId, type: 'hosted' })
  return { instanceId, sessionId, serverSessionId, runId }
}
