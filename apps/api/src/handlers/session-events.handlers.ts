import type { SessionEventsHandlers } from '@session-events/server-stubs'
import type { Context } from 'hono'
import { LRUCache } from 'lru-cache'
import { decodeCursor, encodeCursor } from '../cursor.js'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'
import { sendJson } from '../json.js'
import { sessionEventJson, sessionEventListJson } from '../serialize.js'
import type { ListEventsQuery } from '../store/types.js'

// Thin handlers: the generated route has parsed the request; here we authorise against the
// session's instance, ask the store and send what it serialised.

/** Event ids below and above every real one, for cursors that stand at either end of a list. */
const LOWEST_EVENT_ID = `sev_${'0'.repeat(22)}`
const HIGHEST_EVENT_ID = `sev_${'z'.repeat(22)}`

export function createSessionEventsHandlers(): SessionEventsHandlers<AppEnv> {
  /** Sessions never change instance, so where a session lives is cached once known. */
  const sessionInstances = new LRUCache<string, string>({ max: 100_000 })

  /** 404 unless the session exists in the key's instance; another instance's answers the same. */
  async function requireSession(c: Context<AppEnv>, sessionId: string): Promise<void> {
    let instanceId = sessionInstances.get(sessionId)
    if (instanceId === undefined) {
      instanceId = await c.get('store').sessionInstance(sessionId)
      if (instanceId !== undefined) sessionInstances.set(sessionId, instanceId)
    }
    if (instanceId !== c.get('instanceId')) throw errors.sessionNotFound()
  }

  return {
    async listSessionEvents(c) {
      const { sessionId } = c.req.valid('param')
      const query = c.req.valid('query')

      let position: ListEventsQuery['position']
      if (query.after !== undefined && query.before !== undefined) {
        throw errors.badRequest('Use either `after` or `before`, not both.')
      }
      if (query.cursor !== undefined) {
        if (query.after !== undefined || query.before !== undefined) {
          throw errors.badRequest('Use either `cursor` or `after`/`before`, not both.')
        }
        const cursor = decodeCursor(query.cursor)
        if (!cursor) {
          throw errors.badRequest(
            'The cursor is invalid.',
            'Pass a cursor exactly as a previous response gave it in pagination.next_cursor or pagination.previous_cursor.',
          )
        }
        position = cursor
      } else if (query.after !== undefined) {
        position = { direction: 'after', id: query.after }
      } else if (query.before !== undefined) {
        position = { direction: 'before', id: query.before }
      }

      await requireSession(c, sessionId)
      const page = await c.get('store').listSessionEvents({
        sessionId,
        limit: query.limit ?? 20,
        order: query.order ?? 'asc',
        position,
        serverRunIds: query.server_run_id,
        serverSessionIds: query.server_session_id,
        types: query.type,
      })

      // An empty page past either end still leads back: to the first page from before the
      // start, to the last page from past the end.
      const ascending = (query.order ?? 'asc') === 'asc'
      const first = page.events[0]
      const last = page.events.at(-1)
      return sendJson(
        c,
        sessionEventListJson(page.events, page.runs, {
          has_more_before: page.hasMoreBefore,
          has_more_after: page.hasMoreAfter,
          next_cursor: page.hasMoreAfter
            ? encodeCursor({ direction: 'after', id: last?.id ?? (ascending ? LOWEST_EVENT_ID : HIGHEST_EVENT_ID) })
            : null,
          previous_cursor: page.hasMoreBefore
            ? encodeCursor({ direction: 'before', id: first?.id ?? (ascending ? HIGHEST_EVENT_ID : LOWEST_EVENT_ID) })
            : null,
        }),
        200,
      )
    },

    async getSessionEvent(c) {
      const { sessionId, sessionEventId } = c.req.valid('param')
      await requireSession(c, sessionId)
      const found = await c.get('store').getSessionEvent(sessionId, sessionEventId)
      if (!found) throw errors.sessionEventNotFound()
      return sendJson(c, sessionEventJson(found.event, found.run), 200)
    },
  }
}
