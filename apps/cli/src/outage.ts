// Riding out an API that is briefly away. The client retries each call a few times on its own;
// a write that still fails with a retryable error is sent again here, with the same
// Idempotency-Key, for as long as the outage may last (`--max-outage`). A failure that no retry
// can mend (401, 403, 404, 400, a 409 conflict) is thrown at once.
import { SessionEventsConnectionError, SessionEventsError } from '@session-events/client'

export interface OutageOptions {
  /** How long the API may stay away: from the first attempt of a call to its last. */
  maxOutageMs: number
  /** The first wait between attempts, doubled each time up to `maxDelayMs`. Default 500. */
  retryDelayMs?: number
  /** The longest wait between attempts. Default 5 000. */
  maxDelayMs?: number
  /** Told of every failure that will be retried, with the wait before the next attempt. */
  onRetry?: (error: unknown, delayMs: number) => void
}

/** The API stayed away longer than `--max-outage`. */
export class OutageError extends Error {
  override name = 'OutageError'

  constructor(maxOutageMs: number, options: { cause: unknown }) {
    super(
      `The API did not answer for ${maxOutageMs / 1000} s (--max-outage); the last failure: ${briefly(options.cause)}`,
      options,
    )
  }
}

/** What the client itself retries, and what a later attempt may therefore mend. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof SessionEventsConnectionError) return true // timeouts included
  if (!(error instanceof SessionEventsError)) return false
  if ([429, 502, 503, 504].includes(error.status)) return true
  // The first request with this key is still being handled: the next attempt gets its answer.
  return error.status === 409 && error.code === 'idempotency_key_in_use'
}

/**
 * Calls `attempt` until it succeeds, it fails with an error that is not retryable, or
 * `maxOutageMs` have passed since the first attempt. Each attempt is given a signal that aborts
 * at that deadline, so that one slow request cannot stretch the outage. The caller makes every
 * attempt send the same request, Idempotency-Key included: a write that went through before its
 * answer was lost is answered again, not written twice.
 */
export async function retryThroughOutage<T>(
  attempt: (signal: AbortSignal) => Promise<T>,
  options: OutageOptions,
): Promise<T> {
  const firstDelay = options.retryDelayMs ?? 500
  const maxDelay = options.maxDelayMs ?? 5_000
  const deadline = Date.now() + options.maxOutageMs
  let lastFailure: unknown
  for (let retry = 0; ; retry++) {
    const signal = AbortSignal.timeout(Math.max(1, deadline - Date.now()))
    try {
      return await attempt(signal)
    } catch (error) {
      if (signal.aborted) throw new OutageError(options.maxOutageMs, { cause: lastFailure ?? error })
      if (!isRetryable(error)) throw error
      lastFailure = error
      const remaining = deadline - Date.now()
      if (remaining <= 0) throw new OutageError(options.maxOutageMs, { cause: error })
      const ceiling = Math.min(maxDelay, firstDelay * 2 ** retry)
      const delay = Math.min(remaining, ceiling / 2 + (Math.random() * ceiling) / 2)
      options.onRetry?.(error, delay)
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}

/** Why a call failed, in a few words: for the notes printed while an outage is ridden out. */
export function briefly(error: unknown): string {
  if (error instanceof SessionEventsError) return `HTTP ${error.status} ${error.code}`
  return (error instanceof Error ? error.message : String(error)).replace(/\.$/, '')
}
