// The public API's types: what goes in, what comes out, and what the compiler refuses.
import { describe, expectTypeOf, it } from 'vitest'
import {
  type ApiErrorCode,
  type Fetch,
  type IdempotencyKey,
  type ListSessionEventsQuery,
  type LogLine,
  type ServerRun,
  type ServerRunStart,
  type ServerRunStop,
  type Session,
  type SessionCreate,
  type SessionEvent,
  type SessionEventCreate,
  type SessionEventsResource,
  type StreamSessionEventsQuery,
  type TailOptions,
  type WriteRequestOptions,
  type SessionEventsConnectionError,
  SessionEventsError,
  type SessionEventsErrorCode,
  type SessionEventList,
  SessionEventsTimeoutError,
  type ValidationIssue,
  type WithDates,
  type components,
  type operations,
  createSessionEventsClient,
  reviveDates,
} from '../src/index.js'

const client = createSessionEventsClient({ apiKey: 'metorial_sk_test' })
const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'

describe('client types', () => {
  it('type the options', () => {
    createSessionEventsClient({
      apiKey: 'metorial_sk_test',
      baseUrl: 'http://127.0.0.1:3000',
      fetch: globalThis.fetch,
      headers: { 'x-trace': '1' },
      timeoutMs: 1000,
      maxRetries: 0,
      retryDelayMs: 1,
      maxRetryDelayMs: 10,
      metorialVersion: '2025-01-01-pulsar',
      reviveDates: false,
    })
    // Any function that takes a Request will do, such as an in-process app's fetch.
    const app = {
      fetch: (request: Request): Response | Promise<Response> => new Response(request.url),
    }
    createSessionEventsClient({
      apiKey: 'k',
      fetch: (input, init) => app.fetch(new Request(input, init)),
    })
    expectTypeOf<Fetch>().parameter(0).toEqualTypeOf<Request>()
    expectTypeOf<Fetch>().returns.toEqualTypeOf<Response | Promise<Response>>()
    // @ts-expect-error the key is required
    createSessionEventsClient({ baseUrl: 'http://127.0.0.1:3000' })
    // @ts-expect-error an unknown option
    createSessionEventsClient({ apiKey: 'k', retries: 3 })
  })

  it('type the results as the spec does', async () => {
    expectTypeOf(await client.sessionEvents.list(sessionId)).toEqualTypeOf<SessionEventList>()
    expectTypeOf(await client.sessionEvents.get(sessionId, 'sev_1')).toEqualTypeOf<SessionEvent>()
    for await (const page of client.sessionEvents.pages(sessionId)) expectTypeOf(page).toEqualTypeOf<SessionEventList>()
    for await (const event of client.sessionEvents.iterate(sessionId)) {
      expectTypeOf(event).toEqualTypeOf<SessionEvent>()
      expectTypeOf(event.created_at).toEqualTypeOf<string>()
    }
    expectTypeOf<SessionEvent>().toEqualTypeOf<components['schemas']['SessionEvent']>()
  })

  it('type the query from the spec', async () => {
    expectTypeOf<ListSessionEventsQuery['order']>().toEqualTypeOf<'asc' | 'desc' | undefined>()
    await client.sessionEvents.list(sessionId, {
      limit: 5,
      order: 'desc',
      type: ['server_logs'],
      server_run_id: ['srr_1'],
    })
    await client.sessionEvents.list(sessionId, { cursor: 'cur_abc' }, { signal: AbortSignal.timeout(10) })
    // @ts-expect-error a wrong enum value
    await client.sessionEvents.list(sessionId, { order: 'newest' })
    // @ts-expect-error an unknown query parameter
    await client.sessionEvents.list(sessionId, { page: 2 })
    // @ts-expect-error filters are arrays
    await client.sessionEvents.list(sessionId, { type: 'server_logs' })
    // @ts-expect-error the event id is required
    await client.sessionEvents.get(sessionId)
  })

  it('type revived dates honestly', async () => {
    const revived = createSessionEventsClient({ apiKey: 'k', reviveDates: true })
    const event = await revived.sessionEvents.get(sessionId, 'sev_1')
    expectTypeOf(event).toEqualTypeOf<WithDates<SessionEvent>>()
    expectTypeOf(event.created_at).toEqualTypeOf<Date>()
    expectTypeOf(event.id).toEqualTypeOf<string>()
    // Strings stay strings: a line's `time` is a pattern, not a `date-time` to revive.
    expectTypeOf(event.log_lines).toEqualTypeOf<
      {
        type: 'stdout' | 'stderr'
        line: string
        time?: string
        severity_text?: string
        trace_id?: string
        span_id?: string
      }[]
    >()
    expectTypeOf(event.server_run).toMatchTypeOf<{
      started_at: Date | null
      stopped_at: Date | null
      updated_at: Date
    } | null>()
    expectTypeOf(event.server_run_error?.server_run.server.created_at).toEqualTypeOf<Date | undefined>()
    expectTypeOf(event.server_run?.server_deployment.metadata).toEqualTypeOf<{ [key: string]: unknown } | undefined>()
    for await (const e of revived.sessionEvents.iterate(sessionId)) expectTypeOf(e.created_at).toEqualTypeOf<Date>()
    const page = await revived.sessionEvents.list(sessionId)
    expectTypeOf(page.items[0]?.created_at).toEqualTypeOf<Date | undefined>()
    expectTypeOf(page.pagination.next_cursor).toEqualTypeOf<string | null>()
    expectTypeOf(reviveDates(await client.sessionEvents.get(sessionId, 'sev_1'))).toEqualTypeOf<
      WithDates<SessionEvent>
    >()

    // A boolean known only at run time gives either shape.
    const maybe = createSessionEventsClient({ apiKey: 'k', reviveDates: Math.random() > 0.5 })
    expectTypeOf((await maybe.sessionEvents.get(sessionId, 'sev_1')).created_at).toEqualTypeOf<string | Date>()
  })

  it('type the writes: bodies in and results out, all from the spec', async () => {
    expectTypeOf(await client.sessions.create()).toEqualTypeOf<Session>()
    expectTypeOf(await client.sessions.create({ metadata: { user: 'ada' } })).toEqualTypeOf<Session>()
    const run = await client.serverRuns.start(sessionId, { type: 'hosted', server: { name: 'x' } })
    expectTypeOf(run).toEqualTypeOf<ServerRun>()
    expectTypeOf(await client.serverRuns.get(sessionId, run.id)).toEqualTypeOf<ServerRun>()
    expectTypeOf(await client.serverRuns.stop(sessionId, run.id, { status: 'completed' })).toEqualTypeOf<ServerRun>()
    expectTypeOf(
      await client.events.append(sessionId, {
        server_run_id: run.id,
        log_lines: [{ type: 'stdout', line: 'x' }],
      }),
    ).toEqualTypeOf<SessionEvent>()
    expectTypeOf(client.events).toEqualTypeOf<SessionEventsResource>()
    expectTypeOf(client.sessionEvents).toEqualTypeOf(client.events)

    type Body<K extends keyof operations> = NonNullable<operations[K]['requestBody']>['content']['application/json']
    expectTypeOf<SessionCreate>().toEqualTypeOf<Body<'createSession'>>()
    expectTypeOf<ServerRunStart>().toEqualTypeOf<Body<'startServerRun'>>()
    expectTypeOf<ServerRunStop>().toEqualTypeOf<Body<'stopServerRun'>>()
    expectTypeOf<SessionEventCreate>().toEqualTypeOf<Body<'createSessionEvent'>>()
    expectTypeOf<Session>().toEqualTypeOf<components['schemas']['Session']>()
    expectTypeOf<SessionEventCreate['log_lines']>().toEqualTypeOf<LogLine[]>()
    expectTypeOf<ServerRunStop['status']>().toEqualTypeOf<'completed' | 'failed'>()
    // A field with a default in the spec stays optional in a body.
    expectTypeOf<ServerRunStart['server']['type']>().toEqualTypeOf<'public' | 'custom' | undefined>()
    expectTypeOf<WriteRequestOptions['idempotencyKey']>().toEqualTypeOf<IdempotencyKey | undefined>()
    expectTypeOf<IdempotencyKey>().toEqualTypeOf<string>()

    await client.serverRuns.start(
      sessionId,
      { type: 'external', server: { id: 'srv_1' }, server_session: { id: 'srs_1' } },
      { idempotencyKey: 'start-1', signal: AbortSignal.timeout(10) },
    )
    // @ts-expect-error the server is required
    await client.serverRuns.start(sessionId, { type: 'hosted' })
    // @ts-expect-error not a run type
    await client.serverRuns.start(sessionId, { type: 'local', server: { name: 'x' } })
    // @ts-expect-error a run is stopped as completed or failed
    await client.serverRuns.stop(sessionId, run.id, { status: 'active' })
    // @ts-expect-error an error needs its code and message
    await client.serverRuns.stop(sessionId, run.id, { status: 'failed', error: { code: 'x' } })
    await client.events.append(sessionId, {
      server_run_id: run.id,
      // @ts-expect-error a log line is stdout or stderr
      log_lines: [{ type: 'stdin', line: 'x' }],
    })
    // @ts-expect-error the lines are required
    await client.events.append(sessionId, { server_run_id: run.id })
    // @ts-expect-error a key is a string
    await client.sessions.create({}, { idempotencyKey: 1 })
    // @ts-expect-error a GET takes no key
    await client.serverRuns.get(sessionId, run.id, { idempotencyKey: 'k' })
  })

  it('type the revived dates of the writes', async () => {
    const revived = createSessionEventsClient({ apiKey: 'k', reviveDates: true })
    const run = await revived.serverRuns.start(sessionId, { type: 'hosted', server: { name: 'x' } })
    expectTypeOf(run).toEqualTypeOf<WithDates<ServerRun>>()
    expectTypeOf(run.stopped_at).toEqualTypeOf<Date | null>()
    expectTypeOf((await revived.sessions.create()).created_at).toEqualTypeOf<Date>()
    expectTypeOf(
      (await revived.events.append(sessionId, { server_run_id: run.id, log_lines: [] })).created_at,
    ).toEqualTypeOf<Date>()
  })

  it('type the tail: options from the spec, typed events out', async () => {
    expectTypeOf(client.events.tail(sessionId)).toEqualTypeOf<AsyncGenerator<SessionEvent, void, undefined>>()
    for await (const event of client.sessionEvents.tail(sessionId)) {
      expectTypeOf(event).toEqualTypeOf<SessionEvent>()
      expectTypeOf(event.created_at).toEqualTypeOf<string>()
    }
    client.events.tail(sessionId, {
      after: 'sev_0m5q3k2x1Tz8KqPw3vXyA9',
      tail: 10,
      filters: {
        type: ['server_logs', 'server_run_error'],
        server_run_id: ['srr_1'],
        server_session_id: ['srs_1'],
      },
      signal: AbortSignal.timeout(10),
    })
    expectTypeOf<StreamSessionEventsQuery>().toEqualTypeOf<
      NonNullable<operations['streamSessionEvents']['parameters']['query']>
    >()
    expectTypeOf<TailOptions['after']>().toEqualTypeOf<string | undefined>()
    expectTypeOf<TailOptions['tail']>().toEqualTypeOf<number | undefined>()
    expectTypeOf<NonNullable<TailOptions['filters']>>().toEqualTypeOf<
      Omit<StreamSessionEventsQuery, 'after' | 'tail'>
    >()
    // The same filters as a list's.
    expectTypeOf<NonNullable<TailOptions['filters']>['type']>().toEqualTypeOf<ListSessionEventsQuery['type']>()

    // @ts-expect-error filters are arrays
    client.events.tail(sessionId, { filters: { type: 'server_logs' } })
    // @ts-expect-error not a type of event
    client.events.tail(sessionId, { filters: { type: ['server_started'] } })
    // @ts-expect-error the filters go under `filters`
    client.events.tail(sessionId, { type: ['server_logs'] })
    // @ts-expect-error a list's query is not a tail's
    client.events.tail(sessionId, { limit: 5 })
    // @ts-expect-error `tail` is a number
    client.events.tail(sessionId, { tail: '10' })
    // @ts-expect-error the session id is required
    client.events.tail()

    const revived = createSessionEventsClient({ apiKey: 'k', reviveDates: true })
    for await (const event of revived.events.tail(sessionId, { tail: 1 })) {
      expectTypeOf(event).toEqualTypeOf<WithDates<SessionEvent>>()
      expectTypeOf(event.created_at).toEqualTypeOf<Date>()
    }
  })

  it('keep the raw openapi-fetch client', async () => {
    const { data, error } = await client.raw.GET('/sessions/{sessionId}/events', {
      params: { path: { sessionId } },
    })
    expectTypeOf(data).toEqualTypeOf<SessionEventList | undefined>()
    expectTypeOf(error?.code).toEqualTypeOf<ApiErrorCode | undefined>()
  })

  it('type the errors', () => {
    const error = new SessionEventsError({
      status: 404,
      code: 'not_found',
      message: 'Not found.',
      body: {},
    })
    expectTypeOf(error.status).toEqualTypeOf<number>()
    expectTypeOf(error.code).toEqualTypeOf<SessionEventsErrorCode>()
    expectTypeOf<SessionEventsErrorCode>().toEqualTypeOf<ApiErrorCode | 'malformed_response'>()
    expectTypeOf(error.hint).toEqualTypeOf<string | undefined>()
    expectTypeOf(error.entity).toEqualTypeOf<string | undefined>()
    expectTypeOf(error.errors).toEqualTypeOf<ValidationIssue[] | undefined>()
    expectTypeOf(error.requestId).toEqualTypeOf<string | undefined>()
    expectTypeOf(error.body).toBeUnknown()
    expectTypeOf(error).toMatchTypeOf<Error>()
    // @ts-expect-error not a code of this API
    new SessionEventsError({ status: 404, code: 'nope', message: 'x', body: {} })

    const timeout = new SessionEventsTimeoutError(1000)
    expectTypeOf(timeout).toMatchTypeOf<SessionEventsConnectionError>()
    expectTypeOf(timeout.code).toEqualTypeOf<'timeout'>()
    expectTypeOf<SessionEventsConnectionError['code']>().toEqualTypeOf<'connection_error' | 'timeout'>()
  })
})
