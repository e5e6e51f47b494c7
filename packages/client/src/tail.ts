// `client.events.tail`: follows a session over `streamSessionEvents` (Server-Sent Events, parsed
// by eventsource-parser) and reconnects as a browser's EventSource does, sending the id of the
// last event it yielded as `Last-Event-ID`, so that a dropped connection, a restarted server or
// a 503 neither loses an event nor repeats one.
//
// It does not go through transport.ts's retryingFetch, which reads a whole body under one
// timeout: a stream lasts for hours. Here the timeout covers the wait for the response's head
// (and an error's body) only; the stream then lasts as long as the caller reads. What guards the
// stream is the idle watchdog: the server sends a keep-alive comment every 15 s, so a connection
// that sends nothing for much longer is dead on one side (a half-open TCP connection after a
// network change), and only a new connection can tell.
import { type EventSourceMessage, createParser } from 'eventsource-parser'
import type { Client } from 'openapi-fetch'
import {
  SessionEventsConnectionError,
  SessionEventsError,
  SessionEventsTimeoutError,
  connectionError,
  errorFromResponse,
  parseJson,
} from './errors.js'
import type { paths } from './generated/schema.js'
import { sseEvents, sseKeepAlive } from './generated/values.js'
import {
  type Fetch,
  RETRYABLE_STATUSES,
  type RetryOptions,
  backoffDelay,
  retryDelay,
  sleep,
  untilAborted,
} from './transport.js'
import type { SessionEvent, StreamSessionEventsQuery } from './types.js'

export interface TailOptions {
  /** Start right after this event, with what was written since. Default: from now on. */
  after?: StreamSessionEventsQuery['after']
  /** First yield this many of the newest events (the spec's `tail`). Ignored with `after`. Default: none. */
  tail?: StreamSessionEventsQuery['tail']
  /** Only events of these server runs, server sessions or types, as in `list`. */
  filters?: Omit<StreamSessionEventsQuery, 'after' | 'tail'>
  /** Ends the tail at once: the generator returns, and the connection is closed. */
  signal?: AbortSignal
  /**
   * How long the stream may send no byte at all (no event, not even the server's keep-alive,
   * sent every 15 s) before the connection is taken for dead: it is closed, and a new one
   * resumes after the last event yielded. `0` turns the watchdog off. Default 45 000.
   */
  idleTimeoutMs?: number
  /**
   * Told when a stream opens (`true`), and when an attempt fails or a stream is lost and the tail
   * waits to try again (`false`, with why): for a status line or a page that says so while it
   * reconnects. Not told of the tail's own end (the caller's abort, an error it throws).
   */
  onConnection?: (connected: boolean, error?: Error) => void
}

/** Three of the server's keep-alives (the spec's `x-sse-keep-alive`: every 15 s) missed in a row. */
const DEFAULT_IDLE_TIMEOUT_MS = 3 * sseKeepAlive.everySeconds * 1000
/** The longest delay setTimeout takes; a longer one fires at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** What a tail needs of its client: the raw client (base URL, headers), its fetch and timings. */
export interface TailTransport {
  raw: Client<paths>
  fetch: Fetch
  retry: RetryOptions
}

const STREAM_PATH = '/sessions/{sessionId}/events/stream' satisfies keyof paths
/**
 * The messages by their `event:` name (the spec's `x-sse-events`): those that carry a SessionEvent
 * (others are skipped), and the one whose `id:` says where the stream stands, before any event.
 */
const { sessionEvent: SESSION_EVENT, position: POSITION } = sseEvents

/** Why a connection ended without an event to yield: what decides the wait before the next one. */
interface Failure {
  /** Thrown when there are no retries left (before any stream opened). */
  error: Error
  /** The response's headers, for `Retry-After`; absent when there was no response. */
  headers?: Headers
}

export async function* tailSessionEvents(
  { raw, fetch, retry }: TailTransport,
  sessionId: string,
  {
    after,
    tail,
    filters,
    signal = new AbortController().signal,
    idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS,
    onConnection,
  }: TailOptions = {},
): AsyncGenerator<SessionEvent, void, undefined> {
  // A NaN or a negative number would make setTimeout fire at once: a reconnect loop.
  if (!(idleTimeoutMs >= 0 && idleTimeoutMs <= MAX_TIMEOUT_MS)) {
    throw new TypeError(
      `events.tail: \`idleTimeoutMs\` must be 0 (off) or a number of milliseconds up to ${MAX_TIMEOUT_MS}.`,
    )
  }
  /** The last event yielded (at first the caller's `after`): the stream resumes right after it. */
  let lastId = after
  let reconnecting = false
  /**
   * Whether a stream has opened. Until then a failure counts against `maxRetries`, so that a
   * wrong URL or a server that is down fails fast; after, the tail reconnects for as long as the
   * caller reads, as EventSource does, through restarts of the server.
   */
  let opened = false
  /** Attempts in a row that delivered nothing: the backoff's exponent. */
  let failures = 0

  while (!signal.aborted) {
    // A reconnect resumes after the last event, whatever `after` said; `tail` is for the start.
    const resume = reconnecting && lastId !== undefined
    reconnecting = true
    const attempt = new AbortController()
    const stopAttempt = () => attempt.abort(signal.reason)
    signal.addEventListener('abort', stopAttempt, { once: true })
    let failure: Failure
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
    const cancel = () => void reader?.cancel().catch(() => {})
    // Settles a pending read at once when the attempt ends, even for a fetch that ignores the
    // request's signal (an in-process app), and tells the server to stop.
    attempt.signal.addEventListener('abort', cancel, { once: true })
    /** Ends the attempt when a read has waited idleTimeoutMs for a byte. */
    let watchdog: ReturnType<typeof setTimeout> | undefined
    const watch = () => {
      if (idleTimeoutMs > 0) watchdog = setTimeout(() => attempt.abort(), idleTimeoutMs)
    }
    try {
      const opening = await open(
        { raw, fetch, retry },
        attempt,
        sessionId,
        resume ? { ...filters } : { ...filters, after, tail },
        resume ? lastId : undefined,
      )
      if ('error' in opening) {
        if (signal.aborted) return
        failure = opening
      } else {
        opened = true
        onConnection?.(true)
        reader = opening.body.getReader()
        if (signal.aborted) return // the finally block cancels the body
        const messages: EventSourceMessage[] = []
        const parser = createParser({
          onEvent: (message) => messages.push(message),
          // A keep-alive: the connection works, so the next drop backs off from the start.
          onComment: () => (failures = 0),
        })
        // The stream is UTF-8 (a BOM at its start is dropped); a character split across two
        // chunks is decoded once its last byte arrives.
        const decoder = new TextDecoder()
        for (;;) {
          // Only the wait for bytes counts as silence, not the time the caller spends on an
          // event it was given: a slow consumer is not a dead connection.
          watch()
          // A read that fails is a connection dropped mid-body: reconnect, as when it ends. So
          // is one that the watchdog ends (it cancels the body, which ends the read).
          const chunk = await reader.read().catch(() => undefined)
          clearTimeout(watchdog)
          if (chunk === undefined || chunk.done) break
          parser.feed(decoder.decode(chunk.value, { stream: true }))
          for (const message of messages.splice(0)) {
            failures = 0
            // Where the stream stands before its first event: a reconnect resumes there.
            if (message.event === POSITION.name) {
              if (message.id && (lastId === undefined || message.id > lastId)) lastId = message.id
              continue
            }
            if (message.event !== SESSION_EVENT.name) continue
            const event = sessionEventOf(message, opening.response)
            // Ids sort bytewise (they are ASCII, so `<=` on strings is bytewise): anything at or
            // before the last event yielded was yielded already.
            if (lastId !== undefined && event.id <= lastId) continue
            if (signal.aborted) return
            lastId = event.id
            yield event
          }
        }
        // (Never thrown: a stream had opened, so the tail reconnects.)
        failure = { error: new SessionEventsConnectionError('The stream of session events ended.') }
      }
    } finally {
      clearTimeout(watchdog)
      signal.removeEventListener('abort', stopAttempt)
      // Closes the connection if it is still open: the caller broke out of the loop, or it ended.
      attempt.abort()
      cancel()
    }
    if (signal.aborted) return
    failures += 1
    if (!opened && failures > retry.maxRetries) throw failure.error
    const delay =
      failure.headers === undefined
        ? backoffDelay(failures - 1, retry)
        : retryDelay(failure.headers, failures - 1, retry)
    // The server asked for a longer wait than maxRetryDelayMs: its answer goes to the caller.
    if (delay === undefined) throw failure.error
    onConnection?.(false, failure.error)
    try {
      await sleep(delay, signal)
    } catch {
      return // the caller aborted
    }
  }
}

/**
 * One attempt to open the stream: its body, or a failure worth another attempt. Throws a
 * SessionEventsError for an answer that is not: 400, 401, 403, 404, 500, a 200 that is not a
 * stream. Returns (with a failure) when the caller aborts; the caller checks its signal.
 */
async function open(
  { raw, fetch, retry }: TailTransport,
  attempt: AbortController,
  sessionId: string,
  query: StreamSessionEventsQuery,
  lastEventId: string | undefined,
): Promise<{ response: Response; body: ReadableStream<Uint8Array> } | Failure> {
  let errorText = ''
  const timer = setTimeout(() => attempt.abort(new SessionEventsTimeoutError(retry.timeoutMs)), retry.timeoutMs)
  let response: Response
  try {
    response = (
      await raw.GET(STREAM_PATH, {
        params: { path: { sessionId }, query, header: { 'Last-Event-ID': lastEventId } },
        headers: { Accept: 'text/event-stream' },
        parseAs: 'stream',
        signal: attempt.signal,
        // One attempt, raced against the signal for fetch functions that ignore it.
        fetch: (request) =>
          untilAborted(attempt.signal, async () => {
            const response = await fetch(request)
            // An error's body is read here, so that the timeout covers it too.
            if (!response.ok) {
              errorText = await response.text()
              return new Response(errorText, response)
            }
            // Too late (a deaf fetch answered after the timeout): nobody will read this stream.
            if (attempt.signal.aborted) void response.body?.cancel().catch(() => {})
            return response
          }),
      })
    ).response
  } catch (error) {
    return {
      error: attempt.signal.aborted ? toError(attempt.signal.reason) : connectionError(error),
    }
  } finally {
    clearTimeout(timer)
  }

  if (!response.ok) {
    const error = errorFromResponse(response, errorText)
    if (RETRYABLE_STATUSES.has(response.status)) return { error, headers: response.headers }
    throw error
  }
  const contentType = response.headers.get('content-type') ?? ''
  if (!/^text\/event-stream\b/i.test(contentType)) {
    void response.body?.cancel().catch(() => {})
    throw new SessionEventsError({
      status: response.status,
      code: 'malformed_response',
      message: `The API answered ${response.status} with ${JSON.stringify(contentType)}, not a stream of events (text/event-stream).`,
      requestId: response.headers.get('metorial-req-id') ?? undefined,
      body: undefined,
    })
  }
  // A stream without a body has ended before it began: a drop like any other.
  return { response, body: response.body ?? new ReadableStream({ start: (c) => c.close() }) }
}

/** The SessionEvent a `session.event` message carries in its `data`. */
function sessionEventOf(message: EventSourceMessage, response: Response): SessionEvent {
  const json = parseJson(message.data)
  if (typeof json === 'object' && json !== null && typeof (json as SessionEvent).id === 'string') {
    return json as SessionEvent
  }
  const snippet = message.data.length > 200 ? `${message.data.slice(0, 200)}…` : message.data
  throw new SessionEventsError({
    status: response.status,
    code: 'malformed_response',
    message: `The stream sent a ${SESSION_EVENT.name} message whose data is not a session event: ${JSON.stringify(snippet)}`,
    requestId: response.headers.get('metorial-req-id') ?? undefined,
    body: message.data,
  })
}

function toError(reason: unknown): Error {
  return reason instanceof Error ? reason : connectionError(reason)
}
