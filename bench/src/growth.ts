import type { Dataset } from './datasets.js'
import { load, median, medianOrNull, summariseRounds, type LoadResult, type RoundsSummary } from './load.js'
import { apiMain } from './paths.js'
import { freePort, startServer, type Memory } from './processes.js'

// Cost as data grows: the first page of a session and a page from its middle (`after` the
// middle event), for sessions of growing size. One connection, so that the figures are the
// latency of one request, not of a queue. A keyset scan stays flat: deep ≈ first.

export interface GrowthSettings {
  rounds: number
  durationS: number
  warmupS: number
}

export interface PageSummary extends RoundsSummary {
  path: string
}

export interface GrowthRow {
  events: number
  dataset: string
  first: PageSummary
  deep: PageSummary
  /** Deep page over first page: p50 latency, the median of the rounds' ratios (each round side by side). */
  deepOverFirst: number
  /** The same on the server's CPU time per request. */
  deepOverFirstCpu: number | null
  memory: Memory | null
}

const summarise = (path: string, runs: LoadResult[]): PageSummary => ({ path, ...summariseRounds(runs) })

export async function growthRow(
  dataset: Dataset,
  settings: GrowthSettings,
  log: (line: string) => void,
): Promise<GrowthRow> {
  const session = dataset.sessionList[0]!
  const port = await freePort()
  const api = await startServer({
    name: 'api',
    script: apiMain,
    port,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: dataset.databaseUrl,
      SEED: 'false',
      RATE_LIMIT_PER_MINUTE: 'off',
    },
  })
  try {
    const headers = { authorization: `Bearer ${dataset.secretKey}` }
    const paths = {
      first: `/sessions/${session.id}/events?limit=20`,
      deep: `/sessions/${session.id}/events?limit=20&after=${session.middleEventId}`,
    }
    for (const path of Object.values(paths)) {
      const response = await fetch(api.url + path, { headers })
      const page = (await response.json()) as { items?: unknown[] }
      if (response.status !== 200 || page.items?.length !== 20) throw new Error(`GET ${path}: ${response.status}`)
    }
    const run = (path: string, durationS: number) =>
      load({ url: api.url, requests: [{ path, headers }], connections: 1, durationS, serverCpu: api.cpuSeconds })
    await run(paths.first, settings.warmupS)
    await run(paths.deep, settings.warmupS)

    const runs = { first: [] as LoadResult[], deep: [] as LoadResult[] }
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? (['first', 'deep'] as const) : (['deep', 'first'] as const)
      for (const page of order) runs[page].push(await run(paths[page], settings.durationS))
    }
    const first = summarise(paths.first, runs.first)
    const deep = summarise(paths.deep, runs.deep)
    const row: GrowthRow = {
      events: session.events,
      dataset: dataset.name,
      first,
      deep,
      deepOverFirst: median(runs.deep.map((r, i) => r.p50Ms / runs.first[i]!.p50Ms)),
      deepOverFirstCpu: medianOrNull(
        runs.deep.map((r, i) =>
          r.cpuUsPerReq && runs.first[i]!.cpuUsPerReq ? r.cpuUsPerReq / runs.first[i]!.cpuUsPerReq! : null,
        ),
      ),
      memory: api.memory(),
    }
    log(
      `  ${session.events.toLocaleString('en')} events: p50 first ${first.p50Ms.toFixed(2)} ms, deep ${deep.p50Ms.toFixed(2)} ms (×${row.deepOverFirst.toFixed(2)})`,
    )
    return row
  } finally {
    await api.stop()
  }
}
