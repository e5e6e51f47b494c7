// The public API's types: what goes in, what comes out, and what the compiler refuses.
import { describe, expectTypeOf, it } from 'vitest'
import {
  type ApiErrorCode,
  type Fetch,
  type ListSessionEventsQuery,
  type SessionEvent,
  SessionEventsConnectionError,
  SessionEventsError,
  type SessionEventsErrorCode,
  type SessionEventList,
  SessionEventsTimeoutError,
  type ValidationIssue,
  type WithDates,
  type components,
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
    for await (const page of client.sessionEvents.pages(sessionId))
      expectTypeOf(page).toEqualTypeOf<SessionEventList>()
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
    await client.sessionEvents.list(
      sessionId,
      { cursor: 'cur_abc' },
      { signal: AbortSignal.timeout(10) },
    )
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
    expectTypeOf(event.log_lines).toEqualTypeOf<{ type: 'stdout' | 'stderr'; line: string }[]>()
    expectTypeOf(event.server_run).toMatchTypeOf<{
      started_at: Date | null
      stopped_at: Date | null
      updated_at: Date
    } | null>()
    expectTypeOf(event.server_run_error?.server_run.server.created_at).toEqualTypeOf<
      Date | undefined
    >()
    expectTypeOf(event.server_run?.server_deployment.metadata).toEqualTypeOf<
      { [key: string]: unknown } | undefined
    >()
    for await (const e of revived.sessionEvents.iterate(sessionId))
      expectTypeOf(e.created_at).toEqualTypeOf<Date>()
    const page = await revived.sessionEvents.list(sessionId)
    expectTypeOf(page.items[0]?.created_at).toEqualTypeOf<Date | undefined>()
    expectTypeOf(page.pagination.next_cursor).toEqualTypeOf<string | null>()
    expectTypeOf(reviveDates(await client.sessionEvents.get(sessionId, 'sev_1'))).toEqualTypeOf<
      WithDates<SessionEvent>
    >()

    // A boolean known only at run time gives either shape.
    const maybe = createSessionEventsClient({ apiKey: 'k', reviveDates: Math.random() > 0.5 })
    expectTypeOf((await maybe.sessionEvents.get(sessionId, 'sev_1')).created_at).toEqualTypeOf<
      string | Date
    >()
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
    expectTypeOf<SessionEventsConnectionError['code']>().toEqualTypeOf<
      'connection_error' | 'timeout'
    >()
  })
})
