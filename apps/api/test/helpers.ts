import pino from 'pino'
import { createApp, type AppOptions } from '../src/app.js'
import type { Config } from '../src/config.js'
import { seed, type SeedSummary } from '../src/seed.js'
import { openStore } from '../src/store/open.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { openTestStore } from './backend.js'

export const silent = pino({ level: 'silent' })

/**
 * The settings of the tests' apps: no rate limit (but where a test sets one), and no load
 * shedding, which a busy machine's lag (or a synchronous seed) would make refuse a test's requests.
 */
export const testSettings = { rateLimit: false, shedLoadAfterMs: false } satisfies Partial<Config>

/** A server session's MCP handshake with nothing in it (instanceWith). */
export const BARE_MCP = {
  object: 'mcp' as const,
  version: '2025-03-26',
  connection_type: 'streamable_http' as const,
  client: null,
  server: null,
}

/** One line of stdout: what tests that write many events give each. */
export const ONE_LINE = [{ type: 'stdout' as const, line: 'a line' }]

export interface Fixture {
  store: SqlStore
  summary: SeedSummary
  app: ReturnType<typeof createApp>
  /** Instance A's first session and keys; instance B's, for isolation. */
  a: SeedSummary['instances'][number]
  b: SeedSummary['instances'][number]
  get(path: string, key?: string | null, headers?: Record<string, string>): Promise<Response>
}

/**
 * A seeded store of this project's backend (SQLite in memory, or a fresh PostgreSQL schema: see
 * backend.ts) and the real app over it. `databaseUrl` opens that database instead.
 */
export async function fixture(
  options: { sessions?: number; events?: number; app?: Partial<AppOptions>; databaseUrl?: string } = {},
): Promise<Fixture> {
  const store = options.databaseUrl ? await openStore(options.databaseUrl) : await openTestStore()
  const summary = await seed(store, { sessions: options.sessions ?? 2, events: options.events ?? 60 })
  const app = createApp({ store, logger: silent, config: testSettings, ...options.app })
  const [a, b] = summary.instances as [SeedSummary['instances'][number], SeedSummary['instances'][number]]
  return {
    store,
    summary,
    app,
    a,
    b,
    get: async (path, key = a.secret_key, headers = {}) =>
      app.request(path, { headers: { ...(key !== null && { Authorization: `Bearer ${key}` }), ...headers } }),
  }
}

/** Every event id of a session, straight from the database, in id order. */
export async function eventIds(
  store: SqlStore,
  sessionId: string,
  filter: { type?: string[]; serverRunIds?: string[]; serverSessionIds?: string[] } = {},
): Promise<string[]> {
  let q = store.db.selectFrom('session_events').select('id').where('session_id', '=', sessionId)
  if (filter.type) q = q.where('type', 'in', filter.type as ('server_logs' | 'server_run_error')[])
  if (filter.serverRunIds) q = q.where('server_run_id', 'in', filter.serverRunIds)
  if (filter.serverSessionIds) q = q.where('server_session_id', 'in', filter.serverSessionIds)
  return (await q.orderBy('id', 'asc').execute()).map((r) => r.id)
}

/** The runs of a session, with their server sessions. */
export async function sessionRuns(store: SqlStore, sessionId: string) {
  return store.db
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .select(['r.id', 'r.status', 'r.server_session_id'])
    .where('ss.session_id', '=', sessionId)
    .orderBy('r.id')
    .execute()
}

/**
 * One seeded instance of `store` and the app over it, with `post`: a POST as its key's holder
 * sends it, with an Idempotency-Key when one is given.
 */
export async function keyedWriter(store: SqlStore) {
  const summary = await seed(store, { instances: 1, sessions: 1, events: 1 })
  const a = summary.instances[0]!
  const app = createApp({ store, logger: silent, config: testSettings })
  const post = (path: string, body: unknown, key?: string) =>
    app.request(path, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${a.secret_key}`,
        'content-type': 'application/json',
        ...(key !== undefined && { 'Idempotency-Key': key }),
      },
      body: JSON.stringify(body),
    })
  return { a, app, post }
}

export const withoutRequestId = (text: string) => text.replace(/req_[0-9A-Za-z]{22}/g, 'req_…')

/** What runs run on, for one instance. */
export async function instanceWith(store: SqlStore, name: string, at: Date) {
  const { id: instanceId } = await store.admin.createInstance({ name, at })
  const { secret } = await store.admin.createApiKey({ instanceId, kind: 'secret', at })
  const { id: serverId } = await store.seeding.createServer({ name: 'S', description: null, type: 'public', at })
  const { id: versionId } = await store.seeding.createServerVersion({ serverId, at })
  const { id: deploymentId } = await store.seeding.createServerDeployment({
    instanceId,
    serverId,
    name: null,
    description: null,
    at,
  })
  /** A session made at `at` with one active run. */
  const session = async (sessionAt: Date) => {
    const { id: sessionId } = await store.seeding.createSession({ instanceId, at: sessionAt })
    const { id: serverSessionId } = await store.seeding.createServerSession({
      sessionId,
      serverDeploymentId: deploymentId,
      mcp: BARE_MCP,
      at: sessionAt,
    })
    const { id: runId } = await store.seeding.createServerRun({
      serverSessionId,
      serverVersionId: versionId,
      type: 'hosted',
      at: sessionAt,
    })
    return { sessionId, runId }
  }
  return { instanceId, secret, session }
}
