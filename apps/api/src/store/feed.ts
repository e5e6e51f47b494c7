import { randomBytes } from 'node:crypto'
import pg from 'pg'

// Wake-ups for followers of a session (the live tail, follow.ts): "events may have been written
// to this session". A wake-up is never the data: a follower woken reads the store after the last
// id it sent, so a wake-up that comes twice, late or for nothing costs a query and loses nothing.
// What must hold is that a commit is followed by a wake-up, on every process:
// - this process's writes wake its followers at the end of the turn they were committed in
//   (the writer calls published()), after their answers;
// - SQLite: another process's commits are noticed by polling PRAGMA data_version (PollingFeed);
// - PostgreSQL: each process keeps one connection (PostgresFeed) that LISTENs, and NOTIFYs the
//   sessions this process wrote to, after their commits, at most once every NOTIFY_EVERY_MS: the
//   first write after a quiet spell at once, those that follow within the window together at
//   its end (waiting for the window's end every time put 5 ms under every wake-up). Not
//   inside the writing transaction: a transaction that notified takes a lock at commit that
//   serialises every notifying commit of the cluster, and with 16 writers at once commits fell
//   from about 3,600 a second to 700 (pgbench, bench/README.md). A notification lost on the way
//   (the writing process dies between its commit and its NOTIFY) is made up for by a slow poll:
//   every SAFETY_POLL_MS every follower reads once.

export interface EventFeed {
  /** Calls `wake` whenever events may have been written to the session; returns the unsubscribe. */
  subscribe(sessionId: string, wake: () => void): () => void
  /** Events were committed to these sessions by this process. */
  published(sessionIds: Iterable<string>): void
  close(): Promise<void>
}

/**
 * The channel the processes notify on PostgreSQL. The payload: the notifying process's mark and
 * the session ids, separated by spaces (a payload of one session id alone, as writers before
 * this one sent it, is another process's too).
 */
export const NOTIFY_CHANNEL = 'session_events'
/** A process NOTIFYs at most this often, every session it wrote to since in one notification. */
export const NOTIFY_EVERY_MS = 5
/** Every follower reads this often all the same, in case a notification was lost. */
export const SAFETY_POLL_MS = 2_000
/** A NOTIFY's payload must be under 8,000 bytes. */
const MAX_PAYLOAD = 7_900

/** This process's wake-ups only: enough for a store no other process writes to (PGlite, in-memory SQLite). */
export class LocalFeed implements EventFeed {
  readonly #followers = new Map<string, Set<() => void>>()

  subscribe(sessionId: string, wake: () => void): () => void {
    let set = this.#followers.get(sessionId)
    if (!set) this.#followers.set(sessionId, (set = new Set()))
    set.add(wake)
    this.onSubscribersChanged()
    return () => {
      set.delete(wake)
      if (set.size === 0 && this.#followers.get(sessionId) === set) this.#followers.delete(sessionId)
      this.onSubscribersChanged()
    }
  }

  /** Sessions this process wrote to in this turn of the event loop, woken at its end. */
  #written = new Set<string>()

  published(sessionIds: Iterable<string>): void {
    // Woken once the turn is over (setImmediate), not now: the answers of the writes made in
    // this turn (an append's 201) go out first, and not after the bytes of every follower of
    // the session (1,000 followers held an append's 201 back by 10 ms on SQLite, where the
    // followers' read is synchronous); the writes of one turn (group commit) wake each session once.
    const first = this.#written.size === 0
    for (const id of sessionIds) this.#written.add(id)
    if (!first || this.#written.size === 0) return
    setImmediate(() => {
      const written = this.#written
      this.#written = new Set()
      this.wake(written)
    })
  }

  /** Wakes this process's followers of these sessions. */
  protected wake(sessionIds: Iterable<string>): void {
    for (const id of sessionIds) for (const wake of this.#followers.get(id) ?? []) wake()
  }

  /** Wakes every follower of every session (after a gap in what could be noticed). */
  protected wakeAll(): void {
    for (const set of this.#followers.values()) for (const wake of set) wake()
  }

  protected get followed(): number {
    return this.#followers.size
  }

  protected onSubscribersChanged(): void {}

  async close(): Promise<void> {}
}

/**
 * Another process's commits, noticed by polling a value that changes with every commit of
 * another connection (SQLite's PRAGMA data_version), every `intervalMs` while anyone follows.
 */
export class PollingFeed extends LocalFeed {
  readonly #version: () => unknown
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | undefined
  #last: unknown

  constructor(version: () => unknown, intervalMs = 100) {
    super()
    this.#version = version
    this.#intervalMs = intervalMs
  }

  protected override onSubscribersChanged(): void {
    if (this.followed > 0 && !this.#timer) {
      this.#last = this.#version()
      this.#timer = setInterval(() => {
        let now: unknown
        try {
          now = this.#version()
        } catch {
          return // closed, or busy: the next tick tries again
        }
        if (now !== this.#last) {
          this.#last = now
          this.wakeAll()
        }
      }, this.#intervalMs)
      this.#timer.unref()
    } else if (this.followed === 0 && this.#timer) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }

  override async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/**
 * One connection per process, opened when the first follower comes or the first write is to be
 * told: it LISTENs, and NOTIFYs this process's writes (after their commits, batched). A
 * notification of another process wakes that session's followers; one of this process (its
 * mark) is passed over, its followers were woken after the commit. A connection lost is opened
 * again (with a growing pause), and then every follower is woken, since what was committed
 * meanwhile went unheard; what this process had to tell meanwhile is told then.
 */
export class PostgresFeed extends LocalFeed {
  readonly #config: pg.ClientConfig
  /** This process's mark on its notifications. */
  readonly #mark = randomBytes(9).toString('base64url')
  #client: pg.Client | undefined
  #connecting: Promise<void> | undefined
  #closed = false
  #retryMs = 100
  /** Sessions written to by this process, not yet notified. */
  #toNotify = new Set<string>()
  #notifyTimer: NodeJS.Timeout | undefined
  /** Until when (performance.now()) a NOTIFY waits: NOTIFY_EVERY_MS after the last one began. */
  #windowEnd = -Infinity
  #notifying: Promise<void> | undefined
  #pollTimer: NodeJS.Timeout | undefined

  constructor(config: pg.ClientConfig) {
    super()
    this.#config = config
  }

  override published(sessionIds: Iterable<string>): void {
    super.published(sessionIds)
    for (const id of sessionIds) this.#toNotify.add(id)
    if (this.#toNotify.size === 0 || this.#closed) return
    this.#connectIfNeeded()
    if (this.#notifyTimer) return
    const wait = this.#windowEnd - performance.now()
    if (wait <= 0) return this.#notifyNow()
    this.#notifyTimer = setTimeout(() => {
      this.#notifyTimer = undefined
      this.#notifyNow()
    }, wait)
  }

  #notifyNow(): void {
    this.#windowEnd = performance.now() + NOTIFY_EVERY_MS
    void this.#notify()
  }

  protected override onSubscribersChanged(): void {
    if (this.followed > 0) {
      this.#connectIfNeeded()
      if (!this.#pollTimer) {
        this.#pollTimer = setInterval(() => this.wakeAll(), SAFETY_POLL_MS)
        this.#pollTimer.unref()
      }
    } else if (this.#pollTimer) {
      clearInterval(this.#pollTimer)
      this.#pollTimer = undefined
    }
  }

  #connectIfNeeded(): void {
    if (!this.#client && !this.#connecting && !this.#closed) this.#connecting = this.#connect()
  }

  /** Sends what is to be told, one notification per payload's worth of session ids. */
  async #notify(): Promise<void> {
    if (this.#notifying) return this.#notifying
    const client = this.#client
    if (!client || this.#toNotify.size === 0) return // told once connected (#connect)
    const ids = [...this.#toNotify]
    this.#toNotify.clear()
    this.#notifying = (async () => {
      try {
        for (const payload of payloads(this.#mark, ids)) {
          await client.query('select pg_notify($1, $2)', [NOTIFY_CHANNEL, payload])
        }
      } catch {
        // The connection failed: told again once it is open again.
        for (const id of ids) this.#toNotify.add(id)
      } finally {
        this.#notifying = undefined
      }
    })()
    await this.#notifying
    // Written to meanwhile: told at the next turn.
    if (this.#toNotify.size > 0 && this.#client) void this.#notify()
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config)
    const lost = () => {
      if (this.#client !== client) return
      this.#client = undefined
      client.end().catch(() => {})
      if (this.#closed) return
      setTimeout(() => this.#connectIfNeeded(), this.#retryMs).unref()
      this.#retryMs = Math.min(this.#retryMs * 2, 5_000)
    }
    client.on('error', lost)
    client.on('end', lost)
    client.on('notification', (message) => {
      if (message.channel !== NOTIFY_CHANNEL || !message.payload) return
      const [mark, ...ids] = message.payload.split(' ')
      if (ids.length === 0) this.wake([mark!])
      else if (mark !== this.#mark) this.wake(ids)
    })
    try {
      await client.connect()
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`)
      if (this.#closed) {
        await client.end()
        return
      }
      this.#client = client
      this.#retryMs = 100
      // Whatever was committed before LISTEN took effect went unheard; what was written here, untold.
      this.wakeAll()
      void this.#notify()
    } catch {
      client.end().catch(() => {})
      if (!this.#closed) {
        setTimeout(() => this.#connectIfNeeded(), this.#retryMs).unref()
        this.#retryMs = Math.min(this.#retryMs * 2, 5_000)
      }
    } finally {
      this.#connecting = undefined
    }
  }

  override async close(): Promise<void> {
    // What this process wrote is told before it goes (a writer that stops right after writing).
    if (this.#notifyTimer) clearTimeout(this.#notifyTimer)
    this.#notifyTimer = undefined
    if (this.#toNotify.size > 0) {
      await this.#connecting
      await this.#notify().catch(() => {})
    }
    this.#closed = true
    if (this.#pollTimer) clearInterval(this.#pollTimer)
    this.#pollTimer = undefined
    await this.#connecting
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }
}

/** The payloads that tell these session ids, each under NOTIFY's limit. */
function payloads(mark: string, ids: readonly string[]): string[] {
  const out: string[] = []
  let payload = mark
  for (const id of ids) {
    if (payload.length + 1 + id.length > MAX_PAYLOAD) {
      out.push(payload)
      payload = mark
    }
    payload += ` ${id}`
  }
  if (payload !== mark) out.push(payload)
  return out
}
