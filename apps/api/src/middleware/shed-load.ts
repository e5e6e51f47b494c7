import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'

// Shedding load: when the event loop lags (every request in the process then waits that long
// more), new requests are answered 503 with Retry-After at once, so that the ones accepted keep
// a bounded latency and clients (which retry 503s) come back later or go to another process.

export interface LoadSheddingOptions {
  /** New requests are refused while the event loop's delay over the last window is above this. */
  maxEventLoopDelayMs: number
  /** How often the delay is read. Default 100 ms. */
  windowMs?: number
}

export class LoadShedder {
  readonly #histogram: IntervalHistogram
  readonly #timer: NodeJS.Timeout
  readonly #maxNs: number
  #overloaded = false

  constructor(options: LoadSheddingOptions) {
    this.#maxNs = options.maxEventLoopDelayMs * 1e6
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
      this.#overloaded = Math.max(this.#histogram.max, lateNs) > this.#maxNs
      this.#histogram.reset()
    }, windowMs)
    this.#timer.unref()
  }

  /** Whether new requests are being refused now. */
  get overloaded(): boolean {
    return this.#overloaded
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#histogram.disable()
  }

  /** The middleware: 503 at once while overloaded. */
  middleware(): MiddlewareHandler<AppEnv> {
    return async (_c, next) => {
      if (this.#overloaded) throw errors.overloaded()
      await next()
    }
  }
}
