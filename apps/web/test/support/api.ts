import { fileURLToPath } from 'node:url'
import { createApp, openStore, seed, serve, type RunningServer } from '@session-events/api'
import { createSessionEventsClient, type SessionEventsClient } from '@session-events/client'

// The real API for the browser tests: the app over a SQLite store in memory, served over HTTP on
// a free port of 127.0.0.1 with the page this workspace built (dist/). A restart closes the
// server (its streams end, as on SIGTERM) and serves a new app over the same store on the same
// port. Nothing is left behind: the store is in memory, the server closed.

export interface Api {
  url: string
  /** The secret key of the seeded instance. */
  key: string
  /** The typed client, from this process: what a test writes goes through the API. */
  client: SessionEventsClient
  restart(): Promise<void>
  close(): Promise<void>
}

const webDir = fileURLToPath(new URL('../../dist', import.meta.url))

export async function startApi(): Promise<Api> {
  const store = await openStore('sqlite::memory:')
  const summary = await seed(store, { instances: 1, sessions: 1, events: 30 })
  const key = summary.instances[0]!.secret_key
  let shutdown = new AbortController()
  const app = () =>
    createApp({
      store,
      config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false },
      shutdown: shutdown.signal,
      webDir,
    })
  let running: RunningServer = await serve({ app: app(), host: '127.0.0.1', port: 0 })
  const port = running.port
  const url = running.url
  const stop = async () => {
    shutdown.abort()
    await running.close({ timeoutMs: 1_000 })
  }
  return {
    url,
    key,
    client: createSessionEventsClient({ apiKey: key, baseUrl: url }),
    async restart() {
      await stop()
      shutdown = new AbortController()
      running = await serve({ app: app(), host: '127.0.0.1', port })
    },
    async close() {
      await stop()
      await store.close()
    },
  }
}

/** A new session with one active run, and a way to append lines to the run (the event's id and when its 201 came). */
export async function newSession(api: Api, serverName = 'github-mcp') {
  const session = await api.client.sessions.create({ metadata: { test: 'web' } })
  const run = await api.client.serverRuns.start(session.id, { type: 'external', server: { name: serverName } })
  const append = async (lines: (string | { type: 'stdout' | 'stderr'; line: string })[]) => {
    const event = await api.client.events.append(session.id, {
      server_run_id: run.id,
      log_lines: lines.map((l) => (typeof l === 'string' ? { type: 'stdout' as const, line: l } : l)),
    })
    return { id: event.id, at: Date.now() }
  }
  return { sessionId: session.id, runId: run.id, append }
}
