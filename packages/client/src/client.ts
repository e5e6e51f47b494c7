// createSessionEventsClient: openapi-fetch on the generated `paths`, with the retrying fetch of
// transport.ts underneath and methods that throw typed errors instead of returning them.
import createClient, { type Client, type Middleware } from 'openapi-fetch'
import { type WithDates, reviveDates } from './dates.js'
import { errorFromResponse, parseJson } from './errors.js'
import type { operations, paths } from './generated/schema.js'
import { type Fetch, retryingFetch } from './transport.js'
import type { ListSessionEventsQuery, SessionEvent, SessionEventList } from './types.js'

/** Metorial's hosted API. For a local server started with `npm start`: `http://127.0.0.1:3000`. */
export const DEFAULT_BASE_URL = 'https://api.metorial.com'
/** The API version the client was written for, sent as `Metorial-Version`. */
export const DEFAULT_METORIAL_VERSION = '2025-01-01-pulsar'

export interface SessionEventsClientOptions<Dates extends boolean = false> {
  /** A secret key (`metorial_sk_…`) of the instance that owns the sessions. */
  apiKey: string
  /** Defaults to {@link DEFAULT_BASE_URL}. */
  baseUrl?: string
  /** Defaults to `globalThis.fetch`. Any function that takes a Request will do, such as `app.fetch`. */
  fetch?: Fetch
  /** Sent with every request, after (and so over) the client's own headers. */
  headers?: Record<string, string>
  /** How long one attempt may take, body included. Default 60 000. */
  timeoutMs?: number
  /** Retries of a 429, 502, 503, 504, network failure or timeout. Default 2. */
  maxRetries?: number
  /** The first backoff delay, doubled on each retry and jittered. Default 500. */
  retryDelayMs?: number
  /** The longest wait between attempts; a `Retry-After` above it is not retried. Default 60 000. */
  maxRetryDelayMs?: number
  /** Sent as `Metorial-Version`. Default {@link DEFAULT_METORIAL_VERSION}. */
  metorialVersion?: string
  /** Turn every `*_at` string of a result into a Date. Default false: results are the spec's types. */
  reviveDates?: Dates
}

export interface RequestOptions {
  /** Aborts the call, retries and waits between them included; the call rejects with the signal's reason. */
  signal?: AbortSignal
}

/** A result as the client returns it: with Date timestamps when `reviveDates` is true. */
export type Decoded<T, Dates extends boolean> = Dates extends true ? WithDates<T> : T

type SessionId = operations['listSessionEvents']['parameters']['path']['sessionId']
type SessionEventId = operations['getSessionEvent']['parameters']['path']['sessionEventId']

export interface SessionEventsResource<Dates extends boolean = false> {
  /** One page of the session's events. Throws a SessionEventsError when the API answers with an error. */
  list(
    sessionId: SessionId,
    query?: ListSessionEventsQuery,
    options?: RequestOptions,
  ): Promise<Decoded<SessionEventList, Dates>>
  /** One event of the session. */
  get(
    sessionId: SessionId,
    sessionEventId: SessionEventId,
    options?: RequestOptions,
  ): Promise<Decoded<SessionEvent, Dates>>
  /**
   * Every page from where `query` starts, following `pagination.next_cursor` while
   * `has_more_after`. Pages hold 100 events unless `query.limit` says otherwise.
   */
  pages(
    sessionId: SessionId,
    query?: ListSessionEventsQuery,
    options?: RequestOptions,
  ): AsyncGenerator<Decoded<SessionEventList, Dates>, void, undefined>
  /** Every event from where `query` starts, page after page, in the requested order. */
  iterate(
    sessionId: SessionId,
    query?: ListSessionEventsQuery,
    options?: RequestOptions,
  ): AsyncGenerator<Decoded<SessionEvent, Dates>, void, undefined>
}

export interface SessionEventsClient<Dates extends boolean = false> {
  readonly sessionEvents: SessionEventsResource<Dates>
  /**
   * The openapi-fetch client underneath, for `{ data, error, response }` results instead of
   * exceptions. It has the same headers, retries and timeout; it never revives dates.
   */
  readonly raw: Client<paths>
}

export function createSessionEventsClient<Dates extends boolean = false>(
  options: SessionEventsClientOptions<Dates>,
): SessionEventsClient<Dates> {
  if (typeof options.apiKey !== 'string' || options.apiKey === '') {
    throw new TypeError(
      'createSessionEventsClient: `apiKey` is required (a secret key, metorial_sk_…).',
    )
  }
  const fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const raw = createClient<paths>({
    baseUrl: options.baseUrl ?? DEFAULT_BASE_URL,
    fetch: retryingFetch(fetch, {
      maxRetries: options.maxRetries ?? 2,
      timeoutMs: options.timeoutMs ?? 60_000,
      retryDelayMs: options.retryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 60_000,
    }),
    headers: {
      Authorization: `Bearer ${options.apiKey}`,
      'Metorial-Version': options.metorialVersion ?? DEFAULT_METORIAL_VERSION,
      ...options.headers,
    },
  })
  const decode = (options.reviveDates ? reviveDates : (value: unknown) => value) as <T>(
    value: T,
  ) => Decoded<T, Dates>

  async function list(
    sessionId: SessionId,
    query: ListSessionEventsQuery = {},
    { signal }: RequestOptions = {},
  ) {
    const { data } = await raw.GET('/sessions/{sessionId}/events', {
      params: { path: { sessionId }, query },
      signal,
      middleware: [throwOnFailure],
    })
    return data! // throwOnFailure has thrown for any response without a JSON object
  }

  async function* pages(
    sessionId: SessionId,
    query: ListSessionEventsQuery = {},
    options: RequestOptions = {},
  ) {
    let pageQuery: ListSessionEventsQuery = { ...query, limit: query.limit ?? 100 }
    for (;;) {
      const page = await list(sessionId, pageQuery, options)
      yield page
      const last = page.items.at(-1)
      if (!page.pagination.has_more_after || last === undefined) return
      // The walk goes on from the cursor the server gave. Metorial's own API gives none: there,
      // `after` the last event is the same place.
      const { after: _after, before: _before, cursor: _cursor, ...rest } = pageQuery
      pageQuery = page.pagination.next_cursor
        ? { ...rest, cursor: page.pagination.next_cursor }
        : { ...rest, after: last.id }
    }
  }

  return {
    raw,
    sessionEvents: {
      list: async (sessionId, query, options) => decode(await list(sessionId, query, options)),
      async get(sessionId, sessionEventId, { signal } = {}) {
        const { data } = await raw.GET('/sessions/{sessionId}/events/{sessionEventId}', {
          params: { path: { sessionId, sessionEventId } },
          signal,
          middleware: [throwOnFailure],
        })
        return decode(data!) // as in list()
      },
      async *pages(sessionId, query, options) {
        for await (const page of pages(sessionId, query, options)) yield decode(page)
      },
      async *iterate(sessionId, query, options) {
        for await (const page of pages(sessionId, query, options)) {
          for (const event of page.items) {
            // An abort stops the walk at once, not at the end of the page in hand.
            options?.signal?.throwIfAborted()
            yield decode(event)
          }
        }
      },
    },
  }
}

/**
 * Turns every response without a usable body into a thrown SessionEventsError, before
 * openapi-fetch parses it: an error status, or a success whose body is not a JSON object
 * (openapi-fetch would throw a bare SyntaxError there). So a method's `data` is always set.
 */
const throwOnFailure: Middleware = {
  async onResponse({ response }) {
    const text = await response.clone().text()
    const json = parseJson(text)
    if (!response.ok || typeof json !== 'object' || json === null)
      throw errorFromResponse(response, text)
    return undefined
  },
}
