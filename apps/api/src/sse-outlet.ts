import type { ServerResponse } from 'node:http'

// Where a live tail's bytes go (follow.ts): the client's connection itself, as Node has it, when
// the API runs on @hono/node-server, or a ReadableStream for the Response anywhere else
// (app.request in the tests, another runtime). The follower pushes a page at a time and pushes no
// more while the client has not taken it (`ready`), so that it holds about one page whatever the
// client's pace, on either.
//
// Why not a ReadableStream always: at 1,000 followers of a session each event went through the
// stream's queue, its reader's promise, @hono/node-server's copy to the connection and the next
// pull, once per follower. In CPU profiles of the follow suite (1,000 followers, SQLite), the
// API's own JavaScript per follower and event went from about 19 µs that way to 8 written to the
// connection; the write itself (the kernel's) is about 16 µs either way.

export interface Outlet {
  /** Sends bytes to the client (after whatever was sent before). */
  send(bytes: Uint8Array): void
  /** The client has taken what it was sent, but for at most a page: more may be sent. */
  readonly ready: boolean
  /** Resolves once `ready`, or once the client is gone. */
  drained(): Promise<void>
  /** Ends the stream cleanly. */
  close(): void
  /** Ends the stream abruptly (the store failed): the client resumes from its last id. */
  fail(error: unknown): void
  /** Calls `gone` once when the client goes away, or the stream has ended. */
  whenGone(gone: () => void): void
}

/** The connection's response, its head already written; no more is sent while Node holds a page's worth (its high-water mark) unsent. */
export function responseOutlet(res: ServerResponse): Outlet {
  // A write after the end is refused with an 'error' event: there is nothing to do then.
  res.on('error', () => {})
  return {
    send: (bytes) => void res.write(bytes),
    get ready() {
      return !res.writableNeedDrain && !res.destroyed
    },
    drained: () =>
      new Promise<void>((resolve) => {
        // Destroyed: its 'close' is on its way (and with it the stream's end).
        if (res.closed || (!res.writableNeedDrain && !res.destroyed)) return resolve()
        const done = () => {
          res.off('drain', done)
          res.off('close', done)
          resolve()
        }
        res.on('drain', done)
        res.on('close', done)
      }),
    close: () => void res.end(),
    fail: (error) => void res.destroy(error instanceof Error ? error : new Error(String(error))),
    whenGone: (gone) => void res.once('close', gone),
  }
}

/** A ReadableStream for the Response, and its outlet: the stream's queue holds one chunk before it is not `ready`. */
export function streamOutlet(): { outlet: Outlet; body: ReadableStream<Uint8Array> } {
  let controller!: ReadableStreamDefaultController<Uint8Array>
  let closed = false
  let onGone: (() => void) | undefined
  let waiting: (() => void)[] = []
  const wakeWaiting = () => {
    const now = waiting
    waiting = []
    for (const resolve of now) resolve()
  }
  const gone = () => {
    if (closed) return
    closed = true
    wakeWaiting()
    onGone?.()
  }
  const body = new ReadableStream<Uint8Array>(
    {
      start(c) {
        controller = c
      },
      // The client has taken what the queue held: the follower may send more.
      pull() {
        wakeWaiting()
      },
      cancel() {
        gone()
      },
    },
    { highWaterMark: 1 },
  )
  const outlet: Outlet = {
    send(bytes) {
      if (!closed) controller.enqueue(bytes)
    },
    get ready() {
      return !closed && (controller.desiredSize ?? 0) > 0
    },
    drained: () =>
      new Promise<void>((resolve) => {
        if (closed || (controller.desiredSize ?? 0) > 0) return resolve()
        waiting.push(resolve)
      }),
    close() {
      if (closed) return
      try {
        controller.close()
      } catch {}
      gone()
    },
    fail(error) {
      if (closed) return
      try {
        controller.error(error)
      } catch {}
      gone()
    },
    whenGone(callback) {
      onGone = callback
    },
  }
  return { outlet, body }
}
