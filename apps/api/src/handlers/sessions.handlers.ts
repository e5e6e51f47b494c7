import type { RouteHandler } from '@hono/zod-openapi'
import type { Routes, SessionList } from '@session-events/server-stubs'
import { encodeCursor, positionOf } from '../cursor.js'
import type { AppEnv } from '../env.js'
import { HIGHEST_SESSION_ID, LOWEST_SESSION_ID, isSessionId } from '../ids.js'
import type { JsonReader } from '../json-reader.js'
import { claimOf, replayed } from '../middleware/idempotency.js'
import { sendJson } from '../respond.js'
import { jsonBytes, toSession } from '../serialize.js'
import type { StoreWriter } from '../store/types.js'

// Sessions: listed newest first, and made here, in the key's instance, for runs to write into.

export function sessionsHandlers(
  reader: JsonReader,
  writer: StoreWriter,
): {
  listSessions: RouteHandler<Routes['listSessions'], AppEnv>
  createSession: RouteHandler<Routes['createSession'], AppEnv>
} {
  return {
    async listSessions(c) {
      const query = c.req.valid('query')
      const page = await reader.listSessions({
        instanceId: c.get('instanceId'),
        limit: query.limit,
        position: positionOf(query, isSessionId),
        statuses: query.status,
      })
      // As listSessionEvents does (newest first here): an empty page past either end still
      // leads back, to the newest page from before the start, to the oldest from past the end.
      const first = page.sessions[0]?.id
      const last = page.sessions.at(-1)?.id
      const list: SessionList = {
        __typename: 'list',
        items: page.sessions.map(toSession),
        pagination: {
          has_more_before: page.hasMoreBefore,
          has_more_after: page.hasMoreAfter,
          next_cursor: page.hasMoreAfter ? encodeCursor({ direction: 'after', id: last ?? HIGHEST_SESSION_ID }) : null,
          previous_cursor: page.hasMoreBefore
            ? encodeCursor({ direction: 'before', id: first ?? LOWEST_SESSION_ID })
            : null,
        },
      }
      return sendJson(c, jsonBytes(list), 200)
    },

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
