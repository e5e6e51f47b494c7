// The `fetch` that openapi-fetch is given: it adds retries, a per-attempt timeout and abort
// handling around the caller's fetch, so the typed client and the raw one behave the same.
import { SessionEventsTimeoutError, connectionError } from './errors.js'

/** Anything shaped like `fetch` that takes a Request: globalThis.fetch, undici, a Hono `app.fetch`. */
export type Fetch = (input: Request, init?: RequestInit) => Response | Promise<Response>

export interface RetryOptions {
  /** Retries after the first attempt. */
  maxRetries: number
  /** How long one attempt, up to its last body byte, may take. */
  timeoutMs: number
  /** The first backoff delay; each retry doubles it. */
  retryDelayMs: number
  /** The longest wait between attempts; a server that asks for more is not retried. */
  maxRetryDelayMs: number
}

const RETRYABLE_STATUSES = new Set([429, 502, 503, 504])
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304])

export function retryingFetch(
  fetch: Fetch,
  options: RetryOptions,
): (request: Request) => Promise<Response> {
  return async (request) => {
    const callerSignal = request.signal
    for (let attempt = 0; ; attempt++) {
      const lastAttempt = attempt >= options.maxRetries
      let response: Response
      try {
        response = await attemptOnce(fetch, request, options.timeoutMs)
      } catch (error) {
        if (callerSignal.aborted || lastAttempt) throw error
        await sleep(backoffDelay(attempt, options), callerSignal)
        continue
      }
      if (lastAttempt || !RETRYABLE_STATUSES.has(response.status)) return response
      const delay = retryDelay(response.headers, attempt, options)
      if (delay === undefined) return response
      await sleep(delay, callerSignal)
    }
  }
}

/**
 * One attempt, body included: the body is read here so that the timeout covers a body that
 * stalls and a connection that drops mid-body is retried like any network failure.
 * Throws the caller's abort reason, a SessionEventsTimeoutError or a SessionEventsConnectionError.
 */
async function attemptOnce(fetch: Fetch, request: Request, timeoutMs: number): Promise<Response> {
  const controller = new AbortController()
  const abort = () => controller.abort(request.signal.reason)
  request.signal.addEventListener('abort', abort, { once: true })
  const timer = setTimeout(
    () => controller.abort(new SessionEventsTimeoutError(timeoutMs)),
    timeoutMs,
  )
  try {
    if (request.signal.aborted) abort()
    // Raced against the signal too, for fetch functions that ignore it (an in-process app).
    return await untilAborted(controller.signal, async () => {
      const response = await fetch(new Request(request.clone(), { signal: controller.signal }))
      const body = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer()
      return new Response(body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      })
    })
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason
    throw connectionError(error)
  } finally {
    clearTimeout(timer)
    request.signal.removeEventListener('abort', abort)
  }
}

/**
 * How long to wait before retrying a response with a retryable status, or undefined to give up:
 * the server's `Retry-After` (seconds or an HTTP date), else its `RateLimit-Reset` (seconds),
 * else exponential backoff. A server wait longer than `maxRetryDelayMs` is not worth sitting
 * through, so the response goes back to the caller as it is.
 */
export function retryDelay(
  headers: Headers,
  attempt: number,
  options: Pick<RetryOptions, 'retryDelayMs' | 'maxRetryDelayMs'>,
  now = Date.now(),
): number | undefined {
  const asked =
    parseRetryAfter(headers.get('retry-after'), now) ?? parseSeconds(headers.get('ratelimit-reset'))
  if (asked === undefined) return backoffDelay(attempt, options)
  return asked <= options.maxRetryDelayMs ? asked : undefined
}

/** `retryDelayMs · 2^attempt`, capped, with "equal jitter": half fixed, half random. */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryOptions, 'retryDelayMs' | 'maxRetryDelayMs'>,
): number {
  const ceiling = Math.min(options.maxRetryDelayMs, options.retryDelayMs * 2 ** attempt)
  return ceiling / 2 + (Math.random() * ceiling) / 2
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined
  const seconds = parseSeconds(value)
  if (seconds !== undefined) return seconds
  // An HTTP date has a day and a month name; a bare "-5" would otherwise parse as a year.
  const date = /[a-z]/i.test(value) ? Date.parse(value) : Number.NaN
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}

function parseSeconds(value: string | null): number | undefined {
  if (value === null || !/^\s*\d+(\.\d+)?\s*$/.test(value)) return undefined
  return Number(value) * 1000
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function untilAborted<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work()
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort))
  })
}
