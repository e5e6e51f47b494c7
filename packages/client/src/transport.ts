// The `fetch` that openapi-fetch is given: it adds retries, a per-attempt timeout and abort
// handling around the caller's fetch, so the typed client and the raw one behave the same.
// A POST gets an Idempotency-Key of its own, as Stripe's SDKs do, which makes retrying it safe:
// every attempt of one call sends the same key and the same body bytes. The key is a UUIDv7
// (RFC 9562): random, and its first 48 bits the time it was made, which lets the API keep the
// answers of one moment side by side (a page written per commit rather than one per key).
import { v7 as uuidv7 } from 'uuid'
import { SessionEventsTimeoutError, connectionError, parseJson } from './errors.js'
import type { ApiErrorCode } from './types.js'

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

/** The statuses worth another attempt: the server is busy or a proxy could not reach it. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504])
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304])
/** The methods whose requests carry an Idempotency-Key: the API's writes. */
const METHODS_WITH_IDEMPOTENCY_KEY = new Set(['POST'])
const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key'
/** The 409 that says the first request with the key is still in flight: worth a retry. */
const KEY_IN_USE: ApiErrorCode = 'idempotency_key_in_use'

export function retryingFetch(fetch: Fetch, options: RetryOptions): (request: Request) => Promise<Response> {
  return async (request) => {
    const callerSignal = request.signal
    const attemptRequest = await replayable(request)
    for (let attempt = 0; ; attempt++) {
      const lastAttempt = attempt >= options.maxRetries
      let response: Response
      try {
        response = await attemptOnce(fetch, attemptRequest, callerSignal, options.timeoutMs)
      } catch (error) {
        if (callerSignal.aborted || lastAttempt) throw error
        await sleep(backoffDelay(attempt, options), callerSignal)
        continue
      }
      if (lastAttempt || !(await isRetryable(response))) return response
      const delay = retryDelay(response.headers, attempt, options)
      if (delay === undefined) return response
      await sleep(delay, callerSignal)
    }
  }
}

/**
 * Makes a fresh Request for each attempt of one call, with the same headers and the same body:
 * a Request's body can be read once, so it is read here into memory, and every attempt sends
 * those bytes. A POST without an Idempotency-Key gets one here, once for the whole call.
 */
async function replayable(request: Request): Promise<(signal: AbortSignal) => Request> {
  const headers = new Headers(request.headers)
  if (METHODS_WITH_IDEMPOTENCY_KEY.has(request.method) && !headers.has(IDEMPOTENCY_KEY_HEADER)) {
    headers.set(IDEMPOTENCY_KEY_HEADER, uuidv7())
  }
  const body = request.body === null ? null : await request.arrayBuffer()
  // oxlint-disable-next-line unicorn/no-invalid-fetch-options -- body is null for a GET (it has none)
  return (signal) => new Request(request, { headers, body, signal })
}

/**
 * A 429, 502, 503 or 504, or a 409 `idempotency_key_in_use`: the first request with this key
 * is still being handled, and a retry after it gets its answer.
 */
async function isRetryable(response: Response): Promise<boolean> {
  if (RETRYABLE_STATUSES.has(response.status)) return true
  if (response.status !== 409) return false
  const body = parseJson(await response.clone().text())
  return (body as { code?: unknown } | undefined)?.code === KEY_IN_USE
}

/**
 * One attempt, body included: the body is read here so that the timeout covers a body that
 * stalls and a connection that drops mid-body is retried like any network failure.
 * Throws the caller's abort reason, a SessionEventsTimeoutError or a SessionEventsConnectionError.
 */
async function attemptOnce(
  fetch: Fetch,
  attemptRequest: (signal: AbortSignal) => Request,
  callerSignal: AbortSignal,
  timeoutMs: number,
): Promise<Response> {
  const controller = new AbortController()
  const abort = () => controller.abort(callerSignal.reason)
  callerSignal.addEventListener('abort', abort, { once: true })
  const timer = setTimeout(() => controller.abort(new SessionEventsTimeoutError(timeoutMs)), timeoutMs)
  try {
    if (callerSignal.aborted) abort()
    // Raced against the signal too, for fetch functions that ignore it (an in-process app).
    return await untilAborted(controller.signal, async () => {
      const response = await fetch(attemptRequest(controller.signal))
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
    callerSignal.removeEventListener('abort', abort)
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
  const asked = parseRetryAfter(headers.get('retry-after'), now) ?? parseSeconds(headers.get('ratelimit-reset'))
  if (asked === undefined) return backoffDelay(attempt, options)
  return asked <= options.maxRetryDelayMs ? asked : undefined
}

/** `retryDelayMs · 2^attempt`, capped, with "equal jitter": half fixed, half random. */
export function backoffDelay(attempt: number, options: Pick<RetryOptions, 'retryDelayMs' | 'maxRetryDelayMs'>): number {
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

/**
 * `work()`, or a rejection with the signal's reason as soon as it aborts: for fetch functions
 * that ignore the request's signal (an in-process app).
 */
export function untilAborted<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work()
      .then(resolve, reject)
      .finally(() => signal.removeEventListener('abort', onAbort))
  })
}
