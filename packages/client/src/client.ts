// createSessionEventsClient: openapi-fetch on the generated `paths`, with the retrying fetch of
// transport.ts underneath (which also gives every POST its Idempotency-Key) and methods that
// throw typed errors instead of returning them. `events.tail` follows a session (tail.ts).
import createClient, { type Client, type Middleware } from 'openapi-fetch'
import { type WithDates, reviveDates } from './dates.js'
import { errorFromResponse, parseJson } from './errors.js'
import type { components, operations, paths } from './generated/schema.js'
import * as specValues from './generated/values.js'
import { type TailOptions, tailSessionEvents } from './tail.js'
import { type Fetch, type RetryOptions, retryingFetch } from './transport.js'
import type {
  IdempotencyKey,
  ListSessionEventsQuery,
  ListSessionsQuery,
  ServerRun,
  ServerRunStart,
  ServerRunStop,
  Session,
  SessionCreate,
  SessionEvent,
  SessionEventCreate,
  SessionEventList,
  SessionList,
} from './types.js'

/** Metorial's hosted API, the spec's first server; its second is a local one started with `npm start`. */
export const DEFAULT_BASE_URL = specValues.servers[0].url
/** The API version the client was written for, sent as `Metorial-Version` (the spec's default). */
export const DEFAULT_METORIAL_VERSION = specValues.parameters.MetorialVersionRequest.schema.default

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
  /**
   * Retries of a 429, 502, 503, 504, 409 `idempotency_key_in_use`, network failure or timeout,
   * for every method: a POST is sent again with the same Idempotency-Key and body. Default 2.
   */
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

/** The options of a write (a POST). */
export interface WriteRequestOptions extends RequestOptions {
  /**
   * Sent as `Idempotency-Key`. Default: a UUIDv7 made for the call, which each of its
   * retries sends again. Give your own to repeat a call safely across processes (after a
   * crash, say): for 24 hours the API answers the same key and body with the first answer.
   */
  idempotencyKey?: IdempotencyKey
}

/** A result as the client returns it: with Date timestamps when `reviveDates` is true. */
export type Decoded<T, Dates extends boolean> = Dates extends true ? WithDates<T> : T

type SessionId = operations['listSessionEvents']['parameters']['path']['sessionId']
type SessionEventId = operations['getSessionEvent']['parameters']['path']['sessionEventId']
type ServerRunId = operations['getServerRun']['parameters']['path']['serverRunId']

export interface SessionsResource<Dates extends boolean = false> {
  /** One page of the instance's sessions, newest first. */
  list(query?: ListSessionsQuery, options?: RequestOptions): Promise<Decoded<SessionList, Dates>>
  /**
   * Every page from where `query` starts, newest first, following `pagination.next_cursor` while
   * `has_more_after`. Pages hold as many sessions as the spec's `limit` allows, unless
   * `query.limit` says otherwise.
   */
  pages(
    query?: ListSessionsQuery,
    options?: RequestOptions,
  ): AsyncGenerator<Decoded<SessionList, Dates>, void, undefined>
  /** Every session from where `query` starts, newest first, page after page. */
  iterate(query?: ListSessionsQuery, options?: RequestOptions): AsyncGenerator<Decoded<Session, Dates>, void, undefined>
  /** Creates a session, `active`; `body` (its metadata) may be left out. */
  create(body?: SessionCreate, options?: WriteRequestOptions): Promise<Decoded<Session, Dates>>
}

export interface ServerRunsResource<Dates extends boolean = false> {
  /** Starts a run of an MCP server in the session: `active`, `started_at` now. */
  start(sessionId: SessionId, body: ServerRunStart, options?: WriteRequestOptions): Promise<Decoded<ServerRun, Dates>>
  /** One run of the session, as it is now. */
  get(sessionId: SessionId, serverRunId: ServerRunId, options?: RequestOptions): Promise<Decoded<ServerRun, Dates>>
  /**
   * Stops the run as `completed`, or `failed` with the `error` that ended it. Stopping a stopped
   * run again the same way answers the run; another way throws a 409 `conflict`.
   */
  stop(
    sessionId: SessionId,
    serverRunId: ServerRunId,
    body: ServerRunStop,
    options?: WriteRequestOptions,
  ): Promise<Decoded<ServerRun, Dates>>
}

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
   * `has_more_after`. Pages hold as many events as the spec's `limit` allows, unless
   * `query.limit` says otherwise.
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
  /**
   * Appends log lines of an active run (at most the spec's `maxItems`) as one `server_logs`
   * event. A run that has stopped throws a 409 `conflict`.
   */
  append(
    sessionId: SessionId,
    body: SessionEventCreate,
    options?: WriteRequestOptions,
  ): Promise<Decoded<SessionEvent, Dates>>
  /**
   * Follows the session (`streamSessionEvents`): yields each event as it is written, from now
   * on (or after `after`, or the last `tail` first), for as long as you read. After a dropped
   * connection or a 429, 502, 503 or 504 it reconnects by itself, with backoff, resuming after
   * the last event it yielded: none is missed, none comes twice. Throws a SessionEventsError for
   * a 400, 401, 403, 404 or 500; returns when `signal` aborts or you break out of the loop.
   */
  tail(sessionId: SessionId, options?: TailOptions): AsyncGenerator<Decoded<SessionEvent, Dates>, void, undefined>
}

export interface SessionEventsClient<Dates extends boolean = false> {
  readonly sessions: SessionsResource<Dates>
  readonly serverRuns: ServerRunsResource<Dates>
  /** The events of a session: read them, or append log lines. */
  readonly events: SessionEventsResource<Dates>
  /** The same object as `events`, under its first name. */
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
    throw new TypeError('createSessionEventsClient: `apiKey` is required (a secret key, metorial_sk_…).')
  }
  const fetch: Fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const retry: RetryOptions = {
    maxRetries: options.maxRetries ?? 2,
    timeoutMs: options.timeoutMs ?? 60_000,
    retryDelayMs: options.retryDelayMs ?? 500,
    maxRetryDelayMs: options.maxRetryDelayMs ?? 60_000,
  }
  const raw = createClient<paths>({
    baseUrl: options.baseUrl ?? DEFAULT_BASE_URL,
    fetch: retryingFetch(fetch, retry),
    headers: {
      Authorization: `Bearer ${options.apiKey}`,
      'Metorial-Version': options.metorialVersion ?? DEFAULT_METORIAL_VERSION,
      ...options.headers,
    },
  })
  const decode = (options.reviveDates ? reviveDates : (value: unknown) => value) as <T>(value: T) => Decoded<T, Dates>

  async function list(sessionId: SessionId, query: ListSessionEventsQuery = {}, { signal }: RequestOptions = {}) {
    const { data } = await raw.GET('/sessions/{sessionId}/events', {
      params: { path: { sessionId }, query },
      signal,
      middleware: [throwOnFailure],
    })
    return data! // throwOnFailure has thrown for any response without a JSON object
  }

  async function listSessions(query: ListSessionsQuery = {}, { signal }: RequestOptions = {}) {
    const { data } = await raw.GET('/sessions', {
      params: { query },
      signal,
      middleware: [throwOnFailure],
    })
    return data! // as in list()
  }

  // The fewest requests: pages as large as the spec allows.
  const pages = (sessionId: SessionId, query: ListSessionEventsQuery = {}, options: RequestOptions = {}) =>
    walk((q) => list(sessionId, q, options), query, specValues.parameters.Limit.schema.maximum)
  const sessionPages = (query: ListSessionsQuery = {}, options: RequestOptions = {}) =>
    walk((q) => listSessions(q, options), query, specValues.parameters.SessionsLimit.schema.maximum)

  const events: SessionEventsResource<Dates> = {
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
    async append(sessionId, body, { signal, idempotencyKey } = {}) {
      const { data } = await raw.POST('/sessions/{sessionId}/events', {
        params: { path: { sessionId }, header: { 'Idempotency-Key': idempotencyKey } },
        body,
        signal,
        middleware: [throwOnFailure],
      })
      return decode(data!) // as in list()
    },
    async *tail(sessionId, options) {
      // The stream bypasses the retrying fetch (tail.ts says why): it gets the caller's fetch.
      for await (const event of tailSessionEvents({ raw, fetch, retry }, sessionId, options)) {
        yield decode(event)
      }
    },
  }

  // Without an idempotencyKey the header is left out here, and the transport makes one.
  return {
    raw,
    events,
    sessionEvents: events,
    sessions: {
      list: async (query, options) => decode(await listSessions(query, options)),
      async *pages(query, options) {
        for await (const page of sessionPages(query, options)) yield decode(page)
      },
      async *iterate(query, options) {
        for await (const page of sessionPages(query, options)) {
          for (const session of page.items) {
            options?.signal?.throwIfAborted()
            yield decode(session)
          }
        }
      },
      async create(body, { signal, idempotencyKey } = {}) {
        const { data } = await raw.POST('/sessions', {
          params: { header: { 'Idempotency-Key': idempotencyKey } },
          body,
          signal,
          middleware: [throwOnFailure],
        })
        return decode(data!) // as in list()
      },
    },
    serverRuns: {
      async start(sessionId, body, { signal, idempotencyKey } = {}) {
        const { data } = await raw.POST('/sessions/{sessionId}/server-runs', {
          params: { path: { sessionId }, header: { 'Idempotency-Key': idempotencyKey } },
          body,
          signal,
          middleware: [throwOnFailure],
        })
        return decode(data!) // as in list()
      },
      async get(sessionId, serverRunId, { signal } = {}) {
        const { data } = await raw.GET('/sessions/{sessionId}/server-runs/{serverRunId}', {
          params: { path: { sessionId, serverRunId } },
          signal,
          middleware: [throwOnFailure],
        })
        return decode(data!) // as in list()
      },
      async stop(sessionId, serverRunId, body, { signal, idempotencyKey } = {}) {
        const { data } = await raw.POST('/sessions/{sessionId}/server-runs/{serverRunId}/stop', {
          params: {
            path: { sessionId, serverRunId },
            header: { 'Idempotency-Key': idempotencyKey },
          },
          body,
          signal,
          middleware: [throwOnFailure],
        })
        return decode(data!) // as in list()
      },
    },
  }
}

type Pagination = components['schemas']['Pagination']

/** What a walk over a list needs of a query: where a page starts, and its size. */
interface PageQuery {
  limit?: number
  after?: string
  before?: string
  cursor?: string
}

/**
 * Every page of a list from where `query` starts, following `pagination.next_cursor` while
 * `has_more_after`, `maxLimit` items a page unless `query.limit` says otherwise.
 */
async function* walk<Q extends PageQuery, P extends { items: { id: string }[]; pagination: Pagination }>(
  read: (query: Q) => Promise<P>,
  query: Q,
  maxLimit: number,
): AsyncGenerator<P, void, undefined> {
  let pageQuery: Q = { ...query, limit: query.limit ?? maxLimit }
  for (;;) {
    const page = await read(pageQuery)
    yield page
    const last = page.items.at(-1)
    if (!page.pagination.has_more_after || last === undefined) return
    // The walk goes on from the cursor the server gave. Metorial's own API gives none: there,
    // `after` the last item is the same place.
    const { after: _after, before: _before, cursor: _cursor, ...rest } = pageQuery
    pageQuery = (
      page.pagination.next_cursor ? { ...rest, cursor: page.pagination.next_cursor } : { ...rest, after: last.id }
    ) as Q
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
    if (!response.ok || typeof json !== 'object' || json === null) throw errorFromResponse(response, text)
    return undefined
  },
}
