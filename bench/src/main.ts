import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureDataset, type Dataset } from './datasets.js'
import { followSuite, type FollowResult, type FollowSettings } from './follow.js'
import { growthRow, type GrowthRow, type GrowthSettings } from './growth.js'
import { layersSuite, type LayersResult } from './layers.js'
import { git, machine, versions } from './machine.js'
import { overloadSuite, type OverloadResult, type OverloadSettings } from './overload.js'
import { otlpSuite, type OtlpBenchResult, type OtlpBenchSettings } from './otlp.js'
import { resultsDir } from './paths.js'
import { dropUsedSchemas, pgServer, PG_BASE_URL } from './pg.js'
import { pruneSuite, type PruneResult, type PruneSettings } from './prune.js'
import { checkTargets, markdown, type Results } from './report.js'
import { sameWorkSuite, type SameWorkResult } from './same-work.js'
import { storageSuite, type StorageResult } from './storage.js'
import { throughputSuite, type Settings, type ThroughputResult } from './throughput.js'
import { writesSuite, type WriteSettings, type WritesResult } from './writes.js'

export const SUITES = [
  'throughput',
  'peers',
  'writes',
  'otlp',
  'follow',
  'overload',
  'growth',
  'storage',
  'prune',
] as const
type Suite = (typeof SUITES)[number]

const HELP = `npm run bench [-- --quick] [-- --only SUITE[,SUITE…]] [-- --keep-data]

Suites (all of them by default, in this order):
  throughput  the API against the limit (bare node:http, precomputed bytes), a naive peer
              (node:http + JSON.stringify) and Fastify (response schemas), side by side at 32
              connections, with two diagnostics of the API (its store's reads answered from
              memory; another process appending events beside it); then a single event's cost
              through the API's stack one layer at a time
  peers       the same work written as a user would (Fastify + Kysely, nothing cached) beside the
              API, on SQLite and on PostgreSQL; and so the API's reads on PostgreSQL against SQLite
  writes      log lines appended per second over HTTP, 1 to 1,000 lines a request, on both stores,
              against the write limit (node:http that parses and answers) and the store alone
  otlp        log records per second through POST /v1/logs (OTLP/HTTP, protobuf and JSON, 100
              records a request) beside appends of 100 lines through the JSON API, on both stores
  follow      the live tail: from an append's 201 to the event at 1, 100 and 1,000 followers, on
              one process and across two (PostgreSQL); the API's memory per idle follower, and
              10,000 idle followers of 100 sessions on one process
  overload    512 connections reading pages of 100 events: req/s, p99, the slowest, 503s, errors
  growth      the first and a deep page of sessions of 1,000, 100,000 and 1,000,000 events
  storage     bytes per event on disk, table and indexes, at a million events; which index each
              read uses, and one that could go, proven with EXPLAIN ANALYZE
  prune       retention: the API pruning a million expired events on its own, on both stores,
              alone and while 8 connections append: events/s, append p99 during ÷ without,
              and on SQLite the file before and after

PostgreSQL: the server BENCH_DATABASE_URL names (default ${PG_BASE_URL}), each dataset in a
schema of its own named bench_*; without a server, its parts are left out and the results say so.
Datasets are seeded once into bench/.data/ and reused; the bench_* schemas a run made or reused
are dropped at its end (the server is shared), unless --keep-data. Writes
bench/results/<time>.json and, after a full run of every suite, bench/results/latest.md; prints the tables.

  --quick      small datasets, short runs: a check that it all works (results not kept as latest)
  --only X     only these suites (comma-separated)
  --keep-data  keep the run's bench_* schemas on PostgreSQL, for the next run to reuse`

const PLANS = {
  full: {
    throughput: { rounds: 3, durationS: 2, warmupS: 0.5, connections: 32 } satisfies Settings,
    throughputData: { sessions: 10, events: 10_000 },
    peers: { rounds: 3, durationS: 1.5, warmupS: 0.5, connections: 32 } satisfies Settings,
    writes: {
      rounds: 2,
      durationS: 1,
      warmupS: 0.3,
      connections: 32,
      batches: [1, 10, 100, 1000],
    } satisfies WriteSettings,
    otlp: { rounds: 3, durationS: 1, warmupS: 0.3, connections: 32 } satisfies OtlpBenchSettings,
    follow: {
      followers: [1, 100, 1000],
      appends: 20,
      intervalMs: 100,
      warmupAppends: 3,
      idle: { sessions: 100, perSession: 100 },
    } satisfies FollowSettings,
    overload: { connections: 512, durationS: 20, limit: 100 } satisfies OverloadSettings,
    growth: { rounds: 3, durationS: 1.5, warmupS: 0.5 } satisfies GrowthSettings,
    sizes: [1_000, 100_000, 1_000_000],
    prune: { events: 1_000_000 } satisfies PruneSettings,
  },
  quick: {
    throughput: { rounds: 1, durationS: 1, warmupS: 0.5, connections: 32 } satisfies Settings,
    throughputData: { sessions: 10, events: 1_000 },
    peers: { rounds: 1, durationS: 0.5, warmupS: 0.3, connections: 32 } satisfies Settings,
    writes: { rounds: 1, durationS: 0.4, warmupS: 0.2, connections: 32, batches: [100] } satisfies WriteSettings,
    otlp: { rounds: 1, durationS: 0.5, warmupS: 0.2, connections: 32 } satisfies OtlpBenchSettings,
    follow: {
      followers: [1, 100],
      appends: 5,
      intervalMs: 100,
      warmupAppends: 2,
      idle: { sessions: 10, perSession: 20 },
    } satisfies FollowSettings,
    overload: { connections: 512, durationS: 2, limit: 100 } satisfies OverloadSettings,
    growth: { rounds: 1, durationS: 1, warmupS: 0.5 } satisfies GrowthSettings,
    sizes: [1_000, 10_000],
    prune: { events: 20_000 } satisfies PruneSettings,
  },
}

const began = performance.now()
/** Progress on stderr; a suite's first line says when it started, for fitting the plans to the time a run may take. */
const log = (line: string) =>
  process.stderr.write(
    `${line.startsWith(' ') ? '' : `[${Math.round((performance.now() - began) / 1000)} s] `}${line}\n`,
  )

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'keep-data': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return console.log(HELP)
  try {
    await runSuites(values)
  } finally {
    if (values['keep-data']) log('--keep-data: the bench_* schemas of this run are kept on PostgreSQL')
    else await dropRunSchemas()
  }
}

/** The PostgreSQL schemas the run made or reused, dropped: the server is shared (with CI among others). */
async function dropRunSchemas() {
  try {
    const dropped = await dropUsedSchemas()
    if (dropped.length > 0) log(`dropped this run's PostgreSQL schemas: ${dropped.join(', ')} (--keep-data keeps them)`)
  } catch (error) {
    log(
      `bench: could not drop this run's PostgreSQL schemas: ${error instanceof Error ? error.message : String(error)}`,
    )
    process.exitCode = 1
  }
}

async function runSuites(values: { quick: boolean; only?: string | undefined }) {
  const only = values.only === undefined ? null : values.only.split(',').map((s) => s.trim())
  for (const name of only ?? [])
    if (!SUITES.includes(name as Suite)) throw new Error(`--only takes ${SUITES.join(', ')} (got "${name}")`)
  const runs = (suite: Suite) => only === null || only.includes(suite)
  const mode = values.quick ? 'quick' : 'full'
  const plan = PLANS[mode]
  const started = new Date()
  const machineAtStart = machine()
  log(
    `bench (${mode}): ${machineAtStart.cpu}, ${machineAtStart.cores} cores, Node ${machineAtStart.node}, load average ${machineAtStart.loadavgAtStart[0]}`,
  )
  const needsPostgres = (['peers', 'writes', 'otlp', 'follow', 'overload', 'storage', 'prune'] as const).some(runs)
  const postgres = needsPostgres ? await pgServer() : null
  if (needsPostgres && !postgres) log(`no PostgreSQL server at ${PG_BASE_URL}: its parts are left out`)

  // Seeding first, so that the measurements run on a machine that does nothing else of ours.
  const datasets: Dataset[] = []
  const reuse = (dataset: Dataset) => {
    if (!dataset.seededNow)
      log(
        `reusing ${dataset.name}${dataset.store === 'postgres' ? ' (PostgreSQL)' : ''} (${dataset.seeding.events.toLocaleString('en')} events, seeded ${dataset.seeding.at})`,
      )
    datasets.push(dataset)
    return dataset
  }
  const readShape = {
    name: `throughput-${plan.throughputData.sessions}x${plan.throughputData.events}`,
    instances: 1,
    ...plan.throughputData,
  }
  let throughputData: Dataset | undefined
  let pgReadData: Dataset | undefined
  if (runs('throughput') || runs('peers') || runs('overload')) {
    throughputData = reuse(await ensureDataset(readShape, { fresh: true, log }))
    if (postgres && (runs('peers') || runs('overload')))
      pgReadData = reuse(await ensureDataset(readShape, { store: 'postgres', log }))
  }
  const growthData: Dataset[] = []
  if (runs('growth') || runs('storage')) {
    for (const events of runs('growth') ? plan.sizes : plan.sizes.slice(-1)) {
      growthData.push(
        reuse(await ensureDataset({ name: `session-${events}`, instances: 1, sessions: 1, events }, { log })),
      )
    }
  }
  let pgLargest: Dataset | undefined
  if (postgres && runs('storage')) {
    pgLargest = reuse(
      await ensureDataset(
        { name: `session-${plan.sizes.at(-1)}`, instances: 1, sessions: 1, events: plan.sizes.at(-1)! },
        { store: 'postgres', log },
      ),
    )
  }

  // A suite that throws is reported and the others still run; the run then ends with a failure.
  const failedSuites: { suite: string; message: string }[] = []
  const attempt = async <T>(suite: Suite, run: () => Promise<T>): Promise<T | null> => {
    try {
      return await run()
    } catch (error) {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
      log(`${suite}: FAILED: ${message}`)
      failedSuites.push({ suite, message })
      return null
    }
  }

  let throughput: ThroughputResult | null = null
  let layers: LayersResult | null = null
  if (runs('throughput')) {
    log(
      `throughput: ${plan.throughput.rounds} round(s) × ${plan.throughput.durationS} s per server and endpoint, ${plan.throughput.connections} connections`,
    )
    throughput = await attempt('throughput', () => throughputSuite(throughputData!, plan.throughput, log))
    log('layers: a single event through the API’s stack, one layer at a time')
    if (throughput) layers = await attempt('throughput', () => layersSuite(throughputData!, plan.throughput, log))
  }
  let sameWork: SameWorkResult | null = null
  if (runs('peers')) {
    log(
      `peers: the same work with Fastify + Kysely, beside the API, on SQLite${postgres ? ' and PostgreSQL' : ', and the API on PGlite (no PostgreSQL server)'}`,
    )
    sameWork = await attempt('peers', () =>
      sameWorkSuite({ sqlite: throughputData!, ...(pgReadData && { postgres: pgReadData }) }, plan.peers, log, {
        ...(!postgres && { pglite: plan.throughputData }),
        // A check needs no choice of serialiser: JSON.stringify, the faster one so far.
        ...(mode === 'quick' && { serialiser: { list: 'json', get: 'json' } as const }),
      }),
    )
  }
  let writes: WritesResult | null = null
  if (runs('writes')) {
    log(`writes: lines appended per second, ${plan.writes.batches.join(', ')} lines a request`)
    writes = await attempt('writes', () => writesSuite(plan.writes, postgres !== null, log))
  }
  let otlp: OtlpBenchResult | null = null
  if (runs('otlp')) {
    log('otlp: log records per second through POST /v1/logs beside appends through the JSON API')
    otlp = await attempt('otlp', () => otlpSuite(plan.otlp, postgres !== null, log))
  }
  let follow: FollowResult | null = null
  if (runs('follow')) {
    log(`follow: ${plan.follow.followers.join(', ')} followers of one session`)
    follow = await attempt('follow', () => followSuite(plan.follow, postgres !== null, log))
  }
  let overload: OverloadResult | null = null
  if (runs('overload')) {
    log(
      `overload: ${plan.overload.connections} connections reading pages of ${plan.overload.limit} for ${plan.overload.durationS} s`,
    )
    overload = await attempt('overload', () =>
      overloadSuite({ sqlite: throughputData!, ...(pgReadData && { postgres: pgReadData }) }, plan.overload, log),
    )
  }
  const rows: GrowthRow[] = []
  if (runs('growth')) {
    log('cost as data grows: first and deep page, one connection')
    await attempt('growth', async () => {
      for (const dataset of growthData) rows.push(await growthRow(dataset, plan.growth, log))
    })
  }
  let storage: StorageResult | null = null
  if (runs('storage')) {
    log('storage: bytes per event, and the indexes each read uses')
    storage = await attempt('storage', () => storageSuite({ sqlite: growthData.at(-1)!, postgres: pgLargest }, log))
  }
  let prune: PruneResult | null = null
  if (runs('prune')) {
    log(`prune: ${plan.prune.events.toLocaleString('en')} expired events pruned by the API, alone and with appends`)
    prune = await attempt('prune', () => pruneSuite(plan.prune, postgres !== null, log))
  }

  const peaks = [throughput?.memory.api, ...rows.map((r) => r.memory)]
    .filter((m) => m != null)
    .map((m) => m.peakRssBytes)
  const finished = new Date()
  const partial: Omit<Results, 'targets'> = {
    format: 1,
    mode,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    wallSeconds: (finished.getTime() - started.getTime()) / 1000,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: { ...machineAtStart, loadavgAtEnd: loadavg().map((n) => Math.round(n * 100) / 100) },
    versions: versions(),
    git: git(),
    seeding: datasets.map((d) => ({
      name: d.store === 'postgres' ? `${d.name} (PostgreSQL)` : d.name,
      seededNow: d.seededNow,
      ...d.seeding,
    })),
    throughput,
    layers,
    postgres: postgres && { url: PG_BASE_URL.replace(/\/\/[^@]*@/, '//'), ...postgres },
    sameWork,
    writes,
    otlp,
    follow,
    overload,
    storage,
    prune,
    growth: rows.length > 0 ? { settings: plan.growth, rows } : null,
    failedSuites,
    apiPeakRssBytes: peaks.length > 0 ? Math.max(...peaks) : null,
  }
  const results: Results = { ...partial, targets: checkTargets(partial) }

  const table = markdown(results)
  mkdirSync(resultsDir, { recursive: true })
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const jsonFile = join(resultsDir, `${stamp}${mode === 'quick' ? '.quick' : ''}.json`)
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`)
  // Only a full run of every suite, all of them through, becomes the latest table.
  const latest = mode === 'full' && only === null && failedSuites.length === 0
  if (latest) writeFileSync(join(resultsDir, 'latest.md'), `${table}\n`)
  console.log(`\n${table}`)
  log(`results: ${jsonFile}${latest ? ' and bench/results/latest.md' : ''} (${Math.round(partial.wallSeconds)} s)`)
  if (failedSuites.length > 0) {
    log(`bench: ${failedSuites.length} suite(s) failed: ${failedSuites.map((f) => f.suite).join(', ')}`)
    process.exitCode = 1
  }
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
})
