import type { RouteHandler } from '@hono/zod-openapi'
import type { Routes } from '@session-events/server-stubs'
import type { AppEnv } from '../env.js'
import { claimOf, replayed } from '../middleware/idempotency.js'
import { sendJson } from '../respond.js'
import { jsonBytes, toSession } from '../serialize.js'
import type { StoreWriter } from '../store/types.js'

// Sessions: made here, in the key's instance, for runs to write into.

export function sessionsHandlers(writer: StoreWriter): {
  createSession: RouteHandler<Routes['createSession'], AppEnv>
} {
  return {
    async createSession(c) {
      const body = c.req.valid('json') ?? {}
      const session = await writer.createSession({
        instanceId: c.get('instanceId'),
        metadata: body.metadata,
        claim: claimOf(c, 201),
      })
      return sendJson(c, jsonBytes(toSession(session)), 201, replayed(session))
    },
  }
}
