import { serverRunJson, sessionEventJson, type ServerRunJson, type SessionEventJson } from './serialize.js'
import type { StoreReader } from './store/types.js'

// The store's reads as the API uses them: events and runs as the bytes it sends (serialize.ts),
// the rest as the store answers it. SerializingReader makes the bytes from the store's records
// every time; the caching reader (cached-reader.ts) implements the same interface around it and
// keeps what it made.

export interface JsonReader extends Pick<
  StoreReader,
  'findApiKey' | 'sessionInstance' | 'listSessions' | 'listEventIds' | 'runsVersion'
> {
  /** The events of a session with these ids, in the order of `ids`, each as JSON less its run; unknown ids are left out. */
  sessionEvents(sessionId: string, ids: readonly string[]): Promise<SessionEventJson[]>
  /** Runs as they are now, as JSON; `version`: the runs' version read with their page (StoreReader). */
  serverRuns(ids: readonly string[], version?: string): Promise<ServerRunJson[]>
}

export class SerializingReader implements JsonReader {
  readonly #store: StoreReader

  constructor(store: StoreReader) {
    this.#store = store
  }

  findApiKey(secretHash: string) {
    return this.#store.findApiKey(secretHash)
  }

  sessionInstance(sessionId: string) {
    return this.#store.sessionInstance(sessionId)
  }

  listSessions(query: Parameters<StoreReader['listSessions']>[0]) {
    return this.#store.listSessions(query)
  }

  listEventIds(query: Parameters<StoreReader['listEventIds']>[0]) {
    return this.#store.listEventIds(query)
  }

  runsVersion() {
    return this.#store.runsVersion()
  }

  async sessionEvents(sessionId: string, ids: readonly string[]): Promise<SessionEventJson[]> {
    return (await this.#store.sessionEvents(sessionId, ids)).map(sessionEventJson)
  }

  async serverRuns(ids: readonly string[], version?: string): Promise<ServerRunJson[]> {
    return (await this.#store.serverRuns(ids, version)).map(serverRunJson)
  }
}
