import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import {
  freshLiveStore,
  logLines,
  removeLiveStore,
  sessionsWithRuns,
  startApi,
  type ApiProcess,
  type LiveStore,
  type StoreKind,
} from './api.js'
import { inTurn, median, medianOrNull, summariseRounds, type LoadRequest, type LoadResult } from './load.js'
import { postLoad } from './post-load.js'
import { dataDir, peerScript, workerScript } from './paths.js'
import { pgQuery } from './pg.js'
import { freePort, startServer, startWorker, type Memory, type ServerProcess, type WorkerProcess } from './processes.js'

// Writes: log lines appended per second through the API over HTTP (POST /sessions/{id}/events,
// 1, 10, 100 and 1,000 lines a request), on SQLite and on PostgreSQL, side by side with
//   - the write limit: bare node:http that reads and parses the same bodies and answers 201 with
//     the API's bytes, storing nothing (peers/write-limit.ts);
//   - the store alone, in process: StoreWriter.appendEvent in a loop (store-append.ts);
//   - the API again with an Idempotency-Key of its own on every request (as the client and the CLI
//     send them), on a fresh store of its own, and the bytes on disk per event of each API's store.
// Each store is a fresh one (a new SQLite file, a PostgreSQL schema made again), with SESSIONS
// sessions of one active run each, made through the API; every connection appends to each of them
// in turn. The targets take turns in rounds, as in the throughput suite.

export const WRITE_TARGETS = [
  'api_sqlite',
  'api_sqlite_keyed',
  'api_postgres',
  'api_postgres_keyed',
  'limit',
  'store_sqlite',
  'store_postgres',
] as const
export type WriteTarget = (typeof WRITE_TARGETS)[number]
export const WRITE_TARGET_LABELS: Record<WriteTarget, string> = {
  api_sqlite: 'API on SQLite, over HTTP',
  api_sqlite_keyed: 'API on SQLite, over HTTP, an Idempotency-Key on every request',
  api_postgres: 'API on PostgreSQL, over HTTP',
  api_postgres_keyed: 'API on PostgreSQL, over HTTP, an Idempotency-Key on every request',
  limit: 'write limit: node:http, JSON.parse, 201 with precomputed bytes',
  store_sqlite: 'the store alone on SQLite: appendEvent in a loop',
  store_postgres: 'the store alone on PostgreSQL: appendEvent in a loop',
}

/** Sessions written to at once, one active run each. */
export const SESSIONS = 8

export interface WriteSettings {
  rounds: number
  durationS: number
  warmupS: number
  connections: number
  batches: number[]
}

export interface WriteSummary {
  linesPerS: number
  requestsPerS: number
  /** Request latency; null for the store alone (no requests). */
  p50Ms: number | null
  p99Ms: number | null
  errors: number
  /** The answers that were not 2xx, by status (503: the API shedding load), and connection errors and timeouts. */
  failures: Record<string, number>
  /** CPU µs per line: the server process (with its PostgreSQL backends), or the store loop's process. */
  cpuUsPerLine: number | null
  /** Of which PostgreSQL's backends (API targets on PostgreSQL). */
  backendCpuUsPerLine: number | null
  rounds: { linesPerS: number; p99Ms: number | null; errors: number; cpuUsPerLine: number | null }[]
}

/** The API's stack one layer at a time, on appends (peers/layers.ts), as the layers suite does on reads. */
export const WRITE_LAYERS = ['limit', 'hono', 'routes', 'log', 'auth', 'body', 'api'] as const
export type WriteLayer = (typeof WRITE_LAYERS)[number]
export const WRITE_LAYER_LABELS: Record<WriteLayer, string> = {
  limit: 'write limit: node:http, JSON.parse, precomputed bytes',
  hono: 'a bare Hono app on @hono/node-server, c.req.json()',
  routes: '+ the generated routes and their validators (the body’s zod schema)',
  log: '+ request id, API headers and access log',
  auth: '+ load shedding, the indexed query keys, authentication and the scope check',
  body: '+ the body checks: Content-Length ≤ 5 MiB, nesting and __proto__ keys (json-body.ts), the Idempotency-Key middleware',
  api: 'the API on SQLite: + the store (appendEvent), handler and serialisation',
}

export interface WritesResult {
  settings: WriteSettings
  /** Appends of `lines` lines through the API's stack one layer at a time (SQLite); null when not run. */
  layers: {
    lines: number
    targets: Record<WriteLayer, { requestsPerS: number; p99Ms: number; cpuUsPerReq: number | null; errors: number }>
  } | null
  sessions: number
  /** Body bytes of a request, by lines per request. */
  bodyBytes: Record<string, number>
  batches: Record<
    string,
    {
      targets: Partial<Record<WriteTarget, WriteSummary>>
      /** `api_sqlite/limit`, `api_sqlite/store_sqlite`…: medians of the rounds' ratios of lines/s. */
      ratios: Record<string, number>
    }
  >
  memory: Partial<Record<WriteTarget, Memory | null>>
  /**
   * Bytes on disk per event of each API target's store, by lines a request: what its tables and
   * indexes, all of them, grew by over that batch's measured rounds, over the events they wrote
   * (each batch apart: the stores' mixes of event sizes differ as their speeds do).
   */
  bytesPerEvent: Partial<Record<WriteTarget, Record<string, { bytes: number; events: number; perEvent: number }>>>
  /** Targets left out, and why (no PostgreSQL server). */
  skipped: string[]
}

type Log = (line: string) => void

/** What did not succeed, by status, and the connection errors and timeouts. */
export function failuresOf(result: LoadResult): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [status, n] of Object.entries(result.statuses)) if (!status.startsWith('2')) out[status] = n
  if (result.connectionErrors > 0) out['connection errors'] = result.connectionErrors
  if (result.timeouts > 0) out.timeouts = result.timeouts
  return out
}

export function addUp(all: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const one of all) for (const [k, n] of Object.entries(one)) out[k] = (out[k] ?? 0) + n
  return out
}

interface Round {
  linesPerS: number
  p50Ms: number | null
  p99Ms: number | null
  errors: number
  failures: Record<string, number>
  cpuUsPerLine: number | null
  backendCpuUsPerLine: number | null
}

export async function writesSuite(settings: WriteSettings, postgres: boolean, log: Log): Promise<WritesResult> {
  const stores: StoreKind[] = postgres ? ['sqlite', 'postgres'] : ['sqlite']
  const targets = WRITE_TARGETS.filter((t) => postgres || !t.includes('postgres'))
  const lives: LiveStore[] = []
  const apis: Partial<Record<StoreKind, ApiProcess>> = {}
  /** The API with keys, each on a store of its own, so that the two stores' bytes per event compare. */
  const keyedApis: Partial<Record<StoreKind, { api: ApiProcess; live: LiveStore }>> = {}
  /** The store each API target writes to, for its bytes per event. */
  const storeOf: Partial<Record<WriteTarget, LiveStore>> = {}
  const grown: WritesResult['bytesPerEvent'] = {}
  const loops: Partial<Record<StoreKind, WorkerProcess>> = {}
  let limit: ServerProcess | undefined
  const requests: Partial<Record<StoreKind | `${StoreKind}_keyed`, Record<number, LoadRequest[]>>> = {}
  try {
    for (const store of stores) {
      const live = await freshLiveStore(store, 'writes')
      lives.push(live)
      const api = await startApi({ name: `api_${store}`, databaseUrl: live.databaseUrl })
      apis[store] = api
      const places = await sessionsWithRuns(api.url, live.secretKey, SESSIONS)
      const headers = { authorization: `Bearer ${live.secretKey}` }
      requests[store] = Object.fromEntries(
        settings.batches.map((lines) => [
          lines,
          places.map(
            (p): LoadRequest => ({
              method: 'POST',
              path: `/sessions/${p.sessionId}/events`,
              headers,
              body: JSON.stringify({ server_run_id: p.runId, log_lines: logLines(lines) }),
            }),
          ),
        ]),
      )
      const keyedLive = await freshLiveStore(store, 'writes_keyed')
      lives.push(keyedLive)
      const keyedApi = await startApi({ name: `api_${store}_keyed`, databaseUrl: keyedLive.databaseUrl })
      keyedApis[store] = { api: keyedApi, live: keyedLive }
      const keyedPlaces = await sessionsWithRuns(keyedApi.url, keyedLive.secretKey, SESSIONS)
      for (const lines of settings.batches) {
        requests[`${store}_keyed`] ??= {}
        requests[`${store}_keyed`]![lines] = keyedPlaces.map(
          (p): LoadRequest => ({
            method: 'POST',
            path: `/sessions/${p.sessionId}/events`,
            headers: { authorization: `Bearer ${keyedLive.secretKey}` },
            body: JSON.stringify({ server_run_id: p.runId, log_lines: logLines(lines) }),
            idempotencyKeys: true,
          }),
        )
      }
      storeOf[`api_${store}`] = live
      storeOf[`api_${store}_keyed`] = keyedLive
      // The store alone writes into a store of its own: its appends, to one session one after
      // another, pack the indexes tighter than the API's to eight at once, and would make the
      // API's store look smaller per event.
      const loopLive = await freshLiveStore(store, 'writes_store')
      lives.push(loopLive)
      loops[store] = await startWorker({
        name: `store_${store}`,
        script: workerScript('store-append'),
        args: [loopLive.secretKey],
        env: { DATABASE_URL: loopLive.databaseUrl },
      })
    }

    // The limit answers what the API answered to a request of each size.
    const answers: Record<string, string> = {}
    for (const lines of settings.batches) {
      const request = requests.sqlite![lines]![0]!
      const response = await fetch(apis.sqlite!.url + request.path, {
        method: 'POST',
        headers: { ...request.headers, 'content-type': 'application/json' },
        body: request.body as string,
      })
      const text = await response.text()
      if (response.status !== 201)
        throw new Error(`POST ${request.path} (${lines} lines): ${response.status} ${text.slice(0, 300)}`)
      answers[lines] = text
    }
    const answersFile = join(dataDir, 'write-answers.json')
    writeFileSync(answersFile, JSON.stringify(answers))
    const port = await freePort()
    limit = await startServer({
      name: 'limit',
      script: peerScript('write-limit'),
      args: [answersFile, String(port)],
      port,
    })

    const measure = async (target: WriteTarget, lines: number, durationS: number): Promise<Round> => {
      if (target === 'store_sqlite' || target === 'store_postgres') {
        const loop = loops[target === 'store_sqlite' ? 'sqlite' : 'postgres']!
        loop.send(`run ${lines} ${durationS}`)
        const done = JSON.parse(await loop.nextLine(durationS * 1000 + 60_000)) as {
          calls: number
          seconds: number
          cpuSeconds: number
        }
        const total = done.calls * lines
        return {
          linesPerS: total / done.seconds,
          p50Ms: null,
          p99Ms: null,
          errors: 0,
          failures: {},
          cpuUsPerLine: total > 0 ? (done.cpuSeconds * 1e6) / total : null,
          backendCpuUsPerLine: null,
        }
      }
      const store: StoreKind = target.includes('postgres') ? 'postgres' : 'sqlite'
      const keyed = target.endsWith('_keyed')
      const api = target === 'limit' ? undefined : keyed ? keyedApis[store]!.api : apis[store]!
      const server = api ?? limit!
      await api?.refreshBackends()
      const backendBefore = api?.backendCpu() ?? 0
      const result: LoadResult = await postLoad({
        url: server.url,
        requests: requests[keyed ? (`${store}_keyed` as const) : store]![lines]!,
        connections: settings.connections,
        durationS,
        serverCpu: api ? () => api.cpuWithBackends() : server.cpuSeconds,
      })
      const backendUs =
        api && api.store === 'postgres' && result.ok > 0
          ? ((api.backendCpu() - backendBefore) * 1e6) / (result.ok * lines)
          : null
      return {
        linesPerS: result.rps * lines,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        errors: result.errors,
        failures: failuresOf(result),
        cpuUsPerLine: result.cpuUsPerReq === null ? null : result.cpuUsPerReq / lines,
        backendCpuUsPerLine: backendUs,
      }
    }

    log(`  warm-up: ${settings.warmupS} s per target and batch`)
    for (const lines of settings.batches) for (const target of targets) await measure(target, lines, settings.warmupS)

    const rounds: Record<number, Partial<Record<WriteTarget, Round[]>>> = Object.fromEntries(
      settings.batches.map((b) => [b, Object.fromEntries(targets.map((t) => [t, [] as Round[]]))]),
    )
    for (let round = 0; round < settings.rounds; round++) {
      for (const [i, lines] of settings.batches.entries()) {
        const line: string[] = []
        for (const target of inTurn(targets, round + i)) {
          const live = storeOf[target]
          const start = live && (await storeBytes(live))
          const result = await measure(target, lines, settings.durationS)
          if (live && start) {
            const end = await storeBytes(live)
            const sum = ((grown[target] ??= {})[lines] ??= { bytes: 0, events: 0, perEvent: NaN })
            sum.bytes += end.bytes - start.bytes
            sum.events += end.events - start.events
            sum.perEvent = sum.events > 0 ? sum.bytes / sum.events : NaN
          }
          if (result.errors > 0)
            log(
              `  WARNING: ${target}: ${result.errors} appends of ${lines} lines failed (${JSON.stringify(result.failures)})`,
            )
          rounds[lines]![target]!.push(result)
          line.push(`${target} ${Math.round(result.linesPerS).toLocaleString('en')}`)
        }
        log(`  round ${round + 1}/${settings.rounds}, ${lines} line(s) a request: ${line.join(', ')} lines/s`)
      }
    }

    // Where an append's time goes: its stack one layer at a time, at the batch the goals name.
    let layers: WritesResult['layers'] = null
    const layerLines = settings.batches.includes(100) ? 100 : settings.batches.at(-1)!
    {
      const fixturesFile = join(dataDir, 'write-fixtures.json')
      writeFileSync(fixturesFile, '[]')
      const servers: Partial<Record<WriteLayer, ServerProcess>> = { limit, api: apis.sqlite }
      try {
        for (const layer of ['hono', 'routes', 'log', 'auth', 'body'] as const) {
          const port = await freePort()
          servers[layer] = await startServer({
            name: layer,
            script: peerScript('layers'),
            args: [fixturesFile, String(port), layer, answersFile],
            port,
            env: { DATABASE_URL: lives[0]!.databaseUrl, LOG_LEVEL: 'info' },
          })
        }
        const run = (layer: WriteLayer, durationS: number) =>
          postLoad({
            url: servers[layer]!.url,
            requests: requests.sqlite![layerLines]!,
            connections: settings.connections,
            durationS,
            serverCpu: servers[layer]!.cpuSeconds,
          })
        for (const layer of WRITE_LAYERS) await run(layer, settings.warmupS)
        const runs = Object.fromEntries(WRITE_LAYERS.map((l) => [l, [] as LoadResult[]])) as Record<
          WriteLayer,
          LoadResult[]
        >
        for (let round = 0; round < settings.rounds; round++) {
          const line: string[] = []
          for (const layer of inTurn(WRITE_LAYERS, round)) {
            const result = await run(layer, settings.durationS)
            if (result.errors > 0)
              log(`  WARNING: ${layer}: ${result.errors} appends failed (${JSON.stringify(failuresOf(result))})`)
            runs[layer].push(result)
            line.push(`${layer} ${result.cpuUsPerReq === null ? '–' : Math.round(result.cpuUsPerReq)}`)
          }
          log(
            `  layers of an append of ${layerLines} lines, round ${round + 1}/${settings.rounds}: ${line.join(', ')} µs/req`,
          )
        }
        layers = {
          lines: layerLines,
          targets: Object.fromEntries(
            WRITE_LAYERS.map((l) => {
              const x = summariseRounds(runs[l])
              return [l, { requestsPerS: x.rps, p99Ms: x.p99Ms, cpuUsPerReq: x.cpuUsPerReq, errors: x.errors }]
            }),
          ) as NonNullable<WritesResult['layers']>['targets'],
        }
      } finally {
        await Promise.all(
          (['hono', 'routes', 'log', 'auth', 'body'] as const).map((l) => servers[l]?.stop() ?? Promise.resolve()),
        )
      }
    }

    const batches: WritesResult['batches'] = {}
    for (const lines of settings.batches) {
      const summaries: Partial<Record<WriteTarget, WriteSummary>> = {}
      for (const target of targets) {
        const runs = rounds[lines]![target]!
        summaries[target] = {
          linesPerS: median(runs.map((r) => r.linesPerS)),
          requestsPerS: median(runs.map((r) => r.linesPerS / lines)),
          p50Ms: medianOrNull(runs.map((r) => r.p50Ms)),
          p99Ms: medianOrNull(runs.map((r) => r.p99Ms)),
          errors: runs.reduce((n, r) => n + r.errors, 0),
          failures: addUp(runs.map((r) => r.failures)),
          cpuUsPerLine: medianOrNull(runs.map((r) => r.cpuUsPerLine)),
          backendCpuUsPerLine: medianOrNull(runs.map((r) => r.backendCpuUsPerLine)),
          rounds: runs.map(({ linesPerS, p99Ms, errors, cpuUsPerLine }) => ({
            linesPerS,
            p99Ms,
            errors,
            cpuUsPerLine,
          })),
        }
      }
      const ratios: Record<string, number> = {}
      const pairs: [WriteTarget, WriteTarget][] = [
        ['api_sqlite', 'limit'],
        ['api_sqlite', 'store_sqlite'],
        ...(postgres
          ? ([
              ['api_postgres', 'limit'],
              ['api_postgres', 'store_postgres'],
              ['api_postgres', 'api_sqlite'],
              ['api_postgres_keyed', 'api_postgres'],
            ] as [WriteTarget, WriteTarget][])
          : []),
        ['api_sqlite_keyed', 'api_sqlite'],
      ]
      for (const [a, b] of pairs) {
        const mine = rounds[lines]![a]!
        const theirs = rounds[lines]![b]!
        ratios[`${a}/${b}`] = median(mine.map((r, i) => r.linesPerS / theirs[i]!.linesPerS))
      }
      batches[lines] = { targets: summaries, ratios }
    }

    return {
      settings,
      layers,
      bytesPerEvent: grown,
      sessions: SESSIONS,
      bodyBytes: Object.fromEntries(
        settings.batches.map((b) => [b, Buffer.byteLength(requests.sqlite![b]![0]!.body as string)]),
      ),
      batches,
      memory: {
        api_sqlite: apis.sqlite?.memory() ?? null,
        api_postgres: apis.postgres?.memory() ?? null,
        limit: limit.memory(),
      },
      skipped: postgres ? [] : ['PostgreSQL: no server to reach'],
    }
  } finally {
    await Promise.all([
      ...Object.values(apis).map((a) => a.stop()),
      ...Object.values(keyedApis).map((k) => k.api.stop()),
      ...Object.values(loops).map((l) => l.stop()),
      limit?.stop(),
    ])
    for (const live of lives) await removeLiveStore(live)
  }
}

/** The bytes a store takes on disk, every table and index, and its events (SQLite: the database's pages in use, its WAL's included, as a new reader sees them; PostgreSQL: the schema's relations). */
async function storeBytes(live: LiveStore): Promise<{ bytes: number; events: number }> {
  if (live.store === 'sqlite') {
    const database = new SQLite(live.where, { readonly: true })
    try {
      const pageSize = database.pragma('page_size', { simple: true }) as number
      const pages = database.pragma('page_count', { simple: true }) as number
      const free = database.pragma('freelist_count', { simple: true }) as number
      const events = (database.prepare('select count(*) as n from session_events').get() as { n: number }).n
      return { bytes: (pages - free) * pageSize, events }
    } finally {
      database.close()
    }
  }
  const [size] = await pgQuery<{ bytes: string }>(
    live.where,
    `select coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint as bytes from pg_class c
       join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind in ('r', 'p', 'm')`,
    [live.where],
  )
  const [count] = await pgQuery<{ n: string }>(live.where, 'select count(*) as n from session_events')
  return { bytes: Number(size!.bytes), events: Number(count!.n) }
}
