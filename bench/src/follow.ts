import { Agent, request } from 'node:http'
import {
  freshLiveStore,
  logLines,
  removeLiveStore,
  sessionsWithRuns,
  startApi,
  type LiveStore,
  type StoreKind,
} from './api.js'
import { percentile } from './load.js'
import { peerScript, workerScript } from './paths.js'
import { freePort, startServer, startWorker, type ServerProcess, type WorkerProcess } from './processes.js'

// Following: how long after an append's 201 each follower of the session has the event, with 1,
// 100 and 1,000 followers (GET /sessions/{id}/events/stream, each its own connection, all in
// one process of their own: follower.ts), on one API process (SQLite, PostgreSQL) and across two
// on PostgreSQL (appended through one, followed through the other: LISTEN/NOTIFY between them).
// The driver appends one event of one line at a time, every INTERVAL_MS, and takes the time when
// the 201's head arrives; the follower process takes the time each stream's bytes arrive; both
// clocks are CLOCK_MONOTONIC (process.hrtime), one clock for the whole machine. Also the API's
// memory per idle follower: its RSS and heap (after a GC, peers/memory-probe.ts) with the largest
// number of streams open and idle, less the same before they opened, divided by their number.
// Last, the limit: bare node:http writing a precomputed message of the API's size to every stream
// after each 201 (peers/follow-limit.ts), followed and measured the same way: what writing to N
// sockets, and reading them in the followers' process, takes on this machine.

export interface FollowSettings {
  followers: number[]
  /** Appends measured per configuration and number of followers. */
  appends: number
  intervalMs: number
  /** Appends before measuring (not counted). */
  warmupAppends: number
  /** Idle followers spread over sessions, on one API process (SQLite): their memory, and an append to one session among them. */
  idle: { sessions: number; perSession: number }
}

export const FOLLOW_CONFIGS = ['sqlite', 'postgres', 'postgres_two', 'limit'] as const
export type FollowConfig = (typeof FOLLOW_CONFIGS)[number]
export const FOLLOW_CONFIG_LABELS: Record<FollowConfig, string> = {
  sqlite: 'SQLite, one process',
  postgres: 'PostgreSQL, one process',
  postgres_two: 'PostgreSQL, two processes (append through one, follow through the other)',
  limit: 'limit: bare node:http, one process, a precomputed message written to each stream',
}

export interface FollowRow {
  config: FollowConfig
  followers: number
  /** Deliveries measured (appends × followers) and how many arrived. */
  expected: number
  delivered: number
  /** From the 201 of the append to the bytes at the follower, ms (negative: the event came first). */
  p50Ms: number
  p99Ms: number
  maxMs: number
  /** The append itself (POST to 201), ms. */
  appendP50Ms: number
  appendP99Ms: number
  /** Opening every stream, ms. */
  openMs: number
  /** Streams that did not open after ten tries (each 503 or 429 tried again, as EventSource does). */
  failedToOpen: number
  /** Measured appends answered 503 (the API shedding load) before one was accepted. */
  appendsRefused: number
}

export interface FollowMemory {
  config: FollowConfig
  streams: number
  rssBytesPerStream: number
  heapBytesPerStream: number
  before: { rss: number; heapUsed: number }
  after: { rss: number; heapUsed: number }
}

/** Many idle followers of many sessions on one process: what each costs, and an append among them. */
export interface FollowIdle {
  config: FollowConfig
  sessions: number
  streams: number
  failedToOpen: number
  openMs: number
  rssBytesPerStream: number
  heapBytesPerStream: number
  before: { rss: number; heapUsed: number }
  after: { rss: number; heapUsed: number }
  /** Appends to one of the sessions, from the 201 to its followers, ms. */
  p50Ms: number
  p99Ms: number
  delivered: number
  expected: number
}

export interface FollowResult {
  settings: FollowSettings
  rows: FollowRow[]
  memory: FollowMemory[]
  idle: FollowIdle[]
  skipped: string[]
}

type Log = (line: string) => void

const nowMs = () => Number(process.hrtime.bigint() / 1000n) / 1000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const agent = new Agent({ keepAlive: true, maxSockets: 1 })

/** Appends refused with a 503 (the API shedding load) in this run, tried again. */
let refused = 0

/**
 * One append; resolves with the event's id, when the request was sent and when the 201's head
 * arrived. A 503 is tried again after 100 ms, as a client would (the times are the accepted try's).
 */
async function append(
  apiUrl: string,
  path: string,
  authorization: string,
  body: string,
): Promise<{ id: string; sentAt: number; at: number; bytes: number }> {
  for (let attempt = 1; ; attempt++) {
    const result = await appendOnce(apiUrl, path, authorization, body)
    if (result !== 503) return result
    refused += 1
    if (attempt === 20) throw new Error('append: 503 twenty times in a row')
    await sleep(100)
  }
}

function appendOnce(
  apiUrl: string,
  path: string,
  authorization: string,
  body: string,
): Promise<{ id: string; sentAt: number; at: number; bytes: number } | 503> {
  return new Promise((resolve, reject) => {
    const sentAt = nowMs()
    const req = request(
      apiUrl + path,
      {
        method: 'POST',
        agent,
        headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const at = nowMs()
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          if (res.statusCode === 503) return resolve(503)
          if (res.statusCode !== 201) return reject(new Error(`append: ${res.statusCode} ${text.slice(0, 300)}`))
          resolve({ id: (JSON.parse(text) as { id: string }).id, sentAt, at, bytes: Buffer.byteLength(text) })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

export async function followSuite(settings: FollowSettings, postgres: boolean, log: Log): Promise<FollowResult> {
  const configs = FOLLOW_CONFIGS.filter((c) => postgres || (c !== 'postgres' && c !== 'postgres_two'))
  const most = Math.max(...settings.followers)
  const lives: Partial<Record<StoreKind, LiveStore>> = {}
  const apis: ServerProcess[] = []
  /** The size of the API's event, as its 201 body: the limit's messages are as large. */
  let eventBytes = 0
  let followers: WorkerProcess | undefined
  const rows: FollowRow[] = []
  const memory: FollowMemory[] = []
  try {
    followers = await startWorker({ name: 'followers', script: workerScript('follower') })
    for (const config of configs) {
      const store: StoreKind = config === 'sqlite' ? 'sqlite' : 'postgres'
      const { writer, reader, place, authorization } =
        config === 'limit'
          ? await startLimit(eventBytes || 600, apis)
          : await startApis(config, (lives[store] ??= await freshLiveStore(store, 'follow')), most, apis)
      const path = `/sessions/${place.sessionId}/events`
      const body = JSON.stringify({ server_run_id: place.runId, log_lines: logLines(1) })
      const streamUrl = `${reader.url}/sessions/${place.sessionId}/events/stream`

      for (const n of settings.followers) {
        const before = n === most ? await reader.memoryUsage() : null
        followers.send(`open ${streamUrl} ${n} ${authorization}`)
        const opened = JSON.parse(await followers.nextLine(180_000)) as { opened: number; failed: number; ms: number }
        if (opened.failed > 0)
          log(
            `  WARNING: ${opened.failed} of ${n} streams did not open (after ten tries each); measuring the ${opened.opened} that did`,
          )
        if (before) {
          await sleep(500)
          const after = await reader.memoryUsage()
          if (after) {
            memory.push({
              config,
              streams: opened.opened,
              rssBytesPerStream: (after.rss - before.rss) / opened.opened,
              heapBytesPerStream: (after.heapUsed - before.heapUsed) / opened.opened,
              before: { rss: before.rss, heapUsed: before.heapUsed },
              after: { rss: after.rss, heapUsed: after.heapUsed },
            })
          }
        }

        // Warm-up appends, then the measured ones, one every intervalMs.
        for (let i = 0; i < settings.warmupAppends; i++) {
          await append(writer.url, path, authorization, body)
          await sleep(settings.intervalMs)
        }
        await sleep(200)
        followers.send('report') // drops what the warm-up delivered
        await followers.nextLine()
        const appended = new Map<string, { sentAt: number; at: number }>()
        refused = 0
        const started = nowMs()
        for (let i = 0; i < settings.appends; i++) {
          const due = started + i * settings.intervalMs
          if (nowMs() < due) await sleep(due - nowMs())
          const done = await append(writer.url, path, authorization, body)
          appended.set(done.id, done)
          if (config !== 'limit') eventBytes = done.bytes
        }
        // Until every follower has every event, or 15 s have passed.
        const latencies: number[] = []
        let delivered = 0
        const expected = settings.appends * opened.opened
        const deadline = nowMs() + 15_000
        while (delivered < expected && nowMs() < deadline) {
          await sleep(100)
          followers.send('report')
          const report = JSON.parse(await followers.nextLine(60_000)) as { deliveries: Record<string, number[]> }
          for (const [id, times] of Object.entries(report.deliveries)) {
            const sent = appended.get(id)
            if (!sent) continue
            for (const t of times) latencies.push(t - sent.at)
            delivered += times.length
          }
        }
        followers.send('close')
        await followers.nextLine()
        latencies.sort((a, b) => a - b)
        const appendTimes = [...appended.values()].map((a) => a.at - a.sentAt).sort((a, b) => a - b)
        const row: FollowRow = {
          config,
          followers: n,
          expected,
          delivered,
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
          maxMs: latencies.at(-1) ?? NaN,
          appendP50Ms: percentile(appendTimes, 50),
          appendP99Ms: percentile(appendTimes, 99),
          openMs: opened.ms,
          failedToOpen: opened.failed,
          appendsRefused: refused,
        }
        rows.push(row)
        log(
          `  ${FOLLOW_CONFIG_LABELS[config]}, ${n} follower(s): p50 ${row.p50Ms.toFixed(1)} ms, p99 ${row.p99Ms.toFixed(1)} ms, max ${row.maxMs.toFixed(1)} ms` +
            `${delivered < expected ? ` (only ${delivered} of ${expected} delivered)` : ''}`,
        )
        // The streams just closed: let the API see them go before the next count.
        await sleep(300)
      }
      await Promise.all([writer.stop(), reader.stop()])
    }
    const idle = [
      await idleFollowers(settings, (lives.sqlite ??= await freshLiveStore('sqlite', 'follow')), followers, apis, log),
    ]
    return { settings, rows, memory, idle, skipped: postgres ? [] : ['PostgreSQL: no server to reach'] }
  } finally {
    await Promise.all([...apis.map((a) => a.stop()), followers?.stop()])
    for (const live of Object.values(lives)) await removeLiveStore(live)
    agent.destroy()
  }
}

interface Followed {
  /** The process appended to, and the one followed (the same but for postgres_two). */
  writer: ServerProcess
  reader: ServerProcess
  place: { sessionId: string; runId: string }
  authorization: string
}

/** The API process(es) of a configuration, with a session and run of their own on its store. */
async function startApis(
  config: Exclude<FollowConfig, 'limit'>,
  live: LiveStore,
  most: number,
  apis: ServerProcess[],
): Promise<Followed> {
  // Enough streams for every follower on one key.
  const env = { STREAMS_PER_KEY: String(most + 10) }
  const writer = await startApi({ name: `follow_${config}`, databaseUrl: live.databaseUrl, env, probeMemory: true })
  apis.push(writer)
  const reader =
    config === 'postgres_two'
      ? await startApi({ name: `follow_${config}_b`, databaseUrl: live.databaseUrl, env, probeMemory: true })
      : writer
  if (reader !== writer) apis.push(reader)
  const [place] = await sessionsWithRuns(writer.url, live.secretKey, 1)
  return { writer, reader, place: place!, authorization: `Bearer ${live.secretKey}` }
}

/** The limit (peers/follow-limit.ts): no store, no key; its messages of `eventBytes`. */
async function startLimit(eventBytes: number, apis: ServerProcess[]): Promise<Followed> {
  const port = await freePort()
  const server = await startServer({
    name: 'follow_limit',
    script: peerScript('follow-limit'),
    args: [String(port), String(eventBytes)],
    port,
  })
  apis.push(server)
  return {
    writer: server,
    reader: server,
    place: { sessionId: 'ses_limit', runId: 'srr_limit' },
    authorization: 'none',
  }
}

/**
 * `idle.sessions` × `idle.perSession` streams open and idle on one API process (SQLite: on
 * PostgreSQL each stream also holds one of the server's advisory locks, STREAMS_PER_KEY across
 * processes, and the default lock table holds 6,400): the API's memory per stream, then a few
 * appends to one of the sessions, from the 201 to each of its followers.
 */
async function idleFollowers(
  settings: FollowSettings,
  live: LiveStore,
  followers: WorkerProcess,
  apis: ServerProcess[],
  log: Log,
): Promise<FollowIdle> {
  const { sessions: count, perSession } = settings.idle
  const api = await startApi({
    name: 'follow_idle',
    databaseUrl: live.databaseUrl,
    env: { STREAMS_PER_KEY: String(count * perSession + 10) },
    probeMemory: true,
  })
  apis.push(api)
  try {
    const places = await sessionsWithRuns(api.url, live.secretKey, count)
    const authorization = `Bearer ${live.secretKey}`
    const before = await api.memoryUsage()
    const started = nowMs()
    let opened = 0
    let failed = 0
    for (const place of places) {
      followers.send(`open ${api.url}/sessions/${place.sessionId}/events/stream ${perSession} ${authorization}`)
      const result = JSON.parse(await followers.nextLine(180_000)) as { opened: number; failed: number }
      opened += result.opened
      failed += result.failed
    }
    const openMs = nowMs() - started
    await sleep(500)
    const after = await api.memoryUsage()
    // A few appends to the first session: its followers among all the others.
    const [first] = places
    const path = `/sessions/${first!.sessionId}/events`
    const body = JSON.stringify({ server_run_id: first!.runId, log_lines: logLines(1) })
    followers.send('report')
    await followers.nextLine(60_000)
    const appended = new Map<string, number>()
    for (let i = 0; i < settings.appends; i++) {
      const done = await append(api.url, path, authorization, body)
      appended.set(done.id, done.at)
      await sleep(settings.intervalMs)
    }
    const latencies: number[] = []
    const expected = settings.appends * perSession
    const deadline = nowMs() + 15_000
    while (latencies.length < expected && nowMs() < deadline) {
      await sleep(100)
      followers.send('report')
      const report = JSON.parse(await followers.nextLine(60_000)) as { deliveries: Record<string, number[]> }
      for (const [id, times] of Object.entries(report.deliveries)) {
        const at = appended.get(id)
        if (at !== undefined) for (const t of times) latencies.push(t - at)
      }
    }
    followers.send('close')
    await followers.nextLine()
    latencies.sort((a, b) => a - b)
    const perStream = (field: 'rss' | 'heapUsed') =>
      before && after && opened > 0 ? (after[field] - before[field]) / opened : NaN
    const row: FollowIdle = {
      config: 'sqlite',
      sessions: count,
      streams: opened,
      failedToOpen: failed,
      openMs,
      rssBytesPerStream: perStream('rss'),
      heapBytesPerStream: perStream('heapUsed'),
      before: { rss: before?.rss ?? NaN, heapUsed: before?.heapUsed ?? NaN },
      after: { rss: after?.rss ?? NaN, heapUsed: after?.heapUsed ?? NaN },
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      delivered: latencies.length,
      expected,
    }
    log(
      `  ${opened} idle followers of ${count} sessions (SQLite, one process): ${(row.heapBytesPerStream / 1024).toFixed(1)} KB heap, ` +
        `${(row.rssBytesPerStream / 1024).toFixed(1)} KB RSS a stream; an append to ${perSession} of them: p99 ${row.p99Ms.toFixed(1)} ms` +
        `${failed > 0 ? ` (${failed} did not open)` : ''}`,
    )
    return row
  } finally {
    await api.stop()
  }
}
