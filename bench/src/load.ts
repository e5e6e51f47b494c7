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

export interface LoadOptions {
  url: string
  requests: LoadRequest[]
  connections: number
  durationS: number
  /** The server's CPU time so far, in seconds (ServerProcess.cpuSeconds). */
  serverCpu?: () => number | null
  /** Seconds without an answer before a request counts as a timeout (default 10). */
  timeoutS?: number
}

/** The answers of one load: how many of each status, and the time of each 2xx (ms, a float). */
export class Answers {
  #times = new Float64Array(65_536)
  #count = 0
  maxMs = 0
  readonly statuses: Record<string, number> = {}

  record(status: number, ms: number): void {
    this.statuses[status] = (this.statuses[status] ?? 0) + 1
    if (status < 200 || status >= 300) return
    if (ms > this.maxMs) this.maxMs = ms
    if (this.#count === this.#times.length) {
      const bigger = new Float64Array(this.#times.length * 2)
      bigger.set(this.#times)
      this.#times = bigger
    }
    this.#times[this.#count++] = ms
  }

  /** How many answers were 2xx. */
  get ok(): number {
    return this.#count
  }

  /** The 2xx answers' p50, p99 and mean, ms. */
  times(): { p50Ms: number; p99Ms: number; meanMs: number } {
    const sorted = this.#times.subarray(0, this.#count).sort()
    let sum = 0
    for (let i = 0; i < this.#count; i++) sum += sorted[i]!
    return {
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      meanMs: this.#count > 0 ? sum / this.#count : NaN,
    }
  }
}

/** CPU µs per 2xx answer, from the server's CPU seconds before and after; null where unknown. */
export const cpuPerAnswer = (before: number | null, after: number | null, ok: number): number | null =>
  before !== null && after !== null && ok > 0 ? ((after - before) * 1e6) / ok : null

export function load(options: LoadOptions): Promise<LoadResult> {
  const answers = new Answers()
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
        resolve({
          rps: result['2xx'] / result.duration,
          ...answers.times(),
          ok: result['2xx'],
          // autocannon counts a timeout among its errors too.
          errors: result.errors + result.non2xx,
          durationS: result.duration,
          bytesPerS: result.throughput.average,
          cpuUsPerReq: cpuPerAnswer(cpuBefore, cpuAfter, result['2xx']),
          maxMs: answers.maxMs,
          statuses: answers.statuses,
          connectionErrors: result.errors - result.timeouts,
          timeouts: result.timeouts,
        })
      },
    )
    // on() returns the instance, which is also a thenable of the whole run: nothing to wait for here
    void instance.on('response', (_client, statusCode, _bytes, responseTime) =>
      answers.record(statusCode, responseTime),
    )
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
