import type { EventFeed } from './store/feed.js'

// The shared read of the live tail (follow.ts): in each process, the followers of one session
// with the same filters that are caught up share one read of the store per wake-up, and the
// bytes it made are enqueued on each of their streams. 1,000 followers of a session cost one
// query per append, not 1,000.
//
// One rule: a follower at the head shares the read; a follower whose queue is not drained when a
// page comes (a slow consumer) leaves it, and reads the store on its own, at its own pace, from
// the last id it sent, as a follower that resumes from an old id does; once one of its own reads
// finds nothing more, it joins again. A follower joins only where the shared read stands or
// ahead of it (`last` ≥ the read's position: the read sends it only the events after its own
// last id), never behind, so nothing is lost and nothing is sent twice; it holds at most the one
// page it was given, as before.

/** One page of a session's events as the stream sends them: ids in order, each one's message. */
export interface LivePage {
  ids: string[]
  bytes: Uint8Array[]
}

/** A page of the events after `after`, with the followers' filters: the same for every follower of a shared read. */
export type ReadAfter = (after: string) => Promise<LivePage>

/** A follower as the shared read sees it. */
export interface LiveFollower {
  /** The last id this follower sent (LOWEST_EVENT_ID: none yet). */
  readonly last: string
  /** Takes the events of the page after its last id; false: its queue is not drained, and it leaves the shared read. */
  deliver(page: LivePage): boolean
  /** The shared read failed: the stream ends, and the client resumes from its last id. */
  fail(error: unknown): void
}

/** How many events one read of the store sends at most. */
export const PAGE = 50

/** The followers of one session and filters, caught up, and their one read. */
class SharedRead {
  /** The last id the shared read has seen: its followers have every event up to it. */
  last: string
  readonly followers = new Set<LiveFollower>()
  readonly #read: ReadAfter
  readonly #unsubscribe: () => void
  readonly #onEmpty: () => void
  #reading = false
  /** Set by a wake-up: something may have been written since the last read. */
  #dirty = false

  constructor(feed: EventFeed, sessionId: string, last: string, read: ReadAfter, onEmpty: () => void) {
    this.last = last
    this.#read = read
    this.#onEmpty = onEmpty
    this.#unsubscribe = feed.subscribe(sessionId, () => this.wake())
  }

  /** Reads after `last` (again, if a read is in flight: the wake-up may be for a commit it did not see). */
  wake(): void {
    this.#dirty = true
    if (!this.#reading) void this.#run()
  }

  leave(follower: LiveFollower): void {
    this.followers.delete(follower)
    if (this.followers.size === 0 && !this.#reading) this.#close()
  }

  async #run(): Promise<void> {
    this.#reading = true
    try {
      while (this.#dirty && this.followers.size > 0) {
        this.#dirty = false
        const page = await this.#read(this.last)
        if (page.ids.length === 0) continue
        this.last = page.ids.at(-1)!
        for (const follower of this.followers) if (!follower.deliver(page)) this.followers.delete(follower)
        // A full page: there may be more at once.
        if (page.ids.length === PAGE) this.#dirty = true
      }
    } catch (error) {
      const failed = [...this.followers]
      this.followers.clear()
      for (const follower of failed) follower.fail(error)
    } finally {
      this.#reading = false
      if (this.followers.size === 0) this.#close()
    }
  }

  #close(): void {
    this.#unsubscribe()
    this.#onEmpty()
  }
}

/** The shared reads of this process, one per session and filters followed at the head. */
export class LiveSessions {
  readonly #feed: EventFeed
  readonly #reads = new Map<string, SharedRead>()

  constructor(feed: EventFeed) {
    this.#feed = feed
  }

  /**
   * Joins the shared read of `key` (a session and its filters: followersKey) with a follower
   * that has just found nothing more on its own. Returns how to leave it; undefined when the
   * shared read is ahead of the follower, which must read on its own until it catches up.
   */
  join(sessionId: string, key: string, follower: LiveFollower, read: ReadAfter): (() => void) | undefined {
    let shared = this.#reads.get(key)
    // The shared read has read past the follower's last id: an event between them, committed
    // after the follower's own read looked, would never reach it. It reads on its own (the
    // wake-up of that event is its own too), and joins once one of its reads has caught up.
    if (shared && shared.last > follower.last) return undefined
    if (!shared) {
      const made = new SharedRead(this.#feed, sessionId, follower.last, read, () => {
        if (this.#reads.get(key) === made) this.#reads.delete(key)
      })
      this.#reads.set(key, (shared = made))
    }
    shared.followers.add(follower)
    // A commit between the follower's last read and now may have woken nobody here.
    shared.wake()
    const joined = shared
    return () => joined.leave(follower)
  }

  /** Shared reads open now (sessions and filters followed at the head). */
  get reads(): number {
    return this.#reads.size
  }
}

/** The key of a shared read: the session and the filters, whatever their order. */
export function followersKey(
  sessionId: string,
  filters: { serverRunIds?: readonly string[]; serverSessionIds?: readonly string[]; types?: readonly string[] },
): string {
  const sorted = (values: readonly string[] | undefined) => (values ? [...values].sort() : null)
  return JSON.stringify([
    sessionId,
    sorted(filters.serverRunIds),
    sorted(filters.serverSessionIds),
    sorted(filters.types),
  ])
}
