import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { errorResponse, errors } from '../errors.js'

// Shedding load: new requests are answered 503 with Retry-After at once, so that the ones
// accepted keep a bounded latency and clients (which retry 503s) come back later or go to
// another process, while
// - the event loop lags (every request in the process then waits that long more);
// - a request has waited for a database connection longer than the same bound (PostgreSQL's
//   pool: the process's CPU is idle then, the queue is for the database);
// - `maxInFlight` requests are being answered already. The first two notice a queue once it has
//   formed; this one keeps it from forming. Without it, a flood is let in whole the moment the
//   lag or the wait falls back under the bound (every refused client tries again at once), and
//   the requests let in share the process until all of them are done: on SQLite, 512 connections
//   had 66% refused and the slowest accepted request took 4.7 s. Streams count while they open,
//   not while they stay open.

export interface LoadSheddingOptions {
  /** New requests are refused while the event loop's delay over the last window is above this. */
  maxEventLoopDelayMs: number
  /** How long the oldest request waiting for a database connection has waited, ms (0: none waits). */
  connectionWaitMs?: (() => number) | undefined
  /** New requests are refused while this many are being answered; undefined: no bound. */
  maxInFlight?: number | undefined
  /** How often the delay is read. Default 100 ms. */
  windowMs?: number
}

const OVERLOADED = errors.overloaded()

export class LoadShedder {
  readonly #histogram: IntervalHistogram
  readonly #timer: NodeJS.Timeout
  readonly #maxNs: number
  readonly #maxMs: number
  readonly #connectionWaitMs: (() => number) | undefined
  readonly #maxInFlight: number
  #lagging = false
  #inFlight = 0

  constructor(options: LoadSheddingOptions) {
    this.#maxNs = options.maxEventLoopDelayMs * 1e6
    this.#maxMs = options.maxEventLoopDelayMs
    this.#connectionWaitMs = options.connectionWaitMs
    this.#maxInFlight = options.maxInFlight ?? Infinity
    this.#histogram = monitorEventLoopDelay({ resolution: 10 })
    this.#histogram.enable()
    const windowMs = options.windowMs ?? 100
    let due = performance.now() + windowMs
    this.#timer = setInterval(() => {
      // The worst delay of the window, as the histogram's own timer saw it or as this one is late
      // (the histogram's sample of a stall may land after this reads it): a loop that stalls now
      // and then is overloaded too.
      const now = performance.now()
      const lateNs = Math.max(0, now - due) * 1e6
      due = now + windowMs
      this.#lagging = Math.max(this.#histogram.max, lateNs) > this.#maxNs
      this.#histogram.reset()
    }, windowMs)
    this.#timer.unref()
  }

  /** Why new requests are being refused now (/readyz says it); undefined: they are not. */
  get overloaded(): 'event_loop_lag' | 'database_connection_wait' | 'requests_in_flight' | undefined {
    if (this.#lagging) return 'event_loop_lag'
    if ((this.#connectionWaitMs?.() ?? 0) > this.#maxMs) return 'database_connection_wait'
    if (this.#inFlight >= this.#maxInFlight) return 'requests_in_flight'
    return undefined
  }

  /** Requests being answered now. */
  get inFlight(): number {
    return this.#inFlight
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#histogram.disable()
  }

  /** The middleware: 503 at once while overloaded. */
  middleware(): MiddlewareHandler<AppEnv> {
    return async (c, next) => {
      // Answered here, from one error made once: under a flood most requests are refused, and
      // an error made (its stack captured) and thrown through the middleware for each took 6%
      // of the process's CPU time (a CPU profile of 512 connections on PostgreSQL).
      if (this.overloaded) return errorResponse(c, OVERLOADED)
      this.#inFlight += 1
      try {
        await next()
      } finally {
        this.#inFlight -= 1
      }
    }
  }
}
