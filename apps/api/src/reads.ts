import { errors } from './errors.js'
import type { JsonReader } from './json-reader.js'
import type { ServerRunJson, SessionEventJson } from './serialize.js'

// Reads that the handlers and the live tail share.

/** 404 unless the session exists in the key's instance; another instance's answers the same. */
export async function requireSession(reader: JsonReader, instanceId: string, sessionId: string): Promise<void> {
  if ((await reader.sessionInstance(sessionId)) !== instanceId) throw errors.sessionNotFound()
}

/** The runs that these events show, by id (`version`: the runs' version read with their page). */
export async function runsOf(
  reader: JsonReader,
  events: readonly SessionEventJson[],
  version?: string,
): Promise<Map<string, ServerRunJson>> {
  const ids = new Set<string>()
  for (const e of events) if (e.server_run_id !== null) ids.add(e.server_run_id)
  return new Map((await reader.serverRuns([...ids], version)).map((run) => [run.id, run]))
}
