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
