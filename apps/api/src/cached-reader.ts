import { LRUCache } from 'lru-cache'
import type { Config } from './config.js'
import type { JsonReader } from './json-reader.js'
import { sizeOfEventJson, type ServerRunJson, type SessionEventJson } from './serialize.js'
import type { ApiKeyRecord, EventIdPage, ListEventsQuery, ListSessionsQuery, SessionPage } from './store/types.js'

// The one place where the API keeps what it has read, as the bytes it sends (serialize.ts): an
// event's JSON is made once, a run's once per version of it. It implements the API's reader
// (json-reader.ts) around another one, so a reader who skips it still understands the whole; the
// store below knows nothing of it.
//
// What is kept, and until when (one freshness rule per kind):
//   events          `keyCacheMs`: an event never changes once written (nor the run error it
//                   shows), but the pruner removes it past its retention (store/prune.ts), and it
//                   answers 404 by its id on every process within that time (a list never shows
//                   it: the ids of a page come from the store);
//   runs            while the store's runs version is the one they were read at (a run's status
//                   and timestamps change while it runs; a count that triggers keep in the
//                   writing transaction, migrations 3 and 5); never when the store cannot tell;
//   session → instance   `keyCacheMs`: a session never moves to another instance, but the
//                   pruner removes one left empty and idle past its retention (store/prune.ts),
//                   and it answers 404 on every process within that time (a session not found
//                   is asked again: it may be created later);
//   API key lookups `keyCacheMs`, misses included (a revocation takes effect within that time,
//                   and a flood of bad keys does not become a flood of queries).
// A page that a listing reads (event ids, sessions) is never kept: it is where new ones show up.
//
// All of them share one memory budget, `cacheBytes`, in one LRU: whatever was used least
// recently goes first, whatever its kind.

/**
 * The settings it takes (config.ts, CACHE_MB and KEY_CACHE_SECONDS): the memory the kept objects
 * may take, roughly, in bytes; how long an API key lookup is kept, in milliseconds (0: not at all).
 */
export type ReadCacheOptions = Pick<Config, 'cacheBytes' | 'keyCacheMs'>

type Entry =
  | { kind: 'event'; event: SessionEventJson }
  | { kind: 'run'; run: ServerRunJson; version: string }
  | { kind: 'session'; instanceId: string }
  | { kind: 'key'; key: ApiKeyRecord | undefined }

/**
 * What an entry takes, roughly: its bytes, and about 1 KB for the objects and strings around
 * them and the LRU's own bookkeeping (measured over 100,000 cached events, session 2).
 */
function sizeOf(entry: Entry): number {
  switch (entry.kind) {
    case 'event':
      return 1024 + sizeOfEventJson(entry.event)
    case 'run':
      return 1024 + entry.run.bytes.length
    default:
      return 512
  }
}

export class CachingReader implements JsonReader {
  readonly #inner: JsonReader
  readonly #cache: LRUCache<string, Entry>
  readonly #keyTtlMs: number

  /** `clock`: the time keyCacheMs is counted in, in ms (performance.now() unless given). */
  constructor(inner: JsonReader, options: ReadCacheOptions, clock?: { now(): number }) {
    this.#inner = inner
    this.#keyTtlMs = options.keyCacheMs
    this.#cache = new LRUCache<string, Entry>({
      maxSize: options.cacheBytes,
      sizeCalculation: sizeOf,
      // A clock of its own is read at every check, not once a millisecond.
      ...(clock && { perf: clock, ttlResolution: 0 }),
    })
  }

  runsVersion(): string | undefined | Promise<string | undefined> {
    return this.#inner.runsVersion()
  }

  listEventIds(query: ListEventsQuery): Promise<EventIdPage> {
    return this.#inner.listEventIds(query)
  }

  listSessions(query: ListSessionsQuery): Promise<SessionPage> {
    return this.#inner.listSessions(query)
  }

  async findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined> {
    if (this.#keyTtlMs <= 0) return this.#inner.findApiKey(secretHash)
    const cached = this.#cache.get(`k:${secretHash}`)
    if (cached?.kind === 'key') return cached.key
    const key = await this.#inner.findApiKey(secretHash)
    this.#cache.set(`k:${secretHash}`, { kind: 'key', key }, { ttl: this.#keyTtlMs })
    return key
  }

  async sessionInstance(sessionId: string): Promise<string | undefined> {
    const cached = this.#cache.get(`s:${sessionId}`)
    if (cached?.kind === 'session') return cached.instanceId
    const instanceId = await this.#inner.sessionInstance(sessionId)
    if (instanceId !== undefined && this.#keyTtlMs > 0)
      this.#cache.set(`s:${sessionId}`, { kind: 'session', instanceId }, { ttl: this.#keyTtlMs })
    return instanceId
  }

  async sessionEvents(sessionId: string, ids: readonly string[]): Promise<SessionEventJson[]> {
    // oxlint-disable-next-line unicorn/no-new-array -- sized once, filled by index
    const found: (SessionEventJson | undefined)[] = new Array(ids.length)
    const missing: string[] = []
    for (let i = 0; i < ids.length; i++) {
      const cached = this.#cache.get(`e:${ids[i]}`)
      // An id is unique across sessions: an event of another session is not one of this session.
      if (cached?.kind === 'event') found[i] = cached.event.session_id === sessionId ? cached.event : undefined
      else missing.push(ids[i]!)
    }
    if (missing.length === 0) return found.filter((e) => e !== undefined)
    const read = new Map((await this.#inner.sessionEvents(sessionId, missing)).map((e) => [e.id, e]))
    if (this.#keyTtlMs > 0)
      for (const event of read.values())
        this.#cache.set(`e:${event.id}`, { kind: 'event', event }, { ttl: this.#keyTtlMs })
    return ids.flatMap((id, i) => found[i] ?? read.get(id) ?? [])
  }

  async serverRuns(ids: readonly string[], knownVersion?: string): Promise<ServerRunJson[]> {
    // Taken before the read (with the page, or now): a write that lands in between makes the
    // next version differ.
    const version = knownVersion ?? (await this.#inner.runsVersion())
    if (version === undefined) return this.#inner.serverRuns(ids)
    const runs: ServerRunJson[] = []
    const missing: string[] = []
    for (const id of ids) {
      const cached = this.#cache.get(`r:${id}`)
      if (cached?.kind === 'run' && cached.version === version) runs.push(cached.run)
      else missing.push(id)
    }
    if (missing.length === 0) return runs
    for (const run of await this.#inner.serverRuns(missing)) {
      this.#cache.set(`r:${run.id}`, { kind: 'run', run, version })
      runs.push(run)
    }
    return runs
  }

  /** How many objects are kept now, and the bytes they are counted at. */
  get stats(): { entries: number; bytes: number } {
    return { entries: this.#cache.size, bytes: this.#cache.calculatedSize }
  }
}
