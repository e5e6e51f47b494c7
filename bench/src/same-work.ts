import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { defaultConfig, openStore } from '@session-events/api'
import { CachingReader } from '@session-events/api/internal/cached-reader.js'
import { SerializingReader } from '@session-events/api/internal/json-reader.js'
import { startApi, withBackends, type ApiProcess, type StoreKind } from './api.js'
import type { Dataset } from './datasets.js'
import {
  inTurn,
  load,
  median,
  medianOrNull,
  summariseRounds,
  type LoadRequest,
  type LoadResult,
  type RoundsSummary,
} from './load.js'
import { dataDir, peerScript } from './paths.js'
import type { Endpoint, Fixture } from './peers/fixtures.js'
import { freePort, startServer, type Memory } from './processes.js'
import { body, captureFixtures, ENDPOINTS, type Settings } from './throughput.js'

// The same work, written as a user would (peers/kysely.ts: Fastify and Kysely, nothing kept
// between requests), beside the API, on SQLite and on PostgreSQL; and so, the API's reads on
// PostgreSQL beside its reads on SQLite. Four servers take turns in rounds on each endpoint,
// each on the requests of its own store's dataset (the same shape on both stores, ids of its
// own). Before measuring: every peer must answer the API's JSON on a set of requests that covers
// the filters, both orders, after, before and cursors; and the peer's serialiser is chosen, per
// operation, between JSON.stringify and Fastify's response schemas, by the CPU time per request
// of each on SQLite (the faster one is the peer).

export const SAME_WORK_TARGETS = ['api_sqlite', 'peer_sqlite', 'api_postgres', 'peer_postgres'] as const
export type SameWorkTarget = (typeof SAME_WORK_TARGETS)[number]
export const SAME_WORK_LABELS: Record<SameWorkTarget, string> = {
  api_sqlite: 'API on SQLite',
  peer_sqlite: 'peer on SQLite: Fastify + Kysely',
  api_postgres: 'API on PostgreSQL',
  peer_postgres: 'peer on PostgreSQL: Fastify + Kysely',
}

type Serialiser = 'json' | 'schema'

export interface SameWorkResult {
  settings: Settings
  /** What the PostgreSQL rows ran on: the machine's server, or PGlite in the API's process (no server to reach; no peer then). */
  postgresOn?: 'server' | 'pglite'
  /** The serialiser the peer used per operation, and each one's CPU µs per request on SQLite. */
  serialiser: {
    list: Serialiser
    get: Serialiser
    cpuUsPerReq: Record<'list' | 'get', Record<Serialiser, number | null>>
  }
  /** Per store, per request checked: whether the peer answered the API's bytes. */
  wire: Partial<
    Record<StoreKind, { path: string; verdict: 'identical bytes' | 'same JSON, other bytes' | 'different' }[]>
  >
  endpoints: Record<
    Endpoint,
    {
      targets: Partial<Record<SameWorkTarget, RoundsSummary & { backendCpuUsPerReq: number | null }>>
      /** `api_sqlite/peer_sqlite`, `api_postgres/peer_postgres`, `api_postgres/api_sqlite`: medians of the rounds' ratios. */
      ratios: Record<string, number>
      /** The same on CPU time per request (the server process with its PostgreSQL backends). */
      cpuRatios: Record<string, number | null>
    }
  >
  memory: Partial<Record<SameWorkTarget, Memory | null>>
  /**
   * The reads a list request makes of the store, in this (the driver's) process, one after the
   * other in a loop through the API's CachingReader: CPU µs per call (the process's own: on
   * PostgreSQL the client's side of the query, not the server's) and wall µs. What code costs
   * with warm caches and nothing else running, against what it costs inside the API under load.
   */
  inProcess: Partial<Record<StoreKind, Record<string, { cpuUs: number; wallUs: number }>>>
  skipped: string[]
}

/** The first page's reads, as the API's list handler makes them, each timed in a loop. */
async function storeReadsInProcess(
  dataset: Dataset,
  calls: number,
): Promise<Record<string, { cpuUs: number; wallUs: number }>> {
  const store = await openStore(dataset.databaseUrl)
  try {
    const reader = new CachingReader(new SerializingReader(store.reader), defaultConfig())
    const sessionId = dataset.sessionList[0]!.id
    const query = { sessionId, limit: 20, order: 'asc' as const }
    const page = await reader.listEventIds(query)
    const events = await reader.sessionEvents(sessionId, page.ids)
    const runIds = [...new Set(events.flatMap((e) => (e.server_run_id === null ? [] : [e.server_run_id])))]
    const out: Record<string, { cpuUs: number; wallUs: number }> = {}
    for (const [name, call] of [
      ['sessionInstance (cached)', () => reader.sessionInstance(sessionId)],
      ['listEventIds: a page of 20 ids', () => reader.listEventIds(query)],
      ['sessionEvents: 20 events (cached)', () => reader.sessionEvents(sessionId, page.ids)],
      ['serverRuns: the runs of the page', () => reader.serverRuns(runIds)],
    ] as [string, () => Promise<unknown>][]) {
      for (let i = 0; i < calls / 5; i++) await call()
      const n = calls
      const cpu = process.cpuUsage()
      const started = performance.now()
      for (let i = 0; i < n; i++) await call()
      const used = process.cpuUsage(cpu)
      out[name] = { cpuUs: (used.user + used.system) / n, wallUs: ((performance.now() - started) * 1000) / n }
    }
    return out
  } finally {
    await store.close()
  }
}

type Log = (line: string) => void

/** Requests that cover what the peer must answer like the API: filters, orders, after, before, cursors, a single event. */
async function checkPaths(api: ApiProcess, dataset: Dataset, auth: Record<string, string>): Promise<string[]> {
  const session = dataset.sessionList[0]!
  const base = `/sessions/${session.id}/events`
  const page = JSON.parse(await body(`${api.url}${base}?limit=5`, auth)) as {
    items: { id: string; server_run: { id: string; server_session: { id: string } } | null }[]
    pagination: { next_cursor: string }
  }
  const run = page.items[0]!.server_run!
  const middle = session.middleEventId
  return [
    `${base}`,
    `${base}?limit=100`,
    `${base}?limit=5&server_run_id=${run.id}`,
    `${base}?limit=5&server_session_id=${run.server_session.id}`,
    `${base}?type=server_run_error`,
    `${base}?limit=5&after=${middle}`,
    `${base}?limit=5&before=${middle}`,
    `${base}?limit=5&order=desc`,
    `${base}?limit=5&order=desc&after=${middle}`,
    `${base}?limit=3&cursor=${page.pagination.next_cursor}`,
    `${base}?after=sev_zzzzzzzzzzzzzzzzzzzzzz`,
    `${base}/${page.items[2]!.id}`,
    `${base}/${middle}`,
  ]
}

export async function sameWorkSuite(
  datasets: Partial<Record<StoreKind, Dataset>>,
  settings: Settings,
  log: Log,
  options: {
    /** Without a PostgreSQL server: the API on PGlite instead, seeded in its process with this shape. */
    pglite?: { sessions: number; events: number }
    /** The peer's serialiser, given rather than chosen by measuring both (--quick). */
    serialiser?: Record<'list' | 'get', Serialiser>
  } = {},
): Promise<SameWorkResult> {
  const { pglite } = options
  const onPglite = !datasets.postgres && pglite !== undefined
  const stores = (['sqlite', 'postgres'] as const).filter((s) => datasets[s] || (s === 'postgres' && onPglite))
  // A peer needs the database: PGlite is the API process's alone.
  const targets = SAME_WORK_TARGETS.filter(
    (t) => stores.some((s) => t.endsWith(s)) && !(onPglite && t === 'peer_postgres'),
  )
  const servers: Partial<Record<SameWorkTarget, ApiProcess>> = {}
  const calibration: ApiProcess[] = []
  const startPeer = async (store: StoreKind, serialise: string, name: string): Promise<ApiProcess> => {
    const port = await freePort()
    const appName = `bench-${name}-${process.pid}`
    const server = await startServer({
      name,
      script: peerScript('kysely'),
      args: [datasets[store]!.databaseUrl, String(port), serialise],
      port,
      env: { PGAPPNAME: appName },
    })
    return withBackends(server, store, appName)
  }
  try {
    const inProcess: SameWorkResult['inProcess'] = {}
    // As many calls as a second of load makes, about.
    for (const store of stores) {
      const dataset = datasets[store]
      if (dataset)
        inProcess[store] = await storeReadsInProcess(dataset, Math.max(200, Math.round(1000 * settings.durationS)))
    }
    const fixtures: Partial<Record<StoreKind, Fixture[]>> = {}
    const auths: Partial<Record<StoreKind, Record<string, string>>> = {}
    const wire: SameWorkResult['wire'] = {}
    const paths: Partial<Record<StoreKind, string[]>> = {}
    for (const store of stores) {
      let dataset = datasets[store]
      let api: ApiProcess
      if (dataset) api = await startApi({ name: `api_${store}`, databaseUrl: dataset.databaseUrl })
      else {
        log(
          `  no PostgreSQL server: the API on PGlite, seeding ${pglite!.sessions} × ${pglite!.events.toLocaleString('en')} events in its process first`,
        )
        const port = await freePort()
        const file = join(dataDir, 'pglite-dataset.json')
        rmSync(file, { force: true })
        const server = await startServer({
          name: 'api_pglite',
          script: peerScript('api-pglite'),
          args: [String(port), String(pglite!.sessions), String(pglite!.events), file],
          port,
          startupTimeoutMs: 600_000,
        })
        // No backends to add: PGlite runs in the API's process, its CPU is the process's.
        api = withBackends(server, 'sqlite', '')
        const seeded = JSON.parse(readFileSync(file, 'utf8')) as Pick<Dataset, 'secretKey' | 'sessionList' | 'seeding'>
        dataset = {
          name: 'pglite',
          instances: 1,
          sessions: pglite!.sessions,
          events: pglite!.events,
          format: 1,
          file: '',
          databaseUrl: '',
          seededNow: true,
          ...seeded,
        }
      }
      servers[`api_${store}`] = api
      auths[store] = { authorization: `Bearer ${dataset.secretKey}` }
      fixtures[store] = await captureFixtures(api, dataset, auths[store])
      if (targets.includes(`peer_${store}`)) paths[store] = await checkPaths(api, dataset, auths[store])
    }

    // The peer's serialiser: both on SQLite (where the store costs least, so serialising counts
    // most), by the CPU time per request of each, then the faster one per operation everywhere.
    const firstStore = stores[0]!
    const cpu: SameWorkResult['serialiser']['cpuUsPerReq'] = {
      list: { json: null, schema: null },
      get: { json: null, schema: null },
    }
    const chosen: Record<'list' | 'get', Serialiser> = options.serialiser
      ? { ...options.serialiser }
      : { list: 'json', get: 'json' }
    if (options.serialiser) log(`  the peer's serialiser, as given: list ${chosen.list}, get ${chosen.get}`)
    else {
      const json = await startPeer(firstStore, 'list=json,get=json', 'peer_json')
      const schema = await startPeer(firstStore, 'list=schema,get=schema', 'peer_schema')
      calibration.push(json, schema)
      for (const operation of ['list', 'get'] as const) {
        const requests = fixtures[firstStore]!.filter((f) => f.endpoint === operation).map(
          (f): LoadRequest => ({ path: f.path, headers: auths[firstStore]! }),
        )
        const runs: Record<Serialiser, LoadResult[]> = { json: [], schema: [] }
        for (const [i, variant] of (['json', 'schema', 'schema', 'json'] as const).entries()) {
          const peer = variant === 'json' ? json : schema
          if (i < 2)
            await load({ url: peer.url, requests, connections: settings.connections, durationS: settings.warmupS })
          runs[variant].push(
            await load({
              url: peer.url,
              requests,
              connections: settings.connections,
              durationS: settings.durationS / 2,
              serverCpu: peer.cpuSeconds,
            }),
          )
        }
        for (const variant of ['json', 'schema'] as const)
          cpu[operation][variant] = medianOrNull(runs[variant].map((r) => r.cpuUsPerReq))
        const [a, b] = [cpu[operation].json, cpu[operation].schema]
        chosen[operation] =
          a !== null && b !== null
            ? b < a
              ? 'schema'
              : 'json'
            : median(runs.schema.map((r) => r.rps)) > median(runs.json.map((r) => r.rps))
              ? 'schema'
              : 'json'
        log(
          `  the peer's serialiser for ${operation}: ${chosen[operation]} (CPU µs/req: JSON.stringify ${a?.toFixed(0) ?? '–'}, response schema ${b?.toFixed(0) ?? '–'})`,
        )
      }
    }
    await Promise.all(calibration.splice(0).map((p) => p.stop()))

    for (const store of stores) {
      if (!targets.includes(`peer_${store}`)) continue
      const peer = await startPeer(store, `list=${chosen.list},get=${chosen.get}`, `peer_${store}`)
      servers[`peer_${store}`] = peer
      // The peer must answer what the API answers.
      wire[store] = []
      for (const path of paths[store]!) {
        const [mine, theirs] = await Promise.all([
          body(servers[`api_${store}`]!.url + path, auths[store]!),
          body(peer.url + path, auths[store]!),
        ])
        const verdict =
          mine === theirs
            ? 'identical bytes'
            : isDeepStrictEqual(JSON.parse(mine), JSON.parse(theirs))
              ? 'same JSON, other bytes'
              : 'different'
        if (verdict === 'different') log(`  WARNING: the peer on ${store} does not answer ${path} with the API's JSON`)
        wire[store]!.push({
          path: path
            .replace(/ses_\w+/, 'ses_…')
            .replace(/(sev|srr|srs)_\w{22}/g, '$1_…')
            .replace(/cur_\w+/, 'cur_…'),
          verdict,
        })
      }
    }

    const requestsOf = (target: SameWorkTarget, endpoint: Endpoint): LoadRequest[] => {
      const store: StoreKind = target.endsWith('sqlite') ? 'sqlite' : 'postgres'
      return fixtures[store]!.filter((f) => f.endpoint === endpoint).map((f) => ({
        path: f.path,
        headers: auths[store]!,
      }))
    }
    const run = async (target: SameWorkTarget, endpoint: Endpoint, durationS: number, measured: boolean) => {
      const server = servers[target]!
      if (measured) await server.refreshBackends()
      const backendBefore = server.backendCpu()
      const result = await load({
        url: server.url,
        requests: requestsOf(target, endpoint),
        connections: settings.connections,
        durationS,
        serverCpu: () => server.cpuWithBackends(),
      })
      const backendCpuUsPerReq =
        server.store === 'postgres' && result.ok > 0 ? ((server.backendCpu() - backendBefore) * 1e6) / result.ok : null
      return { result, backendCpuUsPerReq }
    }

    log(`  warm-up: ${settings.warmupS} s per server and endpoint`)
    for (const target of targets) for (const endpoint of ENDPOINTS) await run(target, endpoint, settings.warmupS, false)

    const rounds = Object.fromEntries(
      ENDPOINTS.map((e) => [
        e,
        Object.fromEntries(targets.map((t) => [t, [] as { result: LoadResult; backendCpuUsPerReq: number | null }[]])),
      ]),
    ) as Record<Endpoint, Record<SameWorkTarget, { result: LoadResult; backendCpuUsPerReq: number | null }[]>>
    for (let round = 0; round < settings.rounds; round++) {
      for (const [e, endpoint] of ENDPOINTS.entries()) {
        const line: string[] = []
        for (const target of inTurn(targets, round + e)) {
          const measured = await run(target, endpoint, settings.durationS, true)
          if (measured.result.errors > 0)
            log(`  WARNING: ${target} answered ${measured.result.errors} requests of ${endpoint} with an error`)
          rounds[endpoint][target].push(measured)
          line.push(`${target} ${Math.round(measured.result.rps)}`)
        }
        log(`  round ${round + 1}/${settings.rounds} ${endpoint}: ${line.join(', ')} req/s`)
      }
    }

    const endpoints = {} as SameWorkResult['endpoints']
    for (const endpoint of ENDPOINTS) {
      const summaries: SameWorkResult['endpoints'][Endpoint]['targets'] = {}
      for (const target of targets) {
        const runs = rounds[endpoint][target]
        summaries[target] = {
          ...summariseRounds(runs.map((r) => r.result)),
          backendCpuUsPerReq: medianOrNull(runs.map((r) => r.backendCpuUsPerReq)),
        }
      }
      const ratios: Record<string, number> = {}
      const cpuRatios: Record<string, number | null> = {}
      const pairs = (
        [
          ['api_sqlite', 'peer_sqlite'],
          ['api_postgres', 'peer_postgres'],
          ['api_postgres', 'api_sqlite'],
        ] as [SameWorkTarget, SameWorkTarget][]
      ).filter(([a, b]) => targets.includes(a) && targets.includes(b))
      for (const [a, b] of pairs) {
        const mine = rounds[endpoint][a].map((r) => r.result)
        const theirs = rounds[endpoint][b].map((r) => r.result)
        ratios[`${a}/${b}`] = median(mine.map((r, i) => r.rps / theirs[i]!.rps))
        cpuRatios[`${a}/${b}`] = medianOrNull(
          mine.map((r, i) =>
            r.cpuUsPerReq && theirs[i]!.cpuUsPerReq ? theirs[i]!.cpuUsPerReq! / r.cpuUsPerReq : null,
          ),
        )
      }
      endpoints[endpoint] = { targets: summaries, ratios, cpuRatios }
    }

    return {
      settings,
      ...(stores.includes('postgres') && { postgresOn: onPglite ? ('pglite' as const) : ('server' as const) }),
      serialiser: { ...chosen, cpuUsPerReq: cpu },
      wire,
      endpoints,
      memory: Object.fromEntries(targets.map((t) => [t, servers[t]!.memory()])),
      inProcess,
      skipped: datasets.postgres
        ? []
        : [
            onPglite
              ? 'PostgreSQL: no server to reach, so PGlite in the API’s process instead, and no peer on it'
              : 'PostgreSQL: no server to reach',
          ],
    }
  } finally {
    await Promise.all([...Object.values(servers).map((s) => s.stop()), ...calibration.map((s) => s.stop())])
  }
}
