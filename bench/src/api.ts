import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { openStore, seed } from '@session-events/api'
import { apiMain, dataDir } from './paths.js'
import { backendPids, cpuOfPids, dropSchema, ensureSchema } from './pg.js'
import { freePort, startServer, type ServerProcess, type StartOptions } from './processes.js'

// The API as `node apps/api/dist/main.js` runs it, for the suites that start it on either store,
// and the fresh stores that the write and follow suites write into.

export type StoreKind = 'sqlite' | 'postgres'

export interface ApiProcess extends ServerProcess {
  store: StoreKind
  /**
   * On PostgreSQL, its connections' backends (found by application_name) are where part of each
   * request's CPU time goes: asked for again before each measurement (the pool opens connections
   * as it needs them).
   */
  refreshBackends(): Promise<void>
  /** CPU seconds of the API process and, on PostgreSQL, of its backends. */
  cpuWithBackends(): number | null
  /** CPU seconds of its PostgreSQL backends alone (0 on SQLite). */
  backendCpu(): number
}

let serial = 0

/**
 * Starts the API on a store. Its default logging (LOG_LEVEL=info, the access log to /dev/null), no
 * rate limit (the benchmark measures the API, not the limiter), and on PostgreSQL connections kept
 * for ten minutes rather than 30 s, so that the backends measured are the same throughout.
 */
export async function startApi(options: {
  name: string
  databaseUrl: string
  env?: Record<string, string>
  probeMemory?: boolean
  args?: Pick<StartOptions, 'stdoutFile'>
}): Promise<ApiProcess> {
  const store: StoreKind = options.databaseUrl.startsWith('postgres') ? 'postgres' : 'sqlite'
  const port = await freePort()
  const appName = `bench-${options.name}-${process.pid}-${++serial}`
  const server = await startServer({
    name: options.name,
    script: apiMain,
    port,
    probeMemory: options.probeMemory ?? false,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: options.databaseUrl,
      SEED: 'false',
      RATE_LIMIT_PER_MINUTE: 'off',
      LOG_LEVEL: 'info',
      ...(store === 'postgres' && { PGAPPNAME: appName, DATABASE_IDLE_TIMEOUT_MS: '600000' }),
      ...options.env,
    },
    ...options.args,
  })
  return withBackends(server, store, appName)
}

/** A server process (the API, or a peer) with the CPU time of its PostgreSQL backends beside its own. */
export function withBackends(server: ServerProcess, store: StoreKind, appName: string): ApiProcess {
  let pids: number[] = []
  return {
    ...server,
    store,
    async refreshBackends() {
      if (store === 'postgres') pids = await backendPids(appName)
    },
    cpuWithBackends() {
      const own = server.cpuSeconds()
      return own === null ? null : own + (store === 'postgres' ? cpuOfPids(pids) : 0)
    },
    backendCpu: () => (store === 'postgres' ? cpuOfPids(pids) : 0),
  }
}

export interface LiveStore {
  store: StoreKind
  databaseUrl: string
  /** The secret key of the one instance. */
  secretKey: string
  /** SQLite file or PostgreSQL schema, to remove at the end. */
  where: string
}

/**
 * An empty store of its own (a new SQLite file under bench/.data/, or a PostgreSQL schema dropped
 * and made again), with one instance and its key, for a suite that writes.
 */
export async function freshLiveStore(store: StoreKind, name: string): Promise<LiveStore> {
  let databaseUrl: string
  let where: string
  if (store === 'sqlite') {
    where = join(dataDir, `${name}.db`)
    for (const suffix of ['', '-wal', '-shm']) rmSync(where + suffix, { force: true })
    databaseUrl = `sqlite:${where}`
  } else {
    where = `bench_${name.replace(/[^a-z0-9]/g, '_')}`
    databaseUrl = await ensureSchema(where, { fresh: true })
  }
  const opened = await openStore(databaseUrl)
  try {
    const summary = await seed(opened, { instances: 1, sessions: 1, events: 1 })
    return { store, databaseUrl, secretKey: summary.instances[0]!.secret_key, where }
  } finally {
    await opened.close()
  }
}

/** Removes what a suite wrote: the SQLite file, or the PostgreSQL schema (one of the benchmark's own). */
export async function removeLiveStore(live: LiveStore): Promise<void> {
  if (live.store === 'sqlite') for (const suffix of ['', '-wal', '-shm']) rmSync(live.where + suffix, { force: true })
  else await dropSchema(live.where).catch(() => {})
}

/** Sessions with an active run each, made through the API's own write operations. */
export async function sessionsWithRuns(
  apiUrl: string,
  secretKey: string,
  count: number,
): Promise<{ sessionId: string; runId: string }[]> {
  const headers = { authorization: `Bearer ${secretKey}`, 'content-type': 'application/json' }
  const post = async (path: string, body: unknown) => {
    // A 503 (a PostgreSQL server busy with other work on a shared machine) is tried again, as a client would.
    for (let attempt = 1; ; attempt++) {
      const response = await fetch(apiUrl + path, { method: 'POST', headers, body: JSON.stringify(body) })
      const text = await response.text()
      if (response.status === 201) return JSON.parse(text) as { id: string }
      if (response.status !== 503 || attempt === 5)
        throw new Error(`POST ${path}: ${response.status} ${text.slice(0, 300)}`)
      await new Promise((r) => setTimeout(r, 500 * attempt))
    }
  }
  const out = []
  for (let i = 0; i < count; i++) {
    const session = await post('/sessions', { metadata: { bench: true } })
    const run = await post(`/sessions/${session.id}/server-runs`, {
      type: 'hosted',
      server: { name: `bench-server-${i}` },
    })
    out.push({ sessionId: session.id, runId: run.id })
  }
  return out
}

/** `n` log lines such as a server writes (40–70 characters), stdout and stderr mixed. */
export function logLines(n: number): { type: 'stdout' | 'stderr'; line: string }[] {
  const texts = [
    'tools/call search_issues {"query":"is:open label:bug","per_page":20}',
    'GET https://api.github.com/repos/metorial/metorial/issues 200 (183 ms)',
    'warn: slow response from upstream (2.4 s)',
    'resources/read repo://metorial/metorial/contents/package.json',
    'cache hit: rate_limit (remaining 4873/5000)',
  ]
  return Array.from({ length: n }, (_, i) => ({
    type: i % 4 === 3 ? ('stderr' as const) : ('stdout' as const),
    line: `${texts[i % texts.length]} #${i}`,
  }))
}
