import type { RouteHandler } from '@hono/zod-openapi'
import type { Routes, ServerRun } from '@session-events/server-stubs'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'
import type { JsonReader } from '../json-reader.js'
import { claimOf, replayed } from '../middleware/idempotency.js'
import { requireSession } from '../reads.js'
import { sendJson } from '../respond.js'
import type { JsonBytes } from '../serialize.js'
import type { StoreWriter } from '../store/types.js'

// Server runs: started in a session, read as they are now, stopped. Every answer is the run as
// the reader serialises it, read after the write (a replayed one too: as it is now).

export function serverRunsHandlers(
  reader: JsonReader,
  writer: StoreWriter,
): {
  startServerRun: RouteHandler<Routes['startServerRun'], AppEnv>
  getServerRun: RouteHandler<Routes['getServerRun'], AppEnv>
  stopServerRun: RouteHandler<Routes['stopServerRun'], AppEnv>
} {
  /** The run's JSON if it is one of the session's. */
  async function runOfSession(sessionId: string, serverRunId: string): Promise<JsonBytes<ServerRun>> {
    const [run] = await reader.serverRuns([serverRunId])
    if (!run || run.session_id !== sessionId) throw errors.serverRunNotFound()
    return run.bytes as JsonBytes<ServerRun>
  }

  return {
    async startServerRun(c) {
      const { sessionId } = c.req.valid('param')
      const instanceId = c.get('instanceId')
      await requireSession(reader, instanceId, sessionId)
      const started = await writer.startServerRun({
        instanceId,
        sessionId,
        run: c.req.valid('json'),
        claim: claimOf(c, 201),
      })
      return sendJson(c, await runOfSession(sessionId, started.id), 201, replayed(started))
    },

    async getServerRun(c) {
      const { sessionId, serverRunId } = c.req.valid('param')
      await requireSession(reader, c.get('instanceId'), sessionId)
      return sendJson(c, await runOfSession(sessionId, serverRunId), 200)
    },

    async stopServerRun(c) {
      const { sessionId, serverRunId } = c.req.valid('param')
      const stop = c.req.valid('json')
      await requireSession(reader, c.get('instanceId'), sessionId)
      if (stop.error && stop.status !== 'failed') {
        throw errors.invalidData([
          { code: 'invalid_value', message: 'Only a failed run has an error.', path: ['error'] },
        ])
      }
      const stopped = await writer.stopServerRun({ sessionId, serverRunId, stop, claim: claimOf(c, 200) })
      if (!stopped.found) throw errors.serverRunNotFound()
      return sendJson(c, await runOfSession(sessionId, serverRunId), 200, replayed(stopped))
    },
  }
}
