import { startApi, type StoreKind } from './api.js'
import type { Dataset } from './datasets.js'
import { load, type LoadRequest, type LoadResult } from './load.js'
import type { Memory } from './processes.js'

// Overload: far more connections than the API can serve at once (512), each reading pages of 100
// events (the first page of every session and the page after its middle event), for a while, on
// each store. What the API does with the queue is the measurement: how many it answers, how slow
// the slowest accepted request is, and how many it refuses (503, with Retry-After) or loses
// (connection errors, timeouts). autocannon waits up to 60 s for an answer, longer than the run,
// so a slow answer is measured, not cut off as a timeout.

export interface OverloadSettings {
  connections: number
  durationS: number
  /** Events a page. */
  limit: number
}

export interface OverloadRow {
  store: StoreKind
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
  for (const store of ['sqlite', 'postgres'] as const) {
    const dataset = datasets[store]
    if (!dataset) continue
    const api = await startApi({ name: `overload_${store}`, databaseUrl: dataset.databaseUrl })
    try {
      const headers = { authorization: `Bearer ${dataset.secretKey}` }
      const requests: LoadRequest[] = dataset.sessionList.flatMap((s) => [
        { path: `/sessions/${s.id}/events?limit=${settings.limit}`, headers },
        { path: `/sessions/${s.id}/events?limit=${settings.limit}&after=${s.middleEventId}`, headers },
      ])
      for (const r of requests.slice(0, 2)) {
        const response = await fetch(api.url + r.path, { headers })
        const page = (await response.json()) as { items?: unknown[] }
        if (response.status !== 200 || page.items?.length !== settings.limit)
          throw new Error(`GET ${r.path}: ${response.status}`)
      }
      // A short warm-up at 32 connections: the JIT and the caches, not the queue.
      await load({ url: api.url, requests, connections: 32, durationS: 1 })
      await api.refreshBackends()
      const result: LoadResult = await load({
        url: api.url,
        requests,
        connections: settings.connections,
        durationS: settings.durationS,
        timeoutS: 60,
        serverCpu: () => api.cpuWithBackends(),
      })
      const otherStatuses = Object.fromEntries(
        Object.entries(result.statuses).filter(([code]) => !code.startsWith('2') && code !== '503'),
      )
      const status503 = result.statuses['503'] ?? 0
      const responses =
        Object.values(result.statuses).reduce((n, c) => n + c, 0) + result.connectionErrors + result.timeouts
      const row: OverloadRow = {
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
        memory: api.memory(),
      }
      rows.push(row)
      log(
        `  ${store}: ${Math.round(row.rps)} req/s, p99 ${row.p99Ms.toFixed(0)} ms, slowest ${row.maxMs.toFixed(0)} ms, ` +
          `503s ${(100 * row.share503).toFixed(1)}%, connection errors ${row.connectionErrors}, timeouts ${row.timeouts}`,
      )
    } finally {
      await api.stop()
    }
  }
  return { settings, rows, skipped: datasets.postgres ? [] : ['PostgreSQL: no server to reach'] }
}
