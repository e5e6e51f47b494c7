import { ServerResponse } from 'node:http'
import type { HttpBindings } from '@hono/node-server'
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response'
import type { RouteHandler } from '@hono/zod-openapi'
import type { Routes } from '@session-events/server-stubs'
import { encodeCursor, positionOf } from '../cursor.js'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'
import { HIGHEST_EVENT_ID, LOWEST_EVENT_ID } from '../ids.js'
import { sendJson, respond, responseHeaders } from '../respond.js'
import { requireSession, runsOf } from '../reads.js'
import { sessionEventBytes, sessionEventJson, sessionEventListBytes } from '../serialize.js'
import type { JsonReader } from '../json-reader.js'
import { claimOf, replayed } from '../middleware/idempotency.js'
import type { StoreWriter } from '../store/types.js'
import { followSession } from '../follow.js'
import { responseOutlet, streamOutlet } from '../sse-outlet.js'
import type { StreamCap } from '../store/stream-slots.js'
import type { EventFeed } from '../store/feed.js'
import { LiveSessions } from '../live-sessions.js'

// Session events: listed, read one at a time, appended. Thin handlers: the generated route has
// parsed and validated the request (defaults applied); here the session is checked against the
// key's instance, the store is asked, and what it serialised is sent.

export interface SessionEventsDeps {
  reader: JsonReader
  writer: StoreWriter
  feed: EventFeed
  /** Streams per API key: this process's count, or every process's (PostgreSQL). */
  streams: StreamCap
  /** Aborted when the server shuts down: open streams end, so that clients reconnect elsewhere. */
  shutdown?: AbortSignal | undefined
}

export function sessionEventsHandlers({ reader, writer, feed, streams, shutdown }: SessionEventsDeps): {
  listSessionEvents: RouteHandler<Routes['listSessionEvents'], AppEnv>
  getSessionEvent: RouteHandler<Routes['getSessionEvent'], AppEnv>
  createSessionEvent: RouteHandler<Routes['createSessionEvent'], AppEnv>
  streamSessionEvents: RouteHandler<Routes['streamSessionEvents'], AppEnv>
} {
  // The followers of a session at its head share one read per wake-up (live-sessions.ts).
  const live = new LiveSessions(feed)
  return {
    async listSessionEvents(c) {
      const { sessionId } = c.req.valid('param')
      const query = c.req.valid('query')
      const position = positionOf(query)
      await requireSession(reader, c.get('instanceId'), sessionId)

      const page = await reader.listEventIds({
        sessionId,
        limit: query.limit,
        order: query.order,
        position,
        serverRunIds: query.server_run_id,
        serverSessionIds: query.server_session_id,
        types: query.type,
      })
      const events = await reader.sessionEvents(sessionId, page.ids)
      const runs = await runsOf(reader, events, page.runsVersion)

      // An empty page past either end still leads back: to the first page from before the
      // start, to the last page from past the end.
      const ascending = query.order === 'asc'
      const first = page.ids[0]
      const last = page.ids.at(-1)
      return sendJson(
        c,
        sessionEventListBytes(events, runs, {
          has_more_before: page.hasMoreBefore,
          has_more_after: page.hasMoreAfter,
          next_cursor: page.hasMoreAfter
            ? encodeCursor({ direction: 'after', id: last ?? (ascending ? LOWEST_EVENT_ID : HIGHEST_EVENT_ID) })
            : null,
          previous_cursor: page.hasMoreBefore
            ? encodeCursor({ direction: 'before', id: first ?? (ascending ? HIGHEST_EVENT_ID : LOWEST_EVENT_ID) })
            : null,
        }),
        200,
      )
    },

    async getSessionEvent(c) {
      const { sessionId, sessionEventId } = c.req.valid('param')
      await requireSession(reader, c.get('instanceId'), sessionId)
      const [event] = await reader.sessionEvents(sessionId, [sessionEventId])
      if (!event) throw errors.sessionEventNotFound()
      const [run] = event.server_run_id === null ? [] : await reader.serverRuns([event.server_run_id])
      return sendJson(c, sessionEventBytes(event, run), 200)
    },

    async streamSessionEvents(c) {
      const { sessionId } = c.req.valid('param')
      const query = c.req.valid('query')
      const lastEventId = c.req.valid('header')['Last-Event-ID']
      await requireSession(reader, c.get('instanceId'), sessionId)
      const keyId = c.get('apiKeyId')
      if (!(await streams.take(keyId))) throw errors.tooManyStreams(streams.perKey)
      const run = await followSession({
        reader,
        feed,
        live,
        sessionId,
        // A reconnecting EventSource adds Last-Event-ID to the URL it first opened: it wins.
        after: lastEventId ?? query.after,
        tail: query.tail,
        filters: { serverRunIds: query.server_run_id, serverSessionIds: query.server_session_id, types: query.type },
        signal: shutdown,
        onClose: () => streams.give(keyId),
      })
      const headers = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }
      // On @hono/node-server (HTTP/1.1), the events go to the connection itself; elsewhere, through the Response.
      const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing
      if (outgoing instanceof ServerResponse) {
        outgoing.writeHead(200, responseHeaders(c, 200, headers))
        run(responseOutlet(outgoing))
        return RESPONSE_ALREADY_SENT
      }
      const { outlet, body } = streamOutlet()
      run(outlet)
      return respond(c, body, 200, headers)
    },

    async createSessionEvent(c) {
      const { sessionId } = c.req.valid('param')
      const body = c.req.valid('json')
      await requireSession(reader, c.get('instanceId'), sessionId)
      const appended = await writer.appendEvent({
        sessionId,
        serverRunId: body.server_run_id,
        lines: body.log_lines,
        claim: claimOf(c, 201),
      })
      // The run as it is now: the version read with the append keeps a cached one good.
      const [run] = await reader.serverRuns([body.server_run_id], appended.runsVersion)
      return sendJson(c, sessionEventBytes(sessionEventJson(appended), run), 201, replayed(appended))
    },
  }
}
