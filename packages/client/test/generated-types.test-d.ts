// The generated types against a usage file that calls both operations through openapi-fetch.
import createClient from 'openapi-fetch'
import { describe, expectTypeOf, it } from 'vitest'
import type { components, paths } from '../src/generated/schema.js'

type SessionEvent = components['schemas']['SessionEvent']
const client = createClient<paths>({ baseUrl: 'http://127.0.0.1:3000' })
const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'

describe('generated client types', () => {
  it('type listSessionEvents: params in, a page out', async () => {
    const { data, error } = await client.GET('/sessions/{sessionId}/events', {
      params: {
        path: { sessionId },
        query: { limit: 50, order: 'desc', server_run_id: ['srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'], type: ['server_logs'] },
      },
    })
    expectTypeOf(data?.items).toEqualTypeOf<SessionEvent[] | undefined>()
    expectTypeOf(data?.pagination.next_cursor).toEqualTypeOf<string | null | undefined>()
    expectTypeOf(error?.code).toEqualTypeOf<components['schemas']['Error']['code'] | undefined>()
  })

  it('type getSessionEvent: the event and its nullable parts', async () => {
    const { data } = await client.GET('/sessions/{sessionId}/events/{sessionEventId}', {
      params: { path: { sessionId, sessionEventId: 'sev_0m5q3k2x1Tz8KqPw3vXyA9' } },
    })
    expectTypeOf(data).toEqualTypeOf<SessionEvent | undefined>()
    expectTypeOf<SessionEvent['type']>().toEqualTypeOf<'server_logs' | 'server_run_error'>()
    expectTypeOf<SessionEvent['server_run_error']>().toEqualTypeOf<components['schemas']['ServerRunError'] | null>()
    expectTypeOf<components['schemas']['ServerRun']['stopped_at']>().toEqualTypeOf<string | null>()
    expectTypeOf<SessionEvent['log_lines'][number]['type']>().toEqualTypeOf<'stdout' | 'stderr'>()
  })

  it('type the writes: request bodies, the Idempotency-Key header, 201s', async () => {
    const { data, error } = await client.POST('/sessions/{sessionId}/server-runs', {
      params: { path: { sessionId }, header: { 'Idempotency-Key': 'k' } },
      body: { type: 'hosted', server: { name: 'GitHub' } },
    })
    expectTypeOf(data).toEqualTypeOf<components['schemas']['ServerRun'] | undefined>()
    expectTypeOf(error?.code).toEqualTypeOf<components['schemas']['Error']['code'] | undefined>()
    expectTypeOf<'conflict' | 'idempotency_key_in_use' | 'payload_too_large' | 'idempotency_key_reused'>().toExtend<
      components['schemas']['Error']['code']
    >()
    // The body of createSession may be left out.
    const { data: session } = await client.POST('/sessions', {})
    expectTypeOf(session).toEqualTypeOf<components['schemas']['Session'] | undefined>()
    const { data: event } = await client.POST('/sessions/{sessionId}/events', {
      params: { path: { sessionId } },
      body: {
        server_run_id: 'srr_0m5q3k1f8Ab3Cd4Ef5Gh6I',
        log_lines: [{ type: 'stderr', line: 'x' }],
      },
    })
    expectTypeOf(event).toEqualTypeOf<SessionEvent | undefined>()
    // @ts-expect-error the body of startServerRun is required
    await client.POST('/sessions/{sessionId}/server-runs', { params: { path: { sessionId } } })
  })

  it('type streamSessionEvents: its query, its Last-Event-ID header, a text/event-stream body', async () => {
    const { data, response } = await client.GET('/sessions/{sessionId}/events/stream', {
      params: {
        path: { sessionId },
        query: { after: 'sev_0m5q3k2x1Tz8KqPw3vXyA9', tail: 10, type: ['server_logs'] },
        header: { 'Last-Event-ID': 'sev_0m5q3k2x1Tz8KqPw3vXyA9' },
      },
      parseAs: 'stream',
    })
    expectTypeOf(data).toEqualTypeOf<Response['body'] | undefined>()
    expectTypeOf(response).toEqualTypeOf<Response>()
    await client.GET('/sessions/{sessionId}/events/stream', {
      // @ts-expect-error a list's `limit` is not a stream's
      params: { path: { sessionId }, query: { limit: 10 } },
    })
  })

  // oxlint-disable-next-line vitest/expect-expect -- its assertions are the @ts-expect-error lines
  it('refuse what the spec does not allow', async () => {
    await client.GET('/sessions/{sessionId}/events', {
      // @ts-expect-error an unknown query parameter
      params: { path: { sessionId }, query: { page: 2 } },
    })
    await client.GET('/sessions/{sessionId}/events', {
      // @ts-expect-error a wrong enum value
      params: { path: { sessionId }, query: { order: 'newest' } },
    })
    // @ts-expect-error an unknown path
    await client.GET('/sessions/{sessionId}/logs', { params: { path: { sessionId } } })
    // @ts-expect-error the path parameter is required
    await client.GET('/sessions/{sessionId}/events', {})
  })
})
