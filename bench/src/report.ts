import type { Dataset } from './datasets.js'
import type { GrowthRow, GrowthSettings } from './growth.js'
import { LAYER_LABELS, LAYER_TARGETS, type LayersResult } from './layers.js'
import type { Machine } from './machine.js'
import type { Memory } from './processes.js'
import { ENDPOINT_LABELS, ENDPOINTS, TARGET_LABELS, TARGETS, type ThroughputResult } from './throughput.js'

// The results of a run, as JSON (everything, every round) and as the short Markdown table.

export interface TargetCheck {
  target: string
  goal: string
  /** The API with its default logging (info), then with LOG_LEVEL=warn where that applies. */
  value: string
  met: boolean
  valueWarn?: string
  metWarn?: boolean
}

export interface Results {
  format: 1
  mode: 'full' | 'quick'
  startedAt: string
  finishedAt: string
  wallSeconds: number
  command: string
  machine: Machine & { loadavgAtEnd: number[] }
  versions: Record<string, string | null>
  git: { commit: string | null; dirty: boolean | null }
  seeding: (Pick<Dataset, 'name' | 'seededNow'> & Dataset['seeding'])[]
  throughput: ThroughputResult | null
  /** Absent from results made before the layers suite existed. */
  layers?: LayersResult | null
  growth: { settings: GrowthSettings; rows: GrowthRow[] } | null
  /** Peak RSS of every API process of the run (the throughput one and one per growth dataset). */
  apiPeakRssBytes: number | null
  targets: TargetCheck[]
}

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : '–')
const ms = (n: number) => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '–')
const ratio = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–')
const mb = (m: Memory | null | undefined) => (m ? `${Math.round(m.peakRssBytes / 2 ** 20)} MB` : '–')
const mark = (met: boolean) => (met ? 'met' : '**not met**')

export function checkTargets(results: Omit<Results, 'targets'>): TargetCheck[] {
  const checks: TargetCheck[] = []
  const t = results.throughput
  if (t) {
    for (const endpoint of ENDPOINTS) {
      const { targets, ratios } = t.endpoints[endpoint]
      const share = endpoint === 'get' ? 0.6 : 0.5
      const pair = (target: string, goal: string, info: number, warn: number, met: (n: number) => boolean, show: (n: number) => string) =>
        checks.push({ target: `${endpoint}: ${target}`, goal, value: show(info), met: met(info), valueWarn: show(warn), metWarn: met(warn) })
      pair('throughput ÷ limit', `≥ ${share.toFixed(2)}`, ratios['api/limit']!, ratios['api_warn/limit']!, (n) => n >= share, ratio)
      pair('throughput ÷ naive peer', '≥ 1.50', ratios['api/naive']!, ratios['api_warn/naive']!, (n) => n >= 1.5, ratio)
      pair('throughput ÷ Fastify', '> 1.00', ratios['api/fastify']!, ratios['api_warn/fastify']!, (n) => n > 1, ratio)
      pair('p99 latency', '< 10 ms', targets.api.p99Ms, targets.api_warn.p99Ms, (n) => n < 10, (n) => `${ms(n)} ms`)
    }
  }
  const largest = results.growth?.rows.at(-1)
  if (largest) {
    checks.push({
      target: `deep page ÷ first page (p50) at ${int(largest.events)} events`,
      goal: largest.events >= 1_000_000 ? '≤ 1.30' : '≤ 1.30 (at 1M events; this run is smaller)',
      value: ratio(largest.deepOverFirst),
      met: largest.deepOverFirst <= 1.3,
    })
  }
  if (results.apiPeakRssBytes !== null) {
    checks.push({
      target: 'peak RSS of the API under load',
      goal: '< 200 MB',
      value: `${Math.round(results.apiPeakRssBytes / 2 ** 20)} MB`,
      met: results.apiPeakRssBytes < 200 * 2 ** 20,
    })
  }
  return checks
}

export function markdown(r: Results): string {
  const out: string[] = []
  const m = r.machine
  const commit = r.git.commit ? `\`${r.git.commit.slice(0, 10)}\`${r.git.dirty ? ' with uncommitted changes' : ''}` : 'unknown'
  out.push(`# Benchmark results${r.mode === 'quick' ? ' (quick check, not a measurement)' : ''}`, '')
  out.push(
    `${r.finishedAt.slice(0, 16).replace('T', ' ')} UTC, commit ${commit}, \`${r.command}\` in ${Math.round(r.wallSeconds)} s. ` +
      `${m.cpu}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, ${m.os}, Node ${m.node}; ` +
      `load average ${m.loadavgAtStart[0]} at the start, ${m.loadavgAtEnd[0]} at the end. ` +
      `Every server is its own process; autocannon runs in the driver process on the same cores.`,
    '',
  )

  const t = r.throughput
  if (t) {
    const s = t.settings
    out.push(`## Throughput and latency at ${s.connections} connections`, '')
    out.push(
      `Median of ${s.rounds} round(s) of ${s.durationS} s per server and endpoint, servers taking turns (after ${s.warmupS} s of warm-up each). ` +
        `Dataset: ${t.dataset.sessions} sessions of ${int(t.dataset.eventsPerSession)} events; a list page is about ${int(t.requests.list.bodyBytes / 1000)} KB, ` +
        `an event about ${int(t.requests.get.bodyBytes / 1000)} KB. Each ratio is the median of the rounds’ ratios, API and server measured side by side in the same round. ` +
        `“Req per CPU-s” divides by the CPU time each server process used (from /proc), which holds better than req/s when other work shares the machine.`,
      '',
    )
    out.push('| endpoint | server | req/s | p50 ms | p99 ms | errors | server CPU µs/req | API ÷ this: req/s | API ÷ this: req per CPU-s | API (warn) ÷ this: req/s |')
    out.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const endpoint of ENDPOINTS) {
      const { targets, ratios, cpuRatios } = t.endpoints[endpoint]
      for (const [i, target] of TARGETS.entries()) {
        const x = targets[target]
        const peer = target === 'limit' || target === 'naive' || target === 'fastify'
        const compared = peer || target === 'api_writing'
        out.push(
          `| ${i === 0 ? ENDPOINT_LABELS[endpoint] : ''} | ${TARGET_LABELS[target]} | ${int(x.rps)} | ${ms(x.p50Ms)} | ${ms(x.p99Ms)} | ${x.errors} | ${x.cpuUsPerReq === null ? '–' : int(x.cpuUsPerReq)} | ` +
            `${compared ? ratio(ratios[`api/${target}`]!) : ''} | ${compared ? ratio(cpuRatios[`api/${target}`] ?? NaN) : ''} | ${peer ? ratio(ratios[`api_warn/${target}`]!) : ''} |`,
        )
      }
    }
    out.push('', 'Where the API’s CPU time per request goes (server CPU µs per request, medians):', '')
    for (const endpoint of ENDPOINTS) {
      const x = t.endpoints[endpoint].targets
      const [api, memo, writing, limit] = [x.api.cpuUsPerReq, x.api_memo.cpuUsPerReq, x.api_writing.cpuUsPerReq, x.limit.cpuUsPerReq]
      if (api === null || memo === null || writing === null || limit === null) continue
      out.push(
        `- ${ENDPOINT_LABELS[endpoint]}: ${int(api)} µs in all; ${int(memo)} µs without the store (HTTP, Hono, validation, auth, ` +
          `serialisation, logging), so about ${int(api - memo)} µs (${Math.round((100 * (api - memo)) / api)}%) in the store; ` +
          `${int(writing)} µs (${writing >= api ? '+' : '−'}${Math.abs(Math.round((100 * (writing - api)) / api))}%) while the store is being written; the limit spends ${int(limit)} µs.`,
      )
    }
    const w = t.writes
    out.push(
      '',
      `The writer beside the API appended ${w.eventsPerCommit} events per commit to a session of its own, asked for ${w.commitsPerSecond} commits/s ` +
        `and made ${int(w.commitsPerS)} (median of the measured rounds); every commit is a change the API’s SQLite caches must tell apart from a change to what they hold.`,
    )
    const wire = Object.entries(t.wire).flatMap(([target, byEndpoint]) =>
      Object.entries(byEndpoint)
        .filter(([, verdict]) => verdict !== 'identical bytes')
        .map(([endpoint, verdict]) => `${target} on ${endpoint}: ${verdict}`),
    )
    out.push('', wire.length === 0 ? 'Every server answered with the API’s exact bytes.' : `Answers that differ from the API’s: ${wire.join('; ')}.`, '')
  }

  const l = r.layers
  if (l) {
    out.push('## A single event through the API’s stack, one layer at a time', '')
    out.push(
      `getSessionEvent at ${l.settings.connections} connections, median of ${l.settings.rounds} round(s) of ${l.settings.durationS} s, servers taking turns. ` +
        'Every layer but the API answers the precomputed bytes (bench/src/peers/layers.ts), so each row adds one part of the API to the row above it. ' +
        'A server slower than autocannon also pays more to wake it (bench/README.md), which is part of each step.',
      '',
    )
    out.push('| layer | req/s | p99 ms | server CPU µs/req | + µs over the row above |')
    out.push('|---|--:|--:|--:|--:|')
    let previous: number | null = null
    for (const target of LAYER_TARGETS) {
      const x = l.targets[target]
      const step = target === 'limit' || previous === null || x.cpuUsPerReq === null ? '' : int(x.cpuUsPerReq - previous)
      out.push(`| ${LAYER_LABELS[target]} | ${int(x.rps)} | ${ms(x.p99Ms)} | ${x.cpuUsPerReq === null ? '–' : int(x.cpuUsPerReq)} | ${step} |`)
      previous = x.cpuUsPerReq
    }
    out.push('')
  }

  out.push('## Targets', '')
  out.push('| target | goal | API (default logging) | | API (LOG_LEVEL=warn) | |')
  out.push('|---|---|--:|---|--:|---|')
  for (const c of r.targets) {
    out.push(`| ${c.target} | ${c.goal} | ${c.value} | ${mark(c.met)} | ${c.valueWarn ?? ''} | ${c.metWarn === undefined ? '' : mark(c.metWarn)} |`)
  }
  out.push('')

  if (r.growth) {
    const g = r.growth.settings
    out.push('## Cost as data grows (one connection)', '')
    out.push(
      `First page (\`limit=20\`) and a deep page (\`limit=20&after=\` the session’s middle event), one connection; median of ${g.rounds} round(s) of ${g.durationS} s each, ` +
        'the two pages alternating. The ratio is the median of the rounds’ p50 ratios; the same on the server’s CPU time per request beside it.',
      '',
    )
    out.push('| events in the session | first page: p50 / p99 ms | deep page: p50 / p99 ms | deep ÷ first: p50 | deep ÷ first: CPU per request | server CPU µs/req: first / deep | API peak RSS |')
    out.push('|--:|--:|--:|--:|--:|--:|--:|')
    for (const row of r.growth.rows) {
      const page = (p: GrowthRow['first']) => `${ms(p.p50Ms)} / ${ms(p.p99Ms)}`
      const cpu = (p: GrowthRow['first']) => (p.cpuUsPerReq === null ? '–' : int(p.cpuUsPerReq))
      out.push(
        `| ${int(row.events)} | ${page(row.first)} | ${page(row.deep)} | ${ratio(row.deepOverFirst)} | ${ratio(row.deepOverFirstCpu ?? NaN)} | ${cpu(row.first)} / ${cpu(row.deep)} | ${mb(row.memory)} |`,
      )
    }
    out.push('')
  }

  if (r.seeding.length > 0) {
    out.push('## Seeding (the store’s write path, through the API’s seed)', '')
    out.push('| dataset | events | seconds | events/s | when |')
    out.push('|---|--:|--:|--:|---|')
    for (const s of r.seeding) {
      out.push(`| ${s.name} | ${int(s.events)} | ${s.seconds.toFixed(1)} | ${int(s.eventsPerS)} | ${s.seededNow ? 'this run' : `reused, seeded ${s.at.slice(0, 16).replace('T', ' ')}`} |`)
    }
    out.push('')
  }

  if (t) {
    out.push('## Peak RSS under load (VmHWM)', '')
    out.push('| process | peak RSS |')
    out.push('|---|--:|')
    for (const target of TARGETS) out.push(`| ${TARGET_LABELS[target]} | ${mb(t.memory[target])} |`)
    out.push('')
  }
  return out.join('\n')
}
