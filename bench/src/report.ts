import type { Dataset } from './datasets.js'
import { FOLLOW_CONFIG_LABELS, type FollowResult } from './follow.js'
import type { GrowthRow, GrowthSettings } from './growth.js'
import { LAYER_LABELS, LAYER_TARGETS, type LayersResult } from './layers.js'
import type { Machine } from './machine.js'
import type { OverloadResult } from './overload.js'
import type { PgServer } from './pg.js'
import type { PruneResult } from './prune.js'
import type { Memory } from './processes.js'
import { SAME_WORK_LABELS, type SameWorkResult } from './same-work.js'
import type { StorageResult } from './storage.js'
import { ENDPOINT_LABELS, ENDPOINTS, TARGET_LABELS, TARGETS, type ThroughputResult } from './throughput.js'
import { OTLP_TARGET_LABELS, OTLP_TARGETS, type OtlpBenchResult } from './otlp.js'
import { WRITE_LAYER_LABELS, WRITE_LAYERS, WRITE_TARGET_LABELS, WRITE_TARGETS, type WritesResult } from './writes.js'

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
  /** The PostgreSQL server the run used (null: none to reach); absent from results made before it was measured. */
  postgres?: (PgServer & { url: string }) | null
  sameWork?: SameWorkResult | null
  writes?: WritesResult | null
  /** Absent from results made before the otlp suite existed. */
  otlp?: OtlpBenchResult | null
  follow?: FollowResult | null
  overload?: OverloadResult | null
  storage?: StorageResult | null
  /** Absent from results made before the prune suite existed. */
  prune?: PruneResult | null
  /** Suites that threw: the run goes on without them, and ends with a failure. */
  failedSuites?: { suite: string; message: string }[]
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
const kb = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1000).toFixed(1)} KB` : '–')
const pct = (share: number) => (Number.isFinite(share) ? `${(100 * share).toFixed(1)}%` : '–')
/** A count of failures, with what they were: `87 (503: 87)`. */
const failed = (errors: number, failures: Record<string, number> | undefined) =>
  errors === 0 || !failures
    ? String(errors)
    : `${errors} (${Object.entries(failures)
        .map(([k, n]) => `${k}: ${int(n)}`)
        .join(', ')})`
const storeName = (store: string) => (store === 'sqlite' ? 'SQLite' : 'PostgreSQL')
/** Bytes of a file, in MB (10⁶). */
const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`

export function checkTargets(results: Omit<Results, 'targets'>): TargetCheck[] {
  const checks: TargetCheck[] = []
  const t = results.throughput
  if (t) {
    for (const endpoint of ENDPOINTS) {
      const { targets, ratios } = t.endpoints[endpoint]
      const share = endpoint === 'get' ? 0.6 : 0.5
      const pair = (
        target: string,
        goal: string,
        info: number,
        warn: number,
        met: (n: number) => boolean,
        show: (n: number) => string,
      ) =>
        checks.push({
          target: `${endpoint}: ${target}`,
          goal,
          value: show(info),
          met: met(info),
          valueWarn: show(warn),
          metWarn: met(warn),
        })
      pair(
        'throughput ÷ limit',
        `≥ ${share.toFixed(2)}`,
        ratios['api/limit']!,
        ratios['api_warn/limit']!,
        (n) => n >= share,
        ratio,
      )
      pair('throughput ÷ naive peer', '≥ 1.50', ratios['api/naive']!, ratios['api_warn/naive']!, (n) => n >= 1.5, ratio)
      pair('throughput ÷ Fastify', '> 1.00', ratios['api/fastify']!, ratios['api_warn/fastify']!, (n) => n > 1, ratio)
      pair(
        'p99 latency',
        '< 10 ms',
        targets.api.p99Ms,
        targets.api_warn.p99Ms,
        (n) => n < 10,
        (n) => `${ms(n)} ms`,
      )
    }
  }
  const sw = results.sameWork
  if (sw) {
    for (const endpoint of ['list', 'get'] as const) {
      for (const store of ['sqlite', 'postgres'] as const) {
        const r = sw.endpoints[endpoint].ratios[`api_${store}/peer_${store}`]
        if (r === undefined) continue
        const cpu = sw.endpoints[endpoint].cpuRatios[`api_${store}/peer_${store}`]
        checks.push({
          target: `${endpoint}: API ÷ same-work peer (Fastify + Kysely) on ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}, req/s (on CPU per request: ${ratio(cpu ?? NaN)})`,
          goal: '≥ 2.00',
          value: ratio(r),
          met: r >= 2,
        })
      }
    }
    for (const endpoint of ENDPOINTS) {
      const r = sw.endpoints[endpoint].ratios['api_postgres/api_sqlite']
      if (r === undefined) continue
      checks.push({
        target: `${endpoint}: API on ${sw.postgresOn === 'pglite' ? 'PGlite (no PostgreSQL server)' : 'PostgreSQL'} ÷ API on SQLite, req/s`,
        goal: '≥ 0.50',
        value: ratio(r),
        met: r >= 0.5,
      })
    }
  }
  const w = results.writes
  const at100 = w?.batches['100']
  if (at100) {
    for (const [store, goal] of [
      ['sqlite', 200_000],
      ['postgres', 100_000],
    ] as const) {
      const x = at100.targets[`api_${store}`]
      if (!x) continue
      const name = store === 'sqlite' ? 'SQLite' : 'PostgreSQL'
      checks.push({
        target: `writes on ${name}, 100 lines a request: lines/s`,
        goal: `≥ ${int(goal)}`,
        value: int(x.linesPerS),
        met: x.linesPerS >= goal,
      })
      const r = at100.ratios[`api_${store}/limit`]!
      checks.push({
        target: `writes on ${name}, 100 lines a request: API ÷ write limit`,
        goal: '≥ 0.30',
        value: ratio(r),
        met: r >= 0.3,
      })
      // Issue 19's: with an Idempotency-Key on every request, as the client and the CLI send them.
      const keyed = at100.targets[`api_${store}_keyed`]
      if (keyed) {
        checks.push({
          target: `writes on ${name}, 100 lines a request, an Idempotency-Key on each: lines/s`,
          goal: `≥ ${int(goal)}`,
          value: int(keyed.linesPerS),
          met: keyed.linesPerS >= goal,
        })
        const k = at100.ratios[`api_${store}_keyed/api_${store}`] ?? NaN
        checks.push({
          target: `writes on ${name}, 100 lines a request: keyed ÷ unkeyed, lines/s`,
          goal: '≥ 0.90',
          value: ratio(k),
          met: k >= 0.9,
        })
      }
      const alone = at100.ratios[`api_${store}/store_${store}`] ?? NaN
      checks.push({
        target: `writes on ${name}, 100 lines a request: API ÷ the store alone`,
        goal: '≥ 0.50',
        value: ratio(alone),
        met: alone >= 0.5,
      })
      const bytes = w?.bytesPerEvent?.[`api_${store}`]?.['100']
      const keyedBytes = w?.bytesPerEvent?.[`api_${store}_keyed`]?.['100']
      if (bytes && keyedBytes) {
        const b = keyedBytes.perEvent / bytes.perEvent
        checks.push({
          target: `bytes on disk per event on ${name}, 100 lines a request: keyed ÷ unkeyed`,
          goal: '≤ 1.05',
          value: ratio(b),
          met: b <= 1.05,
        })
      }
    }
  }
  // Issue 19's: a small event (the seed's, 1 to 4 lines) on PostgreSQL, at 10⁶ events.
  const compacted = results.storage?.postgresCompacted
  if (compacted) {
    const written = results.storage?.postgres
    checks.push({
      target:
        'bytes on disk per small event on PostgreSQL, 10⁶ events, once the pruner has compacted their partition' +
        (written ? ` (as written: ${int(written.bytesPerEvent.total)})` : ''),
      goal: '≤ 600',
      value: int(compacted.bytesPerEvent.total),
      met: compacted.bytesPerEvent.total <= 600,
    })
  }
  const f = results.follow
  if (f) {
    const most = Math.max(...f.settings.followers)
    const limit = f.rows.find((r) => r.config === 'limit' && r.followers === most)
    for (const row of f.rows.filter((r) => r.followers === most && r.config !== 'limit')) {
      const goal = row.config === 'postgres_two' ? 50 : 20
      const complete = row.delivered === row.expected
      checks.push({
        target:
          `follow: p99 from the 201 to the follower, ${int(most)} followers, ${FOLLOW_CONFIG_LABELS[row.config]}` +
          (limit ? ` (the limit, bare node:http: ${ms(limit.p99Ms)} ms)` : ''),
        goal: `< ${goal} ms${most < 1000 ? ' (at 1,000 followers; this run has fewer)' : ''}`,
        value: `${ms(row.p99Ms)} ms${complete ? '' : ` (${int(row.delivered)} of ${int(row.expected)} delivered)`}`,
        met: row.p99Ms < goal && complete,
      })
    }
    for (const m of f.memory) {
      const worst = Math.max(m.heapBytesPerStream, m.rssBytesPerStream)
      checks.push({
        target: `follow: the API's memory per idle follower (${m.config === 'sqlite' ? 'SQLite' : 'PostgreSQL'}${m.config === 'postgres_two' ? ', the following process' : ''}), heap / RSS`,
        goal: '< 20 KB',
        value: `${kb(m.heapBytesPerStream)} / ${kb(m.rssBytesPerStream)}`,
        met: worst < 20_000,
      })
    }
    // Runs of before the idle case have none.
    for (const m of f.idle ?? []) {
      const worst = Math.max(m.heapBytesPerStream, m.rssBytesPerStream)
      checks.push({
        target: `follow: ${int(m.streams)} idle followers of ${int(m.sessions)} sessions on one process (SQLite): memory per follower, heap / RSS`,
        goal: `< 20 KB${m.streams < 10_000 ? ' (at 10,000 followers; this run has fewer)' : ''}`,
        value: `${kb(m.heapBytesPerStream)} / ${kb(m.rssBytesPerStream)}`,
        met: worst < 20_000 && m.failedToOpen === 0,
      })
    }
  }
  const o = results.overload
  if (o) {
    // Issue 20's goals: every request answered, the slowest accepted one under a second.
    const limit = o.rows.find((row) => row.store === 'limit')
    for (const row of o.rows) {
      if (row.store === 'limit') continue
      const answered = row.connectionErrors === 0 && row.timeouts === 0 && Object.keys(row.otherStatuses).length === 0
      checks.push({
        target: `overload (${storeName(row.store)}, ${int(o.settings.connections)} connections): every request answered, 200 or 503`,
        goal: 'no errors, timeouts or other statuses',
        value: answered
          ? `${int(row.responses)} answered`
          : `${int(row.connectionErrors)} errors, ${int(row.timeouts)} timeouts`,
        met: answered,
      })
      if (row.server) {
        checks.push({
          target: `overload (${storeName(row.store)}): the slowest accepted request, the API's own time (its access log)`,
          goal: '< 1 s',
          value: `${ms(row.server.maxMs)} ms`,
          met: row.server.maxMs < 1000,
        })
      }
      checks.push({
        target:
          `overload (${storeName(row.store)}): the slowest accepted request as the driver saw it` +
          (limit ? ` (bare node:http with the same pages' bytes: ${ms(limit.maxMs)} ms)` : ''),
        goal: '< 1 s',
        value: `${ms(row.maxMs)} ms`,
        met: row.maxMs < 1000,
      })
    }
  }
  const p = results.prune
  if (p) {
    // Issue 19's goals, at a million expired events.
    const fewer = p.settings.events < 1_000_000 ? ' (at 1,000,000 events; this run has fewer)' : ''
    for (const row of p.rows) {
      const goal = row.store === 'postgres' ? 1_000_000 : 50_000
      checks.push({
        target: `prune (${storeName(row.store)}): events/s alone`,
        goal: `≥ ${int(goal)}${fewer}`,
        value: int(row.alone.eventsPerSecond),
        met: row.alone.eventsPerSecond >= goal,
      })
      const a = row.appending.appends
      if (a) {
        checks.push({
          target: `prune (${storeName(row.store)}): append p99 during ÷ without`,
          goal: `≤ 2.00${fewer}`,
          value: `${ratio(a.ratio)} (${ms(a.p99DuringMs)} / ${ms(a.p99WithoutMs)} ms, ${int(a.during)} / ${int(a.without)} appends)`,
          met: a.ratio <= 2,
        })
      }
      const file = row.alone.fileBytes
      if (file) {
        checks.push({
          target: `prune (${storeName(row.store)}): the file shrinks`,
          goal: 'after < before',
          value: `${megabytes(file.before)} → ${megabytes(file.after)}`,
          met: file.after < file.before,
        })
      }
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
  const commit = r.git.commit
    ? `\`${r.git.commit.slice(0, 10)}\`${r.git.dirty ? ' with uncommitted changes' : ''}`
    : 'unknown'
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
    out.push(
      '| endpoint | server | req/s | p50 ms | p99 ms | errors | server CPU µs/req | API ÷ this: req/s | API ÷ this: req per CPU-s | API (warn) ÷ this: req/s |',
    )
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
      const [api, memo, writing, limit] = [
        x.api.cpuUsPerReq,
        x.api_memo.cpuUsPerReq,
        x.api_writing.cpuUsPerReq,
        x.limit.cpuUsPerReq,
      ]
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
    out.push(
      '',
      wire.length === 0
        ? 'Every server answered with the API’s exact bytes.'
        : `Answers that differ from the API’s: ${wire.join('; ')}.`,
      '',
    )
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
      const step =
        target === 'limit' || previous === null || x.cpuUsPerReq === null ? '' : int(x.cpuUsPerReq - previous)
      out.push(
        `| ${LAYER_LABELS[target]} | ${int(x.rps)} | ${ms(x.p99Ms)} | ${x.cpuUsPerReq === null ? '–' : int(x.cpuUsPerReq)} | ${step} |`,
      )
      previous = x.cpuUsPerReq
    }
    out.push('')
  }

  const pgNote = r.postgres
    ? `PostgreSQL: ${r.postgres.version.split(' on ')[0]} on this machine (${r.postgres.url}; shared_buffers ${r.postgres.settings.shared_buffers}, synchronous_commit ${r.postgres.settings.synchronous_commit}), shared with other work on it; each dataset in a bench_* schema of its own.`
    : r.postgres === null
      ? 'PostgreSQL: no server to reach, so its rows are left out.'
      : ''

  const sw = r.sameWork
  if (sw) {
    const s = sw.settings
    out.push('## The same work, written as a user would (Fastify + Kysely), and reads on PostgreSQL', '')
    out.push(
      `The peer (bench/src/peers/kysely.ts) does what the API does for each request, as a user would write it with Fastify and Kysely over the same database, nothing kept between requests: ` +
        'the key looked up by its sha256 hash (revoked, expired, scope), the session checked against the key’s instance, the spec’s parameter schemas, the same filters and keyset pagination with Metorial’s cursors, ' +
        `a page’s events then their runs in a second query, a single event in one joined query. ` +
        (sw.serialiser.cpuUsPerReq.list.json === null
          ? `Its serialiser, as given (not measured in this run): list ${sw.serialiser.list === 'json' ? 'JSON.stringify' : 'the response schema'}, get ${sw.serialiser.get === 'json' ? 'JSON.stringify' : 'the response schema'}. `
          : `Its serialiser is the faster here, chosen per operation by CPU time per request on SQLite: ` +
            `list ${sw.serialiser.list === 'json' ? 'JSON.stringify' : 'the response schema'} (${int(sw.serialiser.cpuUsPerReq.list.json ?? NaN)} µs with JSON.stringify, ${int(sw.serialiser.cpuUsPerReq.list.schema ?? NaN)} with the schema), ` +
            `get ${sw.serialiser.get === 'json' ? 'JSON.stringify' : 'the response schema'} (${int(sw.serialiser.cpuUsPerReq.get.json ?? NaN)} / ${int(sw.serialiser.cpuUsPerReq.get.schema ?? NaN)}). `) +
        `${s.connections} connections, median of ${s.rounds} round(s) of ${s.durationS} s, the four servers taking turns; each store has its own copy of the dataset (the same shape, ids of its own). ` +
        'On PostgreSQL, “server CPU” adds the CPU time of the server’s backends that serve the process’s connections (by application_name) to the process’s own.',
      '',
    )
    if (sw.postgresOn === 'pglite') {
      out.push(
        '**No PostgreSQL server was reached: the PostgreSQL rows are the API on PGlite (PostgreSQL in WebAssembly, in the API’s own process, seeded there with the same shape), and there is no peer on it.**',
        '',
      )
    } else if (pgNote) out.push(pgNote, '')
    out.push(
      '| endpoint | server | req/s | p50 ms | p99 ms | errors | server CPU µs/req | of which PostgreSQL | API ÷ peer: req/s | API ÷ peer: req per CPU-s |',
    )
    out.push('|---|---|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const endpoint of ENDPOINTS) {
      const e = sw.endpoints[endpoint]
      let first = true
      for (const [target, x] of Object.entries(e.targets)) {
        if (!x) continue
        const api = target.startsWith('api_') && !target.endsWith('_keyed')
        const store = target.includes('sqlite') ? 'sqlite' : 'postgres'
        const key = `api_${store}/peer_${store}`
        out.push(
          `| ${first ? ENDPOINT_LABELS[endpoint] : ''} | ${sw.postgresOn === 'pglite' && target === 'api_postgres' ? 'API on PGlite (no PostgreSQL server)' : SAME_WORK_LABELS[target as keyof typeof SAME_WORK_LABELS]} | ${int(x.rps)} | ${ms(x.p50Ms)} | ${ms(x.p99Ms)} | ${x.errors} | ${x.cpuUsPerReq === null ? '–' : int(x.cpuUsPerReq)} | ` +
            `${x.backendCpuUsPerReq === null ? '' : int(x.backendCpuUsPerReq)} | ${api && e.ratios[key] !== undefined ? ratio(e.ratios[key]) : ''} | ${api && e.cpuRatios[key] !== undefined ? ratio(e.cpuRatios[key] ?? NaN) : ''} |`,
        )
        first = false
      }
    }
    const wire = Object.entries(sw.wire).flatMap(([store, checks]) =>
      checks.filter((c) => c.verdict !== 'identical bytes').map((c) => `${store} ${c.path}: ${c.verdict}`),
    )
    const checked = Object.values(sw.wire).reduce((n, c) => n + c.length, 0)
    out.push(
      '',
      wire.length === 0
        ? `The peer answered the API’s exact bytes on all ${checked} requests checked (${Object.keys(sw.wire).length === 2 ? 'on both stores' : `on ${Object.keys(sw.wire).map(storeName).join(', ')}`}: first page, limit=100, each filter, after, before, order=desc, a cursor, past the end, single events).`
        : `Answers of the peer that differ from the API’s: ${wire.join('; ')}.`,
      '',
    )
    if (Object.values(sw.endpoints).some((e) => e.ratios['api_postgres/api_sqlite'] !== undefined)) {
      const pg = sw.postgresOn === 'pglite' ? 'PGlite' : 'PostgreSQL'
      out.push(
        `### Reads on ${sw.postgresOn === 'pglite' ? 'PGlite (no PostgreSQL server)' : 'PostgreSQL'} against SQLite (the API, side by side in the rounds above)`,
        '',
      )
      out.push(
        `| endpoint | SQLite req/s | ${pg} req/s | ${pg} ÷ SQLite: req/s | … per CPU-s | p99 ms SQLite / ${pg} | CPU µs/req on ${pg}: the API / its backends | on SQLite |`,
      )
      out.push('|---|--:|--:|--:|--:|--:|--:|--:|')
      for (const endpoint of ENDPOINTS) {
        const e = sw.endpoints[endpoint]
        const [a, b] = [e.targets.api_sqlite, e.targets.api_postgres]
        if (!a || !b) continue
        const own = b.cpuUsPerReq !== null && b.backendCpuUsPerReq !== null ? b.cpuUsPerReq - b.backendCpuUsPerReq : NaN
        out.push(
          `| ${ENDPOINT_LABELS[endpoint]} | ${int(a.rps)} | ${int(b.rps)} | ${ratio(e.ratios['api_postgres/api_sqlite']!)} | ${ratio(e.cpuRatios['api_postgres/api_sqlite'] ?? NaN)} | ${ms(a.p99Ms)} / ${ms(b.p99Ms)} | ` +
            `${int(own)} / ${int(b.backendCpuUsPerReq ?? NaN)} | ${int(a.cpuUsPerReq ?? NaN)} |`,
        )
      }
      out.push('')
    }
    const ip = sw.inProcess
    if (ip && Object.keys(ip).length > 0) {
      const names = [...new Set(Object.values(ip).flatMap((x) => Object.keys(x ?? {})))]
      const stores = Object.keys(ip) as ('sqlite' | 'postgres')[]
      out.push(
        'The store’s reads of a first page, in process (the driver’s), one call after another through the API’s caching reader: CPU µs per call of this process (on PostgreSQL, the client’s side of the query; the server’s is not in it), and wall µs.',
        '',
      )
      out.push(`| read | ${stores.map((x) => `${storeName(x)}: CPU / wall µs`).join(' | ')} |`)
      out.push(`|---|${stores.map(() => '--:').join('|')}|`)
      for (const name of names) {
        out.push(
          `| ${name} | ${stores.map((x) => (ip[x]?.[name] ? `${int(ip[x]![name]!.cpuUs)} / ${int(ip[x]![name]!.wallUs)}` : '–')).join(' | ')} |`,
        )
      }
      out.push('')
    }
  }

  const otlp = r.otlp
  if (otlp) {
    const s = otlp.settings
    out.push('## OTLP intake: log records per second through POST /v1/logs', '')
    out.push(
      `${otlp.records} records (or lines) a request, the writes suite's lines; ${s.connections} connections over 8 sessions (8 service instances for OTLP, each a session and run of its own), on a fresh store; median of ${s.rounds} round(s) of ${s.durationS} s, the targets taking turns. ` +
        `Every OTLP request is a new body and keyed by its hash, as an exporter's retry must be stored once. Bodies: ${OTLP_TARGETS.map((t) => `${t} ${kb(otlp.bodyBytes[t])}`).join(', ')}. Goal: protobuf intake ≥ the JSON append's lines/s. The last column is against the JSON append of the very lines the records are stored as (with their time and level), keyed as OTLP is: the intake's own cost.`,
      '',
    )
    out.push('| store | target | lines/s | p99 ms | errors | ÷ JSON append | ÷ the same lines, keyed |')
    out.push('|---|---|--:|--:|--:|--:|--:|')
    for (const [store, x] of Object.entries(otlp.stores)) {
      if (!x) continue
      for (const target of OTLP_TARGETS) {
        const t = x.targets[target]
        const vs = x.ratios[`${target}/append_json`]
        const vsSame = x.ratios[`${target}/append_json_as_records`]
        out.push(
          `| ${storeName(store)} | ${OTLP_TARGET_LABELS[target]} | ${int(t.linesPerS)} | ${ms(t.p99Ms)} | ${failed(t.errors, t.failures)} | ${vs === undefined ? '' : ratio(vs)} | ${vsSame === undefined ? '' : ratio(vsSame)} |`,
        )
      }
    }
    out.push('')
  }

  const w = r.writes
  if (w) {
    const s = w.settings
    out.push('## Writes: log lines appended per second', '')
    out.push(
      `POST /sessions/{id}/events with ${s.batches.map(int).join(', ')} lines a request (lines of 40–70 characters; a request of 100 lines is about ${int((w.bodyBytes['100'] ?? NaN) / 1000)} KB), ` +
        `${s.connections} connections, each appending to ${w.sessions} sessions (one active run each) in turn, on a fresh store; median of ${s.rounds} round(s) of ${s.durationS} s, the targets taking turns. ` +
        'The write limit is bare node:http that reads the body, parses it and answers the API’s 201 bytes without storing anything; the store alone is StoreWriter.appendEvent in a loop in one process, one call after another, ' +
        'its CPU its own (on PostgreSQL, without the server’s). CPU per line: the server process, with its PostgreSQL backends where it has them.',
      '',
    )
    out.push(
      '| lines a request | target | lines/s | requests/s | p50 ms | p99 ms | errors | CPU µs per line | of which PostgreSQL | API ÷ write limit | API ÷ the store alone |',
    )
    out.push('|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const lines of s.batches) {
      const b = w.batches[lines]
      if (!b) continue
      let first = true
      for (const target of WRITE_TARGETS) {
        const x = b.targets[target]
        if (!x) continue
        const api = target.startsWith('api_') && !target.endsWith('_keyed')
        const store = target.includes('sqlite') ? 'sqlite' : 'postgres'
        out.push(
          `| ${first ? int(lines) : ''} | ${WRITE_TARGET_LABELS[target]} | ${int(x.linesPerS)} | ${int(x.requestsPerS)} | ${x.p50Ms === null ? '' : ms(x.p50Ms)} | ${x.p99Ms === null ? '' : ms(x.p99Ms)} | ${failed(x.errors, x.failures)} | ` +
            `${x.cpuUsPerLine === null ? '–' : x.cpuUsPerLine < 10 ? x.cpuUsPerLine.toFixed(1) : int(x.cpuUsPerLine)} | ${x.backendCpuUsPerLine === null ? '' : x.backendCpuUsPerLine < 10 ? x.backendCpuUsPerLine.toFixed(1) : int(x.backendCpuUsPerLine)} | ` +
            `${api ? ratio(b.ratios[`api_${store}/limit`] ?? NaN) : ''} | ${api ? ratio(b.ratios[`api_${store}/store_${store}`] ?? NaN) : ''} |`,
        )
        first = false
      }
    }
    out.push('')
    const keyedRows = (['sqlite', 'postgres'] as const).filter((store) => w.bytesPerEvent?.[`api_${store}_keyed`])
    if (keyedRows.length > 0) {
      out.push(
        'With and without an Idempotency-Key on every request (each on a store of its own): keyed ÷ unkeyed lines/s (median of the rounds’ ratios), and bytes on disk per event: what each store (every table and index) grew by over the measured rounds of that many lines a request, over the events they wrote.',
        '',
      )
      out.push(
        '| store | lines a request | keyed ÷ unkeyed, lines/s | bytes per event, unkeyed | bytes per event, keyed | keyed ÷ unkeyed, bytes |',
      )
      out.push('|---|--:|--:|--:|--:|--:|')
      for (const store of keyedRows) {
        for (const lines of s.batches) {
          const plain = w.bytesPerEvent[`api_${store}`]?.[lines]?.perEvent ?? NaN
          const keyed = w.bytesPerEvent[`api_${store}_keyed`]?.[lines]?.perEvent ?? NaN
          const r = w.batches[lines]?.ratios[`api_${store}_keyed/api_${store}`]
          out.push(
            `| ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'} | ${int(lines)} | ${ratio(r ?? NaN)} | ${int(plain)} | ${int(keyed)} | ${ratio(keyed / plain)} |`,
          )
        }
      }
      out.push('')
    }
    if (w.layers) {
      const l = w.layers
      out.push(
        `Where an append’s CPU time goes: appends of ${l.lines} lines through the API’s stack one layer at a time (bench/src/peers/layers.ts; every layer but the API answers the API’s 201 bytes without storing), ` +
          `on SQLite, the same connections and bodies, median of ${s.rounds} round(s) of ${s.durationS} s, the layers taking turns.`,
        '',
      )
      out.push('| layer | requests/s | lines/s | p99 ms | server CPU µs/req | + µs over the row above |')
      out.push('|---|--:|--:|--:|--:|--:|')
      let previous: number | null = null
      for (const layer of WRITE_LAYERS) {
        const x = l.targets[layer]
        const step =
          layer === 'limit' || previous === null || x.cpuUsPerReq === null ? '' : int(x.cpuUsPerReq - previous)
        out.push(
          `| ${WRITE_LAYER_LABELS[layer]} | ${int(x.requestsPerS)} | ${int(x.requestsPerS * l.lines)} | ${ms(x.p99Ms)} | ${int(x.cpuUsPerReq ?? NaN)} | ${step} |`,
        )
        previous = x.cpuUsPerReq
      }
      out.push('')
    }
    if (w.skipped.length > 0) out.push(`Left out: ${w.skipped.join('; ')}.`, '')
  }

  const f = r.follow
  if (f) {
    const s = f.settings
    out.push('## Following: from an append’s 201 to the event at the follower', '')
    out.push(
      `One session, followed by N streams (GET /sessions/{id}/events/stream, each its own connection, all in one process of their own); the driver appends one event of one line every ${s.intervalMs} ms, ${s.appends} times (after ${s.warmupAppends} not counted), ` +
        'and takes the time the 201’s head arrives; each stream’s time is when its bytes arrive. Both clocks are CLOCK_MONOTONIC, the machine’s one clock. A negative time: the follower had the event before the appender had its 201. ' +
        'Percentiles over every (event, follower) pair.',
      '',
    )
    out.push(
      '| where | followers | p50 ms | p99 ms | slowest ms | delivered | append p50 / p99 ms | opening the streams ms |',
    )
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|')
    for (const row of f.rows) {
      out.push(
        `| ${FOLLOW_CONFIG_LABELS[row.config]} | ${int(row.followers)}${row.failedToOpen ? ` (${int(row.failedToOpen)} did not open)` : ''} | ${ms(row.p50Ms)} | ${ms(row.p99Ms)} | ${ms(row.maxMs)} | ${int(row.delivered)} of ${int(row.expected)} | ${ms(row.appendP50Ms)} / ${ms(row.appendP99Ms)}${row.appendsRefused ? ` (${int(row.appendsRefused)} refused with 503 first)` : ''} | ${int(row.openMs)} |`,
      )
    }
    out.push('')
    if (f.memory.length > 0) {
      out.push(
        'The API’s memory per idle follower: its RSS and its heap after a GC (process.memoryUsage(), asked over IPC from a module loaded with --import) with the streams open and idle, less the same before they opened, ÷ the streams.',
        '',
      )
      out.push('| where | idle streams | heap per stream | RSS per stream | heap before → after | RSS before → after |')
      out.push('|---|--:|--:|--:|--:|--:|')
      for (const m of f.memory) {
        out.push(
          `| ${FOLLOW_CONFIG_LABELS[m.config]}${m.config === 'postgres_two' ? ' (the following process)' : ''} | ${int(m.streams)} | ${kb(m.heapBytesPerStream)} | ${kb(m.rssBytesPerStream)} | ` +
            `${(m.before.heapUsed / 2 ** 20).toFixed(1)} → ${(m.after.heapUsed / 2 ** 20).toFixed(1)} MB | ${(m.before.rss / 2 ** 20).toFixed(1)} → ${(m.after.rss / 2 ** 20).toFixed(1)} MB |`,
        )
      }
      out.push('')
    }
    if (f.idle?.length) {
      out.push(
        'Many idle followers on one API process (SQLite): the streams of many sessions open and idle, the API’s memory per stream as above; then appends to one of the sessions, from the 201 to each of its followers.',
        '',
      )
      out.push(
        '| sessions | idle streams | opening them s | heap per stream | RSS per stream | heap before → after | RSS before → after | one session’s followers: p50 / p99 ms | delivered |',
      )
      out.push('|--:|--:|--:|--:|--:|--:|--:|--:|--:|')
      for (const m of f.idle) {
        out.push(
          `| ${int(m.sessions)} | ${int(m.streams)}${m.failedToOpen ? ` (${int(m.failedToOpen)} did not open)` : ''} | ${(m.openMs / 1000).toFixed(1)} | ${kb(m.heapBytesPerStream)} | ${kb(m.rssBytesPerStream)} | ` +
            `${(m.before.heapUsed / 2 ** 20).toFixed(1)} → ${(m.after.heapUsed / 2 ** 20).toFixed(1)} MB | ${(m.before.rss / 2 ** 20).toFixed(1)} → ${(m.after.rss / 2 ** 20).toFixed(1)} MB | ` +
            `${ms(m.p50Ms)} / ${ms(m.p99Ms)} | ${int(m.delivered)} of ${int(m.expected)} |`,
        )
      }
      out.push('')
    }
    if (f.skipped.length > 0) out.push(`Left out: ${f.skipped.join('; ')}.`, '')
  }

  const o = r.overload
  if (o) {
    const s = o.settings
    out.push(`## Overload: ${int(s.connections)} connections reading pages of ${s.limit} events`, '')
    out.push(
      `${s.durationS} s per store, after 1 s at 32 connections; the first page and the page after the middle event of every session, in turn. The API as it runs by default (access log on, a PostgreSQL pool of 10), ` +
        'without its rate limit (every request here has one key, which the limit would refuse at once). The driver (bench/src/post-load.ts, which counts an answer’s bytes rather than parsing them) waits up to 60 s for an answer. Latencies are of the 2xx answers (the accepted requests), from the request’s write to the answer’s last byte read by the driver, ' +
        'which shares the two cores with the server: with this many connections and pages this large the driver is a queue of its own. The API’s own time is its access log’s duration_ms (from its first middleware to its answer) of the 2xx answers of the measured run; ' +
        'the limit is bare node:http answering the same pages’ exact bytes under the same load, after both stores: its slowest answer is what the driver alone makes of the load.',
      '',
    )
    out.push(
      '| server | req/s (2xx) | p50 ms | p99 ms | slowest accepted ms | the API’s own time: p99 / slowest ms | answers and failures | 503s | share of 503s | other statuses | connection errors | timeouts | server CPU µs/req | peak RSS |',
    )
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|')
    for (const row of o.rows) {
      const other = Object.entries(row.otherStatuses)
        .map(([code, n]) => `${code}: ${int(n)}`)
        .join(', ')
      out.push(
        `| ${row.store === 'limit' ? 'limit: bare node:http, the same pages’ bytes' : `the API on ${storeName(row.store)}`} | ${int(row.rps)} | ${ms(row.p50Ms)} | ${ms(row.p99Ms)} | ${ms(row.maxMs)} | ${row.server ? `${ms(row.server.p99Ms)} / ${ms(row.server.maxMs)}` : ''} | ${int(row.responses)} | ${int(row.status503)} | ${pct(row.share503)} | ${other || 'none'} | ${int(row.connectionErrors)} | ${int(row.timeouts)} | ${int(row.cpuUsPerReq ?? NaN)} | ${mb(row.memory)} |`,
      )
    }
    out.push('')
    if (o.skipped.length > 0) out.push(`Left out: ${o.skipped.join('; ')}.`, '')
  }

  if (r.failedSuites && r.failedSuites.length > 0) {
    out.push('## Suites that failed', '')
    for (const f of r.failedSuites) out.push(`- **${f.suite}**: ${f.message.split('\n')[0]}`)
    out.push('')
  }

  out.push('## Targets', '')
  out.push('| target | goal | API (default logging) | | API (LOG_LEVEL=warn) | |')
  out.push('|---|---|--:|---|--:|---|')
  for (const c of r.targets) {
    out.push(
      `| ${c.target} | ${c.goal} | ${c.value} | ${mark(c.met)} | ${c.valueWarn ?? ''} | ${c.metWarn === undefined ? '' : mark(c.metWarn)} |`,
    )
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
    out.push(
      '| events in the session | first page: p50 / p99 ms | deep page: p50 / p99 ms | deep ÷ first: p50 | deep ÷ first: CPU per request | server CPU µs/req: first / deep | API peak RSS |',
    )
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

  const st = r.storage
  if (st) {
    out.push('## Storage: bytes per event on disk', '')
    out.push(
      'The events table and each of its indexes, from SQLite’s dbstat (pages of each b-tree) and PostgreSQL’s pg_table_size (heap, TOAST, free space and visibility maps, after VACUUM ANALYZE) and pg_relation_size of each index, ÷ the events in the table.',
      '',
    )
    out.push(
      '| store | dataset | events | table B/event | indexes B/event | total B/event | log lines as stored, B/event | each index, B/event |',
    )
    out.push('|---|---|--:|--:|--:|--:|--:|---|')
    for (const [store, x, when] of [
      ['sqlite', st.sqlite, ''],
      ['postgres', st.postgres, ' (as written)'],
      ['postgres', st.postgresCompacted, ' (compacted, as the pruner leaves a partition once its day has passed)'],
    ] as const) {
      if (!x) continue
      const each = x.objects
        .filter((o) => o.kind === 'index')
        .map((o) => `${o.name} ${int(o.bytes / x.events)}`)
        .join('; ')
      out.push(
        `| ${storeName(store)}${when} | ${x.dataset} | ${int(x.events)} | ${int(x.bytesPerEvent.table)} | ${int(x.bytesPerEvent.indexes)} | ${int(x.bytesPerEvent.total)} | ${int(x.logLinesBytesPerEvent)} | ${each} |`,
      )
    }
    out.push('')
    const reads = [...new Set(st.plans.map((p) => p.read))]
    const columns = [...new Set(st.plans.map((p) => `${p.store}|${p.dataset}`))]
    out.push('The index each read of the API uses (EXPLAIN; the queries as the API’s store compiles them):', '')
    out.push(`| read | ${columns.map((c) => `${storeName(c.split('|')[0]!)}: ${c.split('|')[1]}`).join(' | ')} |`)
    out.push(`|---|${columns.map(() => '---').join('|')}|`)
    for (const read of reads) {
      const cell = (c: string) => {
        const plan = st.plans.find((p) => `${p.store}|${p.dataset}` === c && p.read === read)
        return !plan ? '–' : plan.indexes.join(', ') || '(no index)'
      }
      out.push(`| ${read} | ${columns.map(cell).join(' | ')} |`)
    }
    out.push('')
    out.push(
      `No read uses: on SQLite ${st.unused.sqlite.join(', ') || 'nothing left out'}; on PostgreSQL ${st.unused.postgres.join(', ') || 'every index is chosen by some read'}.`,
      '',
    )
    if (st.skipped.length > 0) out.push(`Left out: ${st.skipped.join('; ')}.`, '')
  }

  const pr = r.prune
  if (pr) {
    out.push(`## Retention: a prune of ${int(pr.settings.events)} expired events`, '')
    out.push(
      `The API (EVENT_RETENTION=30d) starts on a fresh store holding ${int(pr.settings.events)} events of 31 days ago in ${pr.sessions} sessions, and prunes them on its own at its first look (5 s after it starts); ` +
        'its "pruned" log line gives the time and the events deleted (on PostgreSQL the day’s partition is dropped; on SQLite the events go in batches, and the file is vacuumed). ' +
        `Twice a store: alone, and while ${pr.appenders} connections append 10 lines at a time to sessions of their own as fast as the API answers: the p99 of the appends that started during the prune against those that did not (from 1 s after the first, and after the prune as long again as it took, 5 s at least). ` +
        'File: the SQLite file before the API started and after it stopped (the prune alone).',
      '',
    )
    out.push(
      '| store | expired events | prune alone, s | events/s | with appends: prune, s | events/s | append p99 during / without (appends) | ratio | file before → after |',
    )
    out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|')
    for (const { store, alone, appending } of pr.rows) {
      const a = appending.appends
      out.push(
        `| ${storeName(store)} | ${int(alone.events)} | ${(alone.pruneMs / 1000).toFixed(2)} | ${int(alone.eventsPerSecond)} | ` +
          `${(appending.pruneMs / 1000).toFixed(2)} | ${int(appending.eventsPerSecond)} | ` +
          `${a ? `${ms(a.p99DuringMs)} / ${ms(a.p99WithoutMs)} ms (${int(a.during)} / ${int(a.without)})` : '–'} | ${ratio(a?.ratio ?? NaN)} | ` +
          `${alone.fileBytes ? `${megabytes(alone.fileBytes.before)} → ${megabytes(alone.fileBytes.after)}` : ''} |`,
      )
    }
    out.push('')
    if (pr.skipped.length > 0) out.push(`Left out: ${pr.skipped.join('; ')}.`, '')
  }

  if (r.seeding.length > 0) {
    out.push('## Seeding (the store’s write path, through the API’s seed)', '')
    out.push('| dataset | events | seconds | events/s | when |')
    out.push('|---|--:|--:|--:|---|')
    for (const s of r.seeding) {
      out.push(
        `| ${s.name} | ${int(s.events)} | ${s.seconds.toFixed(1)} | ${int(s.eventsPerS)} | ${s.seededNow ? 'this run' : `reused, seeded ${s.at.slice(0, 16).replace('T', ' ')}`} |`,
      )
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
