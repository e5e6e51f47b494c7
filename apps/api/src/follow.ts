import * as specValues from '@session-events/server-stubs/values'
import { LOWEST_EVENT_ID } from './ids.js'
import type { EventFeed } from './store/feed.js'
import type { StreamCap } from './store/stream-slots.js'
import type { JsonReader } from './json-reader.js'
import type { Outlet } from './sse-outlet.js'
import type { ListEventsQuery } from './store/types.js'
import { runsOf } from './reads.js'
import { sessionEventBytes } from './serialize.js'
import {
  followersKey,
  PAGE,
  type LiveFollower,
  type LivePage,
  type LiveSessions,
  type ReadAfter,
} from './live-sessions.js'

// The live tail of a session (streamSessionEvents): Server-Sent Events read from the store.
//
// The stream is sent a page at a time, and the next page only once the client has taken the one
// before (the outlet, sse-outlet.ts, is `ready`: the client's connection, or the Response's
// stream, holds no more than that). A follower at the head of the session
// shares one read of the store per wake-up with every other follower of the session and filters
// on this process (live-sessions.ts); one that falls behind (a slow client, a resume from an old
// id) reads the store on its own, at its own pace, and joins the shared read again once one of
// its reads finds nothing more. Either way it holds at most one page in memory and loses nothing.
// Events go out in id order, which is commit order within a session (store/event-log.ts), after
// the last id sent: none is skipped and none is sent twice, also across reconnects (Last-Event-ID).

/** A comment line this often keeps proxies from closing an idle stream (the spec's `x-sse-keep-alive`). */
export const KEEP_ALIVE_MS = specValues.sseKeepAlive.everySeconds * 1000
/** How long a browser's EventSource waits before it reconnects (the spec's `x-sse-retry`). */
export const RETRY_MS = specValues.sseRetry.milliseconds
/** The `event:` names of the messages (the spec's `x-sse-events`): an event, and where the stream stands. */
const { sessionEvent: EVENT, position: POSITION } = specValues.sseEvents

type Filters = Pick<ListEventsQuery, 'serverRunIds' | 'serverSessionIds' | 'types'>

export interface FollowOptions {
  reader: JsonReader
  feed: EventFeed
  /** The shared reads of this process. */
  live: LiveSessions
  sessionId: string
  /** Send the events after this id; undefined: from the session's newest event on (after `tail`). */
  after: string | undefined
  /** Send this many of the newest events first (when `after` is undefined). */
  tail: number
  filters: Filters
  /** Ends the stream cleanly (the server is shutting down: the client reconnects elsewhere). */
  signal?: AbortSignal
  /** Called once, when the stream ends for any reason. */
  onClose: () => void
}

const encoder = new TextEncoder()
const NEWLINES = encoder.encode('\n\n')
const KEEP_ALIVE = encoder.encode(`${specValues.sseKeepAlive.line}\n\n`)

function message(id: string, event: Buffer): Uint8Array {
  const head = encoder.encode(`id: ${id}\nevent: ${EVENT.name}\ndata: `)
  const out = new Uint8Array(head.length + event.length + NEWLINES.length)
  out.set(head, 0)
  out.set(event, head.length)
  out.set(NEWLINES, head.length + event.length)
  return out
}

/** The newest events of the session, or those after a position, with their runs, in id order. */
async function readPage(
  reader: JsonReader,
  sessionId: string,
  filters: Filters,
  query: Partial<ListEventsQuery>,
): Promise<LivePage> {
  const page = await reader.listEventIds({ sessionId, limit: PAGE, order: 'asc', ...filters, ...query })
  const ids = query.order === 'desc' ? [...page.ids].reverse() : page.ids
  const events = await reader.sessionEvents(sessionId, ids)
  const runs = await runsOf(reader, events, page.runsVersion)
  const bytes = events.map((e) =>
    message(e.id, sessionEventBytes(e, e.server_run_id === null ? undefined : runs.get(e.server_run_id))),
  )
  return { ids: events.map((e) => e.id), bytes }
}

/** The pages after an id: made here, so that a shared read keeps nothing of the follower that opened it. */
const readerAfter =
  (reader: JsonReader, sessionId: string, filters: Filters): ReadAfter =>
  (after) =>
    readPage(reader, sessionId, filters, { position: { direction: 'after', id: after } })

/**
 * A session's live tail. Where it starts is settled before this resolves, when the request is
 * answered, not when the client first reads: an event written in between is sent. What it
 * resolves to runs the stream into the client's outlet (sse-outlet.ts); it is called at once.
 */
export async function followSession(options: FollowOptions): Promise<(outlet: Outlet) => void> {
  const { reader, feed, live, sessionId, filters, signal } = options
  const readAfter = readerAfter(reader, sessionId, filters)
  const key = followersKey(sessionId, filters)
  let last = options.after
  let ended = false
  /** Reading on its own: set by a wake-up, something may have been written since the last read. */
  let dirty = true
  /** The loop's wait: for a wake-up, for leaving the shared read, for the end. */
  let waiting: (() => void) | undefined
  /** Set while the follower is in the shared read: how to leave it. */
  let leaveShared: (() => void) | undefined
  /** Its own wake-ups, while it reads on its own (the shared read has its own). */
  let unsubscribe: (() => void) | undefined
  let out: Outlet | undefined
  /** A comment, KEEP_ALIVE_MS after the last bytes sent. */
  let keepAlive: NodeJS.Timeout | undefined
  const wakeLoop = () => {
    const resolve = waiting
    waiting = undefined
    resolve?.()
  }
  const wake = () => {
    dirty = true
    wakeLoop()
  }
  const readOnOwn = () => {
    leaveShared = undefined
    dirty = true
    unsubscribe ??= feed.subscribe(sessionId, wake)
    wakeLoop()
  }
  // Subscribed first: a wake-up from now on is not lost.
  readOnOwn()
  const end = () => {
    if (ended) return
    ended = true
    unsubscribe?.()
    leaveShared?.()
    clearTimeout(keepAlive)
    signal?.removeEventListener('abort', onAbort)
    wakeLoop()
    options.onClose()
  }
  const onAbort = () => {
    if (ended) return
    out?.close()
    end()
  }

  const follower: LiveFollower = {
    get last() {
      return last ?? LOWEST_EVENT_ID
    },
    deliver(page) {
      if (ended) return false
      const from = last ?? LOWEST_EVENT_ID
      let i = 0
      while (i < page.ids.length && page.ids[i]! <= from) i++
      if (i === page.ids.length) return true
      // The client has not taken what it was sent (it is slow): it reads on its own from its last id.
      if (!out?.ready) {
        readOnOwn()
        return false
      }
      for (; i < page.ids.length; i++) out.send(page.bytes[i]!)
      keepAlive?.refresh()
      last = page.ids.at(-1)
      return true
    },
    fail(error) {
      leaveShared = undefined
      out?.fail(error)
      end()
    },
  }

  // Where to start.
  let first: Uint8Array[] = []
  try {
    if (last === undefined) {
      // From now on: after the newest event as it is now, whatever the filters…
      last = (await reader.listEventIds({ sessionId, limit: 1, order: 'desc' })).ids[0]
      // …and first the newest `tail` events that pass them.
      if (options.tail > 0) {
        const tail = await readPage(reader, sessionId, filters, { order: 'desc', limit: options.tail })
        first = tail.bytes
        const newestSent = tail.ids.at(-1)
        if (newestSent !== undefined && (last === undefined || newestSent > last)) last = newestSent
      }
    }
  } catch (error) {
    end()
    throw error
  }

  /** Sends what there is to send, a page at a time, while the client takes it; then waits. */
  const loop = async (out: Outlet) => {
    try {
      for (;;) {
        if (ended) return
        if (!out.ready) {
          await out.drained()
          continue
        }
        if (leaveShared || !dirty) {
          // In the shared read, which sends it its pages, until it leaves it; or nothing new:
          // until a wake-up.
          await new Promise<void>((resolve) => (waiting = resolve))
          continue
        }
        dirty = false
        const page = await readAfter(last ?? LOWEST_EVENT_ID)
        if (ended) return
        for (const bytes of page.bytes) out.send(bytes)
        if (page.ids.length > 0) {
          last = page.ids.at(-1)
          keepAlive?.refresh()
        }
        if (page.ids.length === PAGE)
          dirty = true // a full page: there may be more at once
        else {
          // Caught up as of this read: it joins the shared read, unless that one is ahead (it
          // has read an event this read did not see: the wake-up for it reads on). A wake-up
          // that came during the read may be for a commit the read did not see: `dirty` again.
          leaveShared = live.join(sessionId, key, follower, readAfter)
          if (leaveShared) {
            unsubscribe?.()
            unsubscribe = undefined
          }
        }
      }
    } catch (error) {
      // The store failed mid-stream: end it; the client resumes from its last id.
      out.fail(error)
      end()
    }
  }

  return (outlet) => {
    out = outlet
    outlet.whenGone(end)
    if (signal?.aborted) return onAbort()
    signal?.addEventListener('abort', onAbort, { once: true })
    outlet.send(encoder.encode(`retry: ${RETRY_MS}\n\n`))
    for (const bytes of first) outlet.send(bytes)
    first = []
    // Where the stream stands, as an id without an event (a browser sets its Last-Event-ID
    // from it and dispatches nothing): a client that reconnects before the first event
    // resumes exactly here. An empty session stands before its first event.
    outlet.send(encoder.encode(`id: ${last ?? LOWEST_EVENT_ID}\nevent: ${POSITION.name}\ndata:\n\n`))
    // Nothing sent for KEEP_ALIVE_MS: a comment, if the client has taken what it was sent.
    keepAlive = setTimeout(function sendKeepAlive() {
      if (ended) return
      if (outlet.ready) outlet.send(KEEP_ALIVE)
      keepAlive!.refresh()
    }, KEEP_ALIVE_MS)
    void loop(outlet)
  }
}

/** How many streams each API key holds at once, on this process, against a cap (PostgreSQL's, across processes: store/stream-slots.ts). */
export class StreamSlots implements StreamCap {
  readonly #held = new Map<string, number>()
  constructor(readonly perKey: number) {}

  /** Takes a slot for the key; false when it holds `perKey` already. */
  take(keyId: string): boolean {
    const held = this.#held.get(keyId) ?? 0
    if (held >= this.perKey) return false
    this.#held.set(keyId, held + 1)
    return true
  }

  give(keyId: string): void {
    const held = (this.#held.get(keyId) ?? 1) - 1
    if (held <= 0) this.#held.delete(keyId)
    else this.#held.set(keyId, held)
  }

  /** Streams open now, on this process. */
  get open(): number {
    let n = 0
    for (const held of this.#held.values()) n += held
    return n
  }
}
