import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startApi, type StoreKind } from './api.js'
import type { Dataset } from './datasets.js'
import { percentile, type LoadRequest, type LoadResult } from './load.js'
import { postLoad } from './post-load.js'
import { dataDir, peerScript } from './paths.js'
import type { Fixture } from './peers/fixtures.js'
import { freePort, startServer, type Memory } from './processes.js'
import { body } from './throughput.js'

// Overload: far more connections than the API can serve at once (512), each reading pages of 100
// events (the first page of every session and the page after its middle event), for a while, on
// each store. What the API does with the queue is the measurement: how many it answers, how slow
// the slowest accepted request is, and how many it refuses (503, with Retry-After) or loses
// (connection errors, timeouts). The driver (post-load.ts) waits up to 60 s for an answer, longer
// than the run, so a slow answer is measured, not cut off as a timeout.
//
// A request's time runs from its write to the last byte of the answer read by the driver, which
// shares the machine's two cores with the API: with 512 connections and pages of about 200 KB,
// the driver itself is a queue. It counts an answer's bytes rather than parsing them (autocannon,
// the driver before, parsed each page in JavaScript: in one run side by side, the limit's slowest
// answer was 1.1 s with it and 0.72 s with this one, in runs minutes apart). Two measures tell the API's part from it: the API's
// own time for each accepted request (its access log's duration_ms, from its first middleware to
// its answer, over the measured run), and the limit: bare node:http answering the same pages'
// exact bytes under the same load, whose slowest answer is what the driver alone makes of it.

export interface OverloadSettings {
  connections: number
  durationS: number
  /** Events a page. */
  limit: number
}

/** The API's own time for the accepted requests of a run, from its access log. */
export interface ServerTimes {
  requests: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

export interface OverloadRow {
  /** The store the API ran on; `limit`: bare node:http answering the pages' bytes (peers/limit.ts). */
  store: StoreKind | 'limit'
  rps: number
  p50Ms: number
  p99Ms: number
  /** The slowest 2xx answer, ms. */
  maxMs: number
  ok: number
  /** Every answer and failure: 2xx, 503s, other statuses, connection errors, timeouts. */
  responses: number
  status503: number
  otherStatuses: Record<string, number>
  connectionErrors: number
  timeouts: number
  /** 503s among all answers and failures. */
  share503: number
  cpuUsPerReq: number | null
  memory: Memory | null
  /** The API's own time for each accepted request (null for the limit, which keeps no log). */
  server: ServerTimes | null
}

export interface OverloadResult {
  settings: OverloadSettings
  rows: OverloadRow[]
  skipped: string[]
}

export async function overloadSuite(
  datasets: Partial<Record<StoreKind, Dataset>>,
  settings: OverloadSettings,
  log: (line: string) => void,
): Promise<OverloadResult> {
  const rows: OverloadRow[] = []
  /** The pages the API answered, for the limit to serve (from the first store's API). */
  let fixtures: Fixture[] | undefined
  for (const store of ['sqlite', 'postgres'] as const) {
    const dataset = datasets[store]
    if (!dataset) continue
    const accessLog = join(dataDir, `overload-${store}.log`)
    rmSync(accessLog, { force: true })
    const api = await startApi({
      name: `overload_${store}`,
      databaseUrl: dataset.databaseUrl,
      args: { stdoutFile: accessLog },
    })
    let measured: {
      result: LoadResult
      from: number
      to: number
      memory: Memory | null
    }
    try {
      const headers = { authorization: `Bearer ${dataset.secretKey}` }
      const requests: LoadRequest[] = dataset.sessionList.flatMap((s) => [
        { path: `/sessions/${s.id}/events?limit=${settings.limit}`, headers },
        {
          path: `/sessions/${s.id}/events?limit=${settings.limit}&after=${s.middleEventId}`,
          headers,
        },
      ])
      for (const r of requests.slice(0, 2)) {
        const response = await fetch(api.url + r.path, { headers })
        const page = (await response.json()) as { items?: unknown[] }
        if (response.status !== 200 || page.items?.length !== settings.limit)
          throw new Error(`GET ${r.path}: ${response.status}`)
      }
      fixtures ??= await Promise.all(
        requests.map(async (r) => ({
          endpoint: 'list' as const,
          path: r.path,
          body: await body(api.url + r.path, headers),
        })),
      )
      // A short warm-up at 32 connections: the JIT and the caches, not the queue.
      await postLoad({ url: api.url, requests, connections: 32, durationS: 1 })
      await api.refreshBackends()
      const from = Date.now()
      const result = await overload(api.url, requests, settings, () => api.cpuWithBackends())
      measured = { result, from, to: Date.now(), memory: api.memory() }
    } finally {
      await api.stop() // its access log is all written once it has exited
    }
    const server = accessLogTimes(readFileSync(accessLog, 'utf8'), measured.from, measured.to)
    rmSync(accessLog, { force: true })
    rows.push(row(store, measured.result, measured.memory, server, log))
  }

  if (fixtures) {
    // The limit: the same pages' bytes from bare node:http, under the same load.
    const fixturesFile = join(dataDir, 'overload-fixtures.json')
    writeFileSync(fixturesFile, JSON.stringify(fixtures))
    const port = await freePort()
    const limit = await startServer({
      name: 'overload_limit',
      script: peerScript('limit'),
      args: [fixturesFile, String(port)],
      port,
    })
    try {
      const requests = fixtures.map((f): LoadRequest => ({ path: f.path }))
      await postLoad({ url: limit.url, requests, connections: 32, durationS: 1 })
      const result = await overload(limit.url, requests, settings, () => limit.cpuSeconds())
      rows.push(row('limit', result, limit.memory(), null, log))
    } finally {
      await limit.stop()
      rmSync(fixturesFile, { force: true })
    }
  }
  return {
    settings,
    rows,
    skipped: datasets.postgres ? [] : ['PostgreSQL: no server to reach'],
  }
}

function overload(
  url: string,
  requests: LoadRequest[],
  settings: OverloadSettings,
  serverCpu: () => number | null,
): Promise<LoadResult> {
  return postLoad({
    url,
    requests,
    connections: settings.connections,
    durationS: settings.durationS,
    timeoutS: 60,
    serverCpu,
  })
}

function row(
  store: OverloadRow['store'],
  result: LoadResult,
  memory: Memory | null,
  server: ServerTimes | null,
  log: (line: string) => void,
): OverloadRow {
  const otherStatuses = Object.fromEntries(
    Object.entries(result.statuses).filter(([code]) => !code.startsWith('2') && code !== '503'),
  )
  const status503 = result.statuses['503'] ?? 0
  const responses =
    Object.values(result.statuses).reduce((n, c) => n + c, 0) + result.connectionErrors + result.timeouts
  const made: OverloadRow = {
    store,
    rps: result.rps,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    maxMs: result.maxMs,
    ok: result.ok,
    responses,
    status503,
    otherStatuses,
    connectionErrors: result.connectionErrors,
    timeouts: result.timeouts,
    share503: responses > 0 ? status503 / responses : 0,
    cpuUsPerReq: result.cpuUsPerReq,
    memory,
    server,
  }
  log(
    `  ${store}: ${Math.round(made.rps)} req/s, p99 ${made.p99Ms.toFixed(0)} ms, slowest ${made.maxMs.toFixed(0)} ms` +
      `${server ? ` (the API's own time: p99 ${server.p99Ms.toFixed(1)} ms, slowest ${server.maxMs.toFixed(1)} ms)` : ''}, ` +
      `503s ${(100 * made.share503).toFixed(1)}%, connection errors ${made.connectionErrors}, timeouts ${made.timeouts}`,
  )
  return made
}

/** The API's own time for its 2xx answers logged between `from` and `to` (ms since the epoch; a line's time is when it was answered). */
export function accessLogTimes(text: string, from: number, to: number): ServerTimes {
  const times: number[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue // the banner
    const entry = JSON.parse(line) as {
      time?: number
      status?: number
      duration_ms?: number
    }
    if (entry.duration_ms === undefined || entry.status === undefined || entry.time === undefined) continue
    if (entry.status < 200 || entry.status > 299 || entry.time < from || entry.time > to) continue
    times.push(entry.duration_ms)
  }
  times.sort((a, b) => a - b)
  return {
    requests: times.length,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    maxMs: times.at(-1) ?? NaN,
  }
}
