import pg from 'pg'

// Wake-ups for followers of a session (the live tail, follow.ts): "events may have been written
// to this session". A wake-up is never the data: a follower woken reads the store after the last
// id it sent, so a wake-up that comes twice, late or for nothing costs a query and loses nothing.
// What must hold is that a commit is followed by a wake-up, on every process:
// - this process's writes wake its followers at once (the writer calls published());
// - SQLite: another process's commits are noticed by polling PRAGMA data_version (PollingFeed);
// - PostgreSQL: the writing transaction NOTIFYs (delivered at commit), and each process keeps one
//   LISTEN connection (PostgresFeed).

export interface EventFeed {
  /** Calls `wake` whenever events may have been written to the session; returns the unsubscribe. */
  subscribe(sessionId: string, wake: () => void): () => void
  /** Events were committed to these sessions by this process. */
  published(sessionIds: Iterable<string>): void
  close(): Promise<void>
}

/** The channel the writing transactions notify on PostgreSQL, with the session id as payload. */
export const NOTIFY_CHANNEL = 'session_events'

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

  published(sessionIds: Iterable<string>): void {
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
 * One LISTEN connection per process, opened when the first follower comes. A notification wakes
 * that session's followers; a connection lost is opened again (with a growing pause), and then
 * every follower is woken, since what was committed meanwhile went unheard.
 */
export class PostgresFeed extends LocalFeed {
  readonly #config: pg.ClientConfig
  #client: pg.Client | undefined
  #connecting: Promise<void> | undefined
  #closed = false
  #retryMs = 100

  constructor(config: pg.ClientConfig) {
    super()
    this.#config = config
  }

  protected override onSubscribersChanged(): void {
    if (this.followed > 0 && !this.#client && !this.#connecting && !this.#closed) this.#connecting = this.#connect()
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#config)
    const lost = () => {
      if (this.#client !== client) return
      this.#client = undefined
      client.end().catch(() => {})
      if (this.#closed) return
      setTimeout(() => this.onSubscribersChanged(), this.#retryMs).unref()
      this.#retryMs = Math.min(this.#retryMs * 2, 5_000)
    }
    client.on('error', lost)
    client.on('end', lost)
    client.on('notification', (message) => {
      if (message.channel === NOTIFY_CHANNEL && message.payload) this.published([message.payload])
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
      // Whatever was committed before LISTEN took effect went unheard.
      this.wakeAll()
    } catch {
      client.end().catch(() => {})
      if (!this.#closed) {
        setTimeout(() => this.onSubscribersChanged(), this.#retryMs).unref()
        this.#retryMs = Math.min(this.#retryMs * 2, 5_000)
      }
    } finally {
      this.#connecting = undefined
    }
  }

  override async close(): Promise<void> {
    this.#closed = true
    await this.#connecting
    const client = this.#client
    this.#client = undefined
    await client?.end().catch(() => {})
  }
}
