import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
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
import { apiMain, dataDir, peerScript, writerScript } from './paths.js'
import type { Endpoint, Fixture } from './peers/fixtures.js'
import { freePort, startServer, startWorker, type Memory, type ServerProcess, type WorkerProcess } from './processes.js'
import type { WriterReport } from './writer.js'

// Throughput and latency at 32 connections: the API against the limit, the naive peer and
// Fastify, on the same requests, each server in its own process. Targets take turns in rounds
// (and the order turns too), so drift on a noisy machine hits all of them alike.

/**
 * The writer of the api_writing diagnostic: small transactions at a steady pace, as ingestion
 * makes them. Each commit is a change the API's SQLite caches must tell apart from the changes
 * to what they hold, so this says what ingestion costs the API's reads.
 */
export const WRITES = { eventsPerCommit: 5, commitsPerSecond: 100 } as const

export const TARGETS = ['api', 'api_warn', 'api_memo', 'api_writing', 'limit', 'naive', 'fastify'] as const
export type Target = (typeof TARGETS)[number]
export const ENDPOINTS: Endpoint[] = ['list', 'list_filtered', 'get']

export const TARGET_LABELS: Record<Target, string> = {
  api: 'API (LOG_LEVEL=info, default)',
  api_warn: 'API (LOG_LEVEL=warn)',
  api_memo: 'diagnostic: the API with its store’s reads answered from memory',
  api_writing: `diagnostic: the API while another process appends ${WRITES.eventsPerCommit * WRITES.commitsPerSecond} events/s (${WRITES.commitsPerSecond} commits/s)`,
  limit: 'limit: bare node:http, precomputed bytes',
  naive: 'naive: node:http + JSON.stringify',
  fastify: 'Fastify + response schema',
}
export const ENDPOINT_LABELS: Record<Endpoint, string> = {
  list: 'listSessionEvents, limit=20',
  list_filtered: 'listSessionEvents, limit=20, server_run_id filter',
  get: 'getSessionEvent',
}

export interface Settings {
  rounds: number
  durationS: number
  warmupS: number
  connections: number
}

export type TargetSummary = RoundsSummary

export interface ThroughputResult {
  settings: Settings
  dataset: { name: string; sessions: number; eventsPerSession: number }
  requests: Record<Endpoint, { paths: number; bodyBytes: number }>
  /** Whether each server answered with the API's bytes. */
  wire: Record<Exclude<Target, 'api'>, Record<Endpoint, 'identical bytes' | 'same JSON, other bytes' | 'different'>>
  endpoints: Record<
    Endpoint,
    {
      targets: Record<Target, TargetSummary>
      /**
       * `api/limit` etc.: the API's req/s over the peer's, the median of the rounds' ratios (each
       * round side by side); `api/api_writing`: the API over itself with a writer beside it.
       */
      ratios: Record<string, number>
      /** The same on requests per CPU-second of the server: the peer's CPU per request over the API's. */
      cpuRatios: Record<string, number | null>
    }
  >
  memory: Record<Target, Memory | null>
  /** What the writer beside api_writing asked for, and what it did in each measured round. */
  writes: typeof WRITES & { rounds: WriterReport[]; commitsPerS: number }
}

type Log = (line: string) => void

export async function body(url: string, headers: Record<string, string>): Promise<string> {
  const response = await fetch(url, { headers })
  const text = Buffer.from(await response.arrayBuffer()).toString('utf8')
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${text.slice(0, 300)}`)
  return text
}

/** The requests of each endpoint, and the API's answer to each: what the peers will serve. */
export async function captureFixtures(
  api: Pick<ServerProcess, 'url'>,
  dataset: Dataset,
  auth: Record<string, string>,
): Promise<Fixture[]> {
  const fixtures: Fixture[] = []
  for (const session of dataset.sessionList) {
    const listPath = `/sessions/${session.id}/events?limit=20`
    const listBody = await body(api.url + listPath, auth)
    const page = JSON.parse(listBody) as { items: { id: string; server_run: { id: string } | null }[] }
    const runId = page.items[0]?.server_run?.id
    if (page.items.length !== 20 || !runId) throw new Error(`unexpected first page of ${session.id}`)
    fixtures.push({ endpoint: 'list', path: listPath, body: listBody })
    const filteredPath = `${listPath}&server_run_id=${runId}`
    fixtures.push({ endpoint: 'list_filtered', path: filteredPath, body: await body(api.url + filteredPath, auth) })
    for (const event of page.items.slice(0, 10)) {
      const getPath = `/sessions/${session.id}/events/${event.id}`
      fixtures.push({ endpoint: 'get', path: getPath, body: await body(api.url + getPath, auth) })
    }
  }
  return fixtures
}

export async function throughputSuite(dataset: Dataset, settings: Settings, log: Log): Promise<ThroughputResult> {
  const auth = { authorization: `Bearer ${dataset.secretKey}` }
  const apiEnv = (level: string) => ({
    HOST: '127.0.0.1',
    DATABASE_URL: dataset.databaseUrl,
    SEED: 'false',
    RATE_LIMIT_PER_MINUTE: 'off',
    LOG_LEVEL: level,
  })
  const servers = {} as Record<Target, ServerProcess>
  let writer: WorkerProcess | undefined
  try {
    for (const [target, level] of [
      ['api', 'info'],
      ['api_warn', 'warn'],
      ['api_writing', 'info'],
    ] as const) {
      const port = await freePort()
      servers[target] = await startServer({
        name: target,
        script: apiMain,
        port,
        env: { ...apiEnv(level), PORT: String(port) },
      })
    }

    const fixtures = await captureFixtures(servers.api, dataset, auth)
    const fixturesFile = join(dataDir, 'fixtures.json')
    writeFileSync(fixturesFile, JSON.stringify(fixtures))
    for (const peer of ['limit', 'naive', 'fastify'] as const) {
      const port = await freePort()
      servers[peer] = await startServer({
        name: peer,
        script: peerScript(peer),
        args: [fixturesFile, String(port)],
        port,
      })
    }
    const memoPort = await freePort()
    servers.api_memo = await startServer({
      name: 'api_memo',
      script: peerScript('api-memoised-store'),
      args: [fixturesFile, String(memoPort)],
      port: memoPort,
      env: apiEnv('info'),
    })

    writer = await startWorker({
      name: 'writer',
      script: writerScript,
      args: [dataset.secretKey, String(WRITES.eventsPerCommit), String(WRITES.commitsPerSecond)],
      env: { DATABASE_URL: dataset.databaseUrl },
    })
    const writes: WriterReport[] = []
    /** One load; api_writing's with the writer at work for just as long. */
    const measure = async (
      target: Target,
      options: Parameters<typeof load>[0],
      measured: boolean,
    ): Promise<LoadResult> => {
      if (target !== 'api_writing') return load(options)
      writer!.send('start')
      try {
        return await load(options)
      } finally {
        writer!.send('stop')
        const report = JSON.parse(await writer!.nextLine()) as WriterReport
        if (measured) writes.push(report)
      }
    }

    // Every server must answer with the same JSON, or the comparison means nothing.
    const wire = {} as ThroughputResult['wire']
    for (const target of TARGETS) {
      if (target === 'api') continue
      wire[target] = {} as ThroughputResult['wire'][typeof target]
      for (const endpoint of ENDPOINTS) {
        const fixture = fixtures.find((f) => f.endpoint === endpoint)!
        const text = await body(servers[target].url + fixture.path, auth)
        wire[target][endpoint] =
          text === fixture.body
            ? 'identical bytes'
            : isDeepStrictEqual(JSON.parse(text), JSON.parse(fixture.body))
              ? 'same JSON, other bytes'
              : 'different'
        if (wire[target][endpoint] === 'different')
          log(`  WARNING: ${target} does not answer ${endpoint} with the API's JSON`)
      }
    }

    const requests = Object.fromEntries(
      ENDPOINTS.map((endpoint) => [
        endpoint,
        fixtures.filter((f) => f.endpoint === endpoint).map((f): LoadRequest => ({ path: f.path, headers: auth })),
      ]),
    ) as Record<Endpoint, LoadRequest[]>

    log(`  warm-up: ${settings.warmupS} s per server and endpoint`)
    for (const target of TARGETS) {
      for (const endpoint of ENDPOINTS) {
        await measure(
          target,
          {
            url: servers[target].url,
            requests: requests[endpoint],
            connections: settings.connections,
            durationS: settings.warmupS,
          },
          false,
        )
      }
    }

    const rounds = Object.fromEntries(
      ENDPOINTS.map((e) => [e, Object.fromEntries(TARGETS.map((t) => [t, [] as LoadResult[]]))]),
    ) as Record<Endpoint, Record<Target, LoadResult[]>>
    for (let round = 0; round < settings.rounds; round++) {
      for (const [e, endpoint] of ENDPOINTS.entries()) {
        const order = inTurn(TARGETS, round + e)
        const line: string[] = []
        for (const target of order) {
          const result = await measure(
            target,
            {
              url: servers[target].url,
              requests: requests[endpoint],
              connections: settings.connections,
              durationS: settings.durationS,
              serverCpu: servers[target].cpuSeconds,
            },
            true,
          )
          rounds[endpoint][target].push(result)
          line.push(`${target} ${Math.round(result.rps)}`)
        }
        log(`  round ${round + 1}/${settings.rounds} ${endpoint}: ${line.join(', ')} req/s`)
      }
    }

    const memory = Object.fromEntries(TARGETS.map((t) => [t, servers[t].memory()])) as Record<Target, Memory | null>

    const endpoints = {} as ThroughputResult['endpoints']
    for (const endpoint of ENDPOINTS) {
      const targets = {} as Record<Target, TargetSummary>
      for (const target of TARGETS) {
        targets[target] = summariseRounds(rounds[endpoint][target])
      }
      const ratios: Record<string, number> = {}
      const cpuRatios: Record<string, number | null> = {}
      // Each API against each peer, and the API at rest against itself beside a writer.
      const pairs: [Target, Target][] = [
        ...(['api', 'api_warn'] as const).flatMap((api) =>
          (['limit', 'naive', 'fastify'] as const).map((peer): [Target, Target] => [api, peer]),
        ),
        ['api', 'api_writing'],
      ]
      for (const [a, b] of pairs) {
        const mine = rounds[endpoint][a]
        const theirs = rounds[endpoint][b]
        ratios[`${a}/${b}`] = median(mine.map((r, i) => r.rps / theirs[i]!.rps))
        cpuRatios[`${a}/${b}`] = medianOrNull(
          mine.map((r, i) =>
            r.cpuUsPerReq && theirs[i]!.cpuUsPerReq ? theirs[i]!.cpuUsPerReq! / r.cpuUsPerReq : null,
          ),
        )
      }
      endpoints[endpoint] = { targets, ratios, cpuRatios }
    }

    return {
      settings,
      dataset: { name: dataset.name, sessions: dataset.sessionList.length, eventsPerSession: dataset.events },
      requests: Object.fromEntries(
        ENDPOINTS.map((e) => {
          const mine = fixtures.filter((f) => f.endpoint === e)
          return [
            e,
            {
              paths: mine.length,
              bodyBytes: Math.round(mine.reduce((n, f) => n + Buffer.byteLength(f.body), 0) / mine.length),
            },
          ]
        }),
      ) as ThroughputResult['requests'],
      wire,
      endpoints,
      memory,
      writes: { ...WRITES, rounds: writes, commitsPerS: median(writes.map((w) => w.commits / w.seconds)) },
    }
  } finally {
    await Promise.all([...Object.values(servers).map((s) => s.stop()), writer?.stop()])
  }
}
