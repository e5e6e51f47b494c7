import autocannon from 'autocannon'
import { v7 as uuidv7 } from 'uuid'

// One measurement: autocannon against one server for a fixed time. autocannon's own histogram
// counts whole milliseconds, too coarse for a page that takes a fraction of one, so every
// response time (a float, in ms) is recorded here too and the percentiles come from those.

export interface LoadRequest {
  path: string
  headers?: Record<string, string>
  /** GET unless said; a POST sends `body` (JSON, with its content type set here). */
  method?: 'GET' | 'POST'
  body?: string | Buffer
  /** Send a new `Idempotency-Key` with every request (a client's own key per write). */
  idempotencyKeys?: boolean
  /** A new body for every request (OTLP: the same body twice is a retry, stored once). */
  newBody?: () => string | Buffer
}

export interface LoadResult {
  /** 2xx responses per second. */
  rps: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  /** 2xx responses. */
  ok: number
  /** Connection errors, timeouts and non-2xx responses, together (each once). */
  errors: number
  durationS: number
  bytesPerS: number
  /**
   * CPU time the server spent per 2xx response, in µs: what a request costs the server whatever
   * else the machine is doing, so it holds better than req/s on a noisy machine.
   */
  cpuUsPerReq: number | null
  /** The slowest 2xx response, in ms. */
  maxMs: number
  /** Responses by status code ("200", "503"…), all of them. */
  statuses: Record<string, number>
  /** Connection errors and timeouts (no response at all). */
  connectionErrors: number
  timeouts: number
}

/** The nearest-rank percentile `p` (0–100) of values sorted in ascending order; NaN of none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export function load(options: {
  url: string
  requests: LoadRequest[]
  connections: number
  durationS: number
  /** The server's CPU time so far, in seconds (ServerProcess.cpuSeconds). */
  serverCpu?: () => number | null
  /** Seconds without an answer before a request counts as a timeout (default 10). */
  timeoutS?: number
}): Promise<LoadResult> {
  let times = new Float64Array(65_536)
  let count = 0
  let maxMs = 0
  const statuses: Record<string, number> = {}
  const cpuBefore = options.serverCpu?.() ?? null
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationS,
        pipelining: 1,
        timeout: options.timeoutS ?? 10,
        requests: options.requests.map((r) =>
          r.method === 'POST'
            ? {
                method: 'POST' as const,
                path: r.path,
                headers: { 'content-type': 'application/json', ...r.headers },
                body: r.body ?? '',
                ...(r.idempotencyKeys && {
                  setupRequest: (request: autocannon.Request) => ({
                    ...request,
                    headers: { ...request.headers, 'idempotency-key': uuidv7() },
                  }),
                }),
                ...(r.newBody && {
                  setupRequest: (request: autocannon.Request) => ({ ...request, body: r.newBody!() }),
                }),
              }
            : { method: 'GET' as const, path: r.path, headers: r.headers ?? {} },
        ),
      },
      (error, result) => {
        if (error) return reject(error)
        const cpuAfter = options.serverCpu?.() ?? null
        const sorted = times.subarray(0, count).sort()
        let sum = 0
        for (let i = 0; i < count; i++) sum += sorted[i]!
        resolve({
          rps: result['2xx'] / result.duration,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          meanMs: count > 0 ? sum / count : NaN,
          ok: result['2xx'],
          // autocannon counts a timeout among its errors too.
          errors: result.errors + result.non2xx,
          durationS: result.duration,
          bytesPerS: result.throughput.average,
          cpuUsPerReq:
            cpuBefore !== null && cpuAfter !== null && result['2xx'] > 0
              ? ((cpuAfter - cpuBefore) * 1e6) / result['2xx']
              : null,
          maxMs,
          statuses,
          connectionErrors: result.errors - result.timeouts,
          timeouts: result.timeouts,
        })
      },
    )
    // on() returns the instance, which is also a thenable of the whole run: nothing to wait for here
    void instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
      if (statusCode < 200 || statusCode >= 300) return
      if (responseTime > maxMs) maxMs = responseTime
      if (count === times.length) {
        const bigger = new Float64Array(times.length * 2)
        bigger.set(times)
        times = bigger
      }
      times[count++] = responseTime
    })
  })
}

/** The servers' order in a round: turned by `shift`, so that none is always first or last. */
export const inTurn = <T>(targets: readonly T[], shift: number): T[] => {
  const at = shift % targets.length
  return [...targets.slice(at), ...targets.slice(0, at)]
}

export const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The median of the values that are there; null when none is. */
export const medianOrNull = (values: (number | null)[]): number | null => {
  const present = values.filter((v): v is number => v !== null && Number.isFinite(v))
  return present.length > 0 ? median(present) : null
}

/** Rounds of one load, summarised: the median of each figure over the rounds, and the errors of all. */
export interface RoundsSummary {
  rps: number
  p50Ms: number
  p99Ms: number
  meanMs: number
  /** Server CPU time per response, in µs (null without /proc). */
  cpuUsPerReq: number | null
  errors: number
  rounds: LoadResult[]
}

export const summariseRounds = (runs: LoadResult[]): RoundsSummary => ({
  rps: median(runs.map((r) => r.rps)),
  p50Ms: median(runs.map((r) => r.p50Ms)),
  p99Ms: median(runs.map((r) => r.p99Ms)),
  meanMs: median(runs.map((r) => r.meanMs)),
  cpuUsPerReq: medianOrNull(runs.map((r) => r.cpuUsPerReq)),
  errors: runs.reduce((n, r) => n + r.errors, 0),
  rounds: runs,
})
