// The writes of `run` and `events append`, each riding out an outage of the API: single calls
// with an Idempotency-Key of their own, and the log lines of streams through one batcher.
import { randomUUID } from 'node:crypto'
import type { LogLine, SessionEvent, SessionEventsClient } from '@session-events/client'
import { LogLineBatcher } from './batcher.js'
import { readLogLines } from './lines.js'
import { briefly, retryThroughOutage } from './outage.js'

/** Says on stderr when the API stops answering, and when it answers again. */
export class OutageNotes {
  readonly #print: (message: string) => void
  readonly #maxOutageMs: number
  #since: number | undefined

  constructor(print: (message: string) => void, maxOutageMs: number) {
    this.#print = print
    this.#maxOutageMs = maxOutageMs
  }

  retrying = (error: unknown): void => {
    if (this.#since !== undefined) return
    this.#since = Date.now()
    this.#print(
      `the API is not answering (${briefly(error)}); retrying for up to ${this.#maxOutageMs / 1000} s, keeping new lines meanwhile`,
    )
  }

  answered = (): void => {
    if (this.#since === undefined) return
    this.#print(`the API answers again, after ${((Date.now() - this.#since) / 1000).toFixed(1)} s`)
    this.#since = undefined
  }
}

export interface WriteContext {
  client: SessionEventsClient
  maxOutageMs: number
  notes: OutageNotes
}

/**
 * One write, retried through an outage: `call` is given the same Idempotency-Key every time,
 * so a write that went through before its answer was lost is answered again, not repeated.
 */
export async function write<T>(
  { maxOutageMs, notes }: WriteContext,
  call: (options: { idempotencyKey: string; signal: AbortSignal }) => Promise<T>,
): Promise<T> {
  const idempotencyKey = randomUUID()
  const result = await retryThroughOutage((signal) => call({ idempotencyKey, signal }), {
    maxOutageMs,
    onRetry: notes.retrying,
  })
  notes.answered()
  return result
}

/** A batcher that appends lines to a server run of a session. */
export function appender(
  { client, maxOutageMs, notes }: WriteContext,
  target: {
    sessionId: string
    serverRunId: string
    onAppended?: (event: SessionEvent) => void
    onFailure?: (error: unknown) => void
  },
): LogLineBatcher {
  return new LogLineBatcher({
    maxOutageMs,
    onRetry: notes.retrying,
    onFailure: target.onFailure,
    async send(lines, idempotencyKey, signal) {
      const event = await client.events.append(
        target.sessionId,
        { server_run_id: target.serverRunId, log_lines: lines },
        { idempotencyKey, signal },
      )
      notes.answered()
      target.onAppended?.(event)
    },
  })
}

/**
 * Reads the lines of every source into the batcher, in the order they arrive, until every source
 * has ended. While the batcher holds more than it should, every source is paused.
 */
export async function feedLines(
  sources: { stream: NodeJS.ReadableStream; type: LogLine['type'] }[],
  batcher: LogLineBatcher,
): Promise<void> {
  let paused = false
  const onLine = (line: LogLine) => {
    if (batcher.push(line) || paused) return
    paused = true
    for (const { stream } of sources) stream.pause()
    void batcher.drained().then(() => {
      paused = false
      for (const { stream } of sources) stream.resume()
    })
  }
  await Promise.all(sources.map(({ stream, type }) => readLogLines(stream, type, onLine)))
}
