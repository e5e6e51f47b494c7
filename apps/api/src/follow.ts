import * as specValues from '@session-events/server-stubs/values'
import { LOWEST_EVENT_ID } from './ids.js'
import type { EventFeed } from './store/feed.js'
import type { JsonReader } from './json-reader.js'
import type { ListEventsQuery } from './store/types.js'
import { runsOf } from './reads.js'
import { sessionEventBytes } from './serialize.js'

// The live tail of a session (streamSessionEvents): Server-Sent Events read from the store.
//
// The stream is a pull stream: it reads the next page of events from the store only when the
// client has taken what it was given (the stream's queue is below its high-water mark). So a
// follower that reads slowly is served from the store at its own pace, holds at most one page in
// memory, and loses nothing; one that keeps up waits for a wake-up from the feed between pages.
// Events go out in id order, which is commit order within a session (store/writer.ts), after the
// last id sent: none is skipped and none is sent twice, also across reconnects (Last-Event-ID).

/** How many events one read of the store sends at most. */
const PAGE = 50
/** A comment line this often keeps proxies from closing an idle stream (the spec's `x-sse-keep-alive`). */
export const KEEP_ALIVE_MS = specValues.sseKeepAlive.everySeconds * 1000
/** How long a browser's EventSource waits before it reconnects. */
export const RETRY_MS = 2_000
/** The `event:` names of the messages (the spec's `x-sse-events`): an event, and where the stream stands. */
const { sessionEvent: EVENT, position: POSITION } = specValues.sseEvents

export interface FollowOptions {
  reader: JsonReader
  feed: EventFeed
  sessionId: string
  /** Send the events after this id; undefined: from the session's newest event on (after `tail`). */
  after: string | undefined
  /** Send this many of the newest events first (when `after` is undefined). */
  tail: number
  filters: Pick<ListEventsQuery, 'serverRunIds' | 'serverSessionIds' | 'types'>
  /** Ends the stream cleanly (the server is shutting down: the client reconnects elsewhere). */
  signal?: AbortSignal
  /** Called once, when the stream ends for any reason. */
  onClose: () => void
}

const encoder = new TextEncoder()
const NEWLINES = encoder.encode('\n\n')

function message(id: string, event: Buffer): Uint8Array {
  const head = encoder.encode(`id: ${id}\nevent: ${EVENT.name}\ndata: `)
  const out = new Uint8Array(head.length + event.length + NEWLINES.length)
  out.set(head, 0)
  out.set(event, head.length)
  out.set(NEWLINES, head.length + event.length)
  return out
}

/**
 * The stream of a session's events. Where it starts is settled before this resolves, when the
 * request is answered, not when the client first reads: an event written in between is sent.
 */
export async function followSession(options: FollowOptions): Promise<ReadableStream<Uint8Array>> {
  const { reader, feed, sessionId, filters, signal } = options
  let last = options.after
  let ended = false
  /** Set by a wake-up: something may have been written since the last read. */
  let dirty = true
  let waiting: (() => void) | undefined
  const wake = () => {
    dirty = true
    waiting?.()
  }
  const unsubscribe = feed.subscribe(sessionId, wake)
  const end = () => {
    if (ended) return
    ended = true
    unsubscribe()
    signal?.removeEventListener('abort', onAbort)
    waiting?.()
    options.onClose()
  }
  let controllerRef: ReadableStreamDefaultController<Uint8Array> | undefined
  const onAbort = () => {
    if (ended) return
    try {
      controllerRef?.close()
    } catch {}
    end()
  }

  /** The newest events of the session, or those after `last`, with their runs, in id order. */
  async function readPage(query: Partial<ListEventsQuery>): Promise<{ ids: string[]; bytes: Uint8Array[] }> {
    const page = await reader.listEventIds({ sessionId, limit: PAGE, order: 'asc', ...filters, ...query })
    const ids = query.order === 'desc' ? [...page.ids].reverse() : page.ids
    const events = await reader.sessionEvents(sessionId, ids)
    const runs = await runsOf(reader, events, page.runsVersion)
    const bytes = events.map((e) =>
      message(e.id, sessionEventBytes(e, e.server_run_id === null ? undefined : runs.get(e.server_run_id))),
    )
    return { ids: events.map((e) => e.id), bytes }
  }

  // Where to start. Subscribed first: a wake-up from now on is not lost.
  let first: Uint8Array[] = []
  try {
    if (last === undefined) {
      // From now on: after the newest event as it is now, whatever the filters…
      last = (await reader.listEventIds({ sessionId, limit: 1, order: 'desc' })).ids[0]
      // …and first the newest `tail` events that pass them.
      if (options.tail > 0) {
        const tail = await readPage({ order: 'desc', limit: options.tail })
        first = tail.bytes
        const newestSent = tail.ids.at(-1)
        if (newestSent !== undefined && (last === undefined || newestSent > last)) last = newestSent
      }
    }
  } catch (error) {
    end()
    throw error
  }

  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controllerRef = controller
        if (signal?.aborted) return onAbort()
        signal?.addEventListener('abort', onAbort, { once: true })
        controller.enqueue(encoder.encode(`retry: ${RETRY_MS}\n\n`))
        for (const bytes of first) controller.enqueue(bytes)
        first = []
        // Where the stream stands, as an id without an event (a browser sets its Last-Event-ID
        // from it and dispatches nothing): a client that reconnects before the first event
        // resumes exactly here. An empty session stands before its first event.
        controller.enqueue(encoder.encode(`id: ${last ?? LOWEST_EVENT_ID}\nevent: ${POSITION.name}\ndata:\n\n`))
      },

      async pull(controller) {
        try {
          for (;;) {
            if (ended) return
            if (dirty) {
              dirty = false
              const page = await readPage(last === undefined ? {} : { position: { direction: 'after', id: last } })
              if (ended) return
              if (page.ids.length > 0) {
                for (const bytes of page.bytes) controller.enqueue(bytes)
                last = page.ids.at(-1)
                // A full page: there may be more at once; the next pull reads it.
                if (page.ids.length === PAGE) dirty = true
                return
              }
              // Nothing yet; but a wake-up that came during the read may be for a commit the
              // read did not see: look again before waiting.
              continue
            }
            // Nothing new: wait for a wake-up, or send a keep-alive when none comes.
            const woken = await new Promise<boolean>((resolve) => {
              const timer = setTimeout(() => resolve(false), KEEP_ALIVE_MS)
              waiting = () => {
                clearTimeout(timer)
                resolve(true)
              }
            })
            waiting = undefined
            if (ended) return
            if (!woken) {
              controller.enqueue(encoder.encode(`${specValues.sseKeepAlive.line}\n\n`))
              return
            }
          }
        } catch (error) {
          // The store failed mid-stream: end it; the client resumes from its last id.
          try {
            controller.error(error)
          } catch {}
          end()
        }
      },

      cancel() {
        end()
      },
    },
    // The queue holds about one page: while the client does not read, nothing more is read.
    { highWaterMark: 1 },
  )
}

/** How many streams each API key holds at once, on this process, against a cap. */
export class StreamSlots {
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
