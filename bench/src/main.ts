import { mkdirSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { ensureDataset, type Dataset } from './datasets.js'
import { growthRow, type GrowthRow, type GrowthSettings } from './growth.js'
import { layersSuite, type LayersResult } from './layers.js'
import { git, machine, versions } from './machine.js'
import { resultsDir } from './paths.js'
import { checkTargets, markdown, type Results } from './report.js'
import { throughputSuite, type Settings, type ThroughputResult } from './throughput.js'

const HELP = `npm run bench [-- --quick] [-- --only throughput|growth]

Measures the API against the limit (bare node:http, precomputed bytes), a naive peer
(node:http + JSON.stringify) and Fastify (response schemas), side by side at 32 connections,
with two diagnostics of the API (its store's reads answered from memory; another process
appending events beside it), and a single event's cost through the API's stack one layer at a
time; then the first and a deep page of sessions of 1,000, 100,000 and 1,000,000 events. Datasets are
seeded once into bench/.data/ and reused. Writes bench/results/<time>.json and
bench/results/latest.md, and prints the table.

  --quick    small sessions, short runs: a check that it all works (results not kept as latest)
  --only X   only the throughput suite (with the layers), or only the growth suite`

const PLANS = {
  full: {
    throughput: { rounds: 4, durationS: 3, warmupS: 1, connections: 32 } satisfies Settings,
    throughputData: { sessions: 10, events: 10_000 },
    growth: { rounds: 5, durationS: 2, warmupS: 1 } satisfies GrowthSettings,
    sizes: [1_000, 100_000, 1_000_000],
  },
  quick: {
    throughput: { rounds: 1, durationS: 1, warmupS: 0.5, connections: 32 } satisfies Settings,
    throughputData: { sessions: 10, events: 1_000 },
    growth: { rounds: 1, durationS: 1, warmupS: 0.5 } satisfies GrowthSettings,
    sizes: [1_000, 10_000],
  },
}

const log = (line: string) => process.stderr.write(`${line}\n`)

async function main() {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  })
  if (values.help) return console.log(HELP)
  if (values.only !== undefined && values.only !== 'throughput' && values.only !== 'growth') {
    throw new Error(`--only takes throughput or growth (got "${values.only}")`)
  }
  const mode = values.quick ? 'quick' : 'full'
  const plan = PLANS[mode]
  const started = new Date()
  const machineAtStart = machine()
  log(`bench (${mode}): ${machineAtStart.cpu}, ${machineAtStart.cores} cores, Node ${machineAtStart.node}, load average ${machineAtStart.loadavgAtStart[0]}`)

  // Seeding first, so that the measurements run on a machine that does nothing else of ours.
  const datasets: Dataset[] = []
  let throughputData: Dataset | undefined
  if (values.only !== 'growth') {
    throughputData = await ensureDataset({ name: `throughput-${plan.throughputData.sessions}x${plan.throughputData.events}`, instances: 1, ...plan.throughputData }, { fresh: true, log })
    datasets.push(throughputData)
  }
  const growthData: Dataset[] = []
  if (values.only !== 'throughput') {
    for (const events of plan.sizes) {
      const dataset = await ensureDataset({ name: `session-${events}`, instances: 1, sessions: 1, events }, { log })
      if (!dataset.seededNow) log(`reusing ${dataset.name} (${dataset.seeding.events.toLocaleString('en')} events, seeded ${dataset.seeding.at})`)
      growthData.push(dataset)
      datasets.push(dataset)
    }
  }

  let throughput: ThroughputResult | null = null
  let layers: LayersResult | null = null
  if (throughputData) {
    log(`throughput: ${plan.throughput.rounds} round(s) × ${plan.throughput.durationS} s per server and endpoint, ${plan.throughput.connections} connections`)
    throughput = await throughputSuite(throughputData, plan.throughput, log)
    log('layers: a single event through the API’s stack, one layer at a time')
    layers = await layersSuite(throughputData, plan.throughput, log)
  }
  const rows: GrowthRow[] = []
  if (growthData.length > 0) {
    log('cost as data grows: first and deep page, one connection')
    for (const dataset of growthData) rows.push(await growthRow(dataset, plan.growth, log))
  }

  const peaks = [throughput?.memory.api, ...rows.map((r) => r.memory)].filter((m) => m != null).map((m) => m.peakRssBytes)
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
    seeding: datasets.map((d) => ({ name: d.name, seededNow: d.seededNow, ...d.seeding })),
    throughput,
    layers,
    growth: rows.length > 0 ? { settings: plan.growth, rows } : null,
    apiPeakRssBytes: peaks.length > 0 ? Math.max(...peaks) : null,
  }
  const results: Results = { ...partial, targets: checkTargets(partial) }

  const table = markdown(results)
  mkdirSync(resultsDir, { recursive: true })
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const jsonFile = join(resultsDir, `${stamp}${mode === 'quick' ? '.quick' : ''}.json`)
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`)
  // Only a full run of both suites becomes the latest table.
  if (mode === 'full' && values.only === undefined) writeFileSync(join(resultsDir, 'latest.md'), `${table}\n`)
  console.log(`\n${table}`)
  log(`results: ${jsonFile}${mode === 'full' && values.only === undefined ? ' and bench/results/latest.md' : ''}`)
}

main().catch((error: unknown) => {
  console.error(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exit(1)
})
