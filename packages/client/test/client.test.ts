// What the client sends, and how it walks pages, seen through a scripted fetch.
import { describe, expect, it } from 'vitest'
import { DEFAULT_BASE_URL, createSessionEventsClient, reviveDates } from '../src/index.js'
import { event, json, page, scriptedFetch } from './fake-fetch.js'

const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
const noMore = {
  has_more_before: false,
  has_more_after: false,
  next_cursor: null,
  previous_cursor: null,
}

describe('requests', () => {
  it('sends the key, the Metorial-Version and the caller headers to the default base URL', async () => {
    const fetch = scriptedFetch(page([], noMore))
    const client = createSessionEventsClient({
      apiKey: 'metorial_sk_abc',
      fetch,
      headers: { 'x-trace': '1' },
    })
    await client.sessionEvents.list(sessionId)
    const [request] = fetch.requests
    expect(request?.method).toBe('GET')
    expect(request?.url).toBe(`${DEFAULT_BASE_URL}/sessions/${sessionId}/events`)
    expect(request?.headers.get('authorization')).toBe('Bearer metorial_sk_abc')
    expect(request?.headers.get('metorial-version')).toBe('2025-01-01-pulsar')
    expect(request?.headers.get('x-trace')).toBe('1')
  })

  it('takes another base URL and Metorial-Version', async () => {
    const fetch = scriptedFetch(json(200, event('sev_1')))
    const client = createSessionEventsClient({
      apiKey: 'metorial_sk_abc',
      baseUrl: 'http://127.0.0.1:3000/',
      metorialVersion: '2025-01-01',
      fetch,
    })
    await client.sessionEvents.get(sessionId, 'sev_1')
    expect(fetch.requests[0]?.url).toBe(`http://127.0.0.1:3000/sessions/${sessionId}/events/sev_1`)
    expect(fetch.requests[0]?.headers.get('metorial-version')).toBe('2025-01-01')
  })

  it('sends array filters as repeated keys and leaves unset parameters out', async () => {
    const fetch = scriptedFetch(page([], noMore))
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    await client.sessionEvents.list(sessionId, {
      limit: 10,
      order: 'desc',
      type: ['server_run_error'],
      server_run_id: ['srr_a', 'srr_b'],
      after: undefined,
    })
    const url = new URL(fetch.requests[0]!.url)
    expect([...url.searchParams]).toEqual([
      ['limit', '10'],
      ['order', 'desc'],
      ['type', 'server_run_error'],
      ['server_run_id', 'srr_a'],
      ['server_run_id', 'srr_b'],
    ])
  })

  it('refuses to start without an API key', () => {
    expect(() => createSessionEventsClient({ apiKey: '' })).toThrow(/apiKey/)
  })
})

describe('pagination', () => {
  it('follows next_cursor while has_more_after, dropping the starting after', async () => {
    const fetch = scriptedFetch(
      page([event('sev_2'), event('sev_3')], {
        ...noMore,
        has_more_before: true,
        has_more_after: true,
        next_cursor: 'cur_x',
      }),
      page([event('sev_4')], { ...noMore, has_more_before: true, next_cursor: null }),
    )
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    const ids: string[] = []
    for await (const e of client.sessionEvents.iterate(sessionId, {
      after: 'sev_1',
      order: 'asc',
      type: ['server_logs'],
    }))
      ids.push(e.id)
    expect(ids).toEqual(['sev_2', 'sev_3', 'sev_4'])
    const queries = fetch.requests.map((r) => new URL(r.url).search)
    expect(queries).toEqual([
      '?after=sev_1&order=asc&type=server_logs&limit=100',
      '?order=asc&type=server_logs&limit=100&cursor=cur_x',
    ])
  })

  it('keeps the caller limit as the page size', async () => {
    const fetch = scriptedFetch(page([], noMore))
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    for await (const _ of client.sessionEvents.pages(sessionId, { limit: 7 })) break
    expect(new URL(fetch.requests[0]!.url).searchParams.get('limit')).toBe('7')
  })

  it('goes on after the last event when the server sends no cursor, as Metorial does', async () => {
    const metorialPage = (ids: string[], more: boolean) =>
      json(200, {
        __typename: 'list',
        items: ids.map((id) => event(id)),
        pagination: { has_more_before: false, has_more_after: more },
      })
    const fetch = scriptedFetch(metorialPage(['sev_9', 'sev_8'], true), metorialPage(['sev_7'], false))
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    const pages = []
    for await (const p of client.sessionEvents.pages(sessionId, { order: 'desc' })) pages.push(p.items.map((e) => e.id))
    expect(pages).toEqual([['sev_9', 'sev_8'], ['sev_7']])
    expect(new URL(fetch.requests[1]!.url).search).toBe('?order=desc&limit=100&after=sev_8')
  })

  it('stops at an empty page', async () => {
    const fetch = scriptedFetch(page([], { ...noMore, has_more_after: true, next_cursor: 'cur_x' }))
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    const events = []
    for await (const e of client.sessionEvents.iterate(sessionId)) events.push(e)
    expect(events).toEqual([])
    expect(fetch.requests).toHaveLength(1)
  })
})

describe('sessions', () => {
  const session = (id: string) => ({ object: 'session', id, status: 'active', metadata: {} })
  const sessionPage = (ids: string[], pagination: Record<keyof typeof noMore, boolean | string | null>) =>
    json(200, { __typename: 'list', items: ids.map(session), pagination })

  it('list: GET /sessions with the query, statuses as repeated keys', async () => {
    const fetch = scriptedFetch(sessionPage(['ses_2'], noMore))
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    const page = await client.sessions.list({ limit: 5, status: ['active', 'deleted'], after: 'ses_3' })
    expect(page.items.map((s) => s.id)).toEqual(['ses_2'])
    const url = new URL(fetch.requests[0]!.url)
    expect(url.pathname).toBe('/sessions')
    expect([...url.searchParams]).toEqual([
      ['limit', '5'],
      ['status', 'active'],
      ['status', 'deleted'],
      ['after', 'ses_3'],
    ])
  })

  it('iterate: every session, page after page, following next_cursor', async () => {
    const fetch = scriptedFetch(
      sessionPage(['ses_3', 'ses_2'], { ...noMore, has_more_after: true, next_cursor: 'cur_s' }),
      sessionPage(['ses_1'], { ...noMore, has_more_before: true }),
    )
    const client = createSessionEventsClient({ apiKey: 'metorial_sk_abc', fetch })
    const ids: string[] = []
    for await (const s of client.sessions.iterate({ status: ['active'] })) ids.push(s.id)
    expect(ids).toEqual(['ses_3', 'ses_2', 'ses_1'])
    expect(fetch.requests.map((r) => new URL(r.url).search)).toEqual([
      '?status=active&limit=100',
      '?status=active&limit=100&cursor=cur_s',
    ])
  })
})

describe('reviveDates', () => {
  const run = {
    created_at: '2025-07-20T12:25:37.500Z',
    started_at: '2025-07-20T12:25:37.812Z',
    stopped_at: null,
    server: { name: 'GitHub', updated_at: '2025-06-30T16:01:44.907Z' },
  }
  const sample = {
    ...event('sev_1'),
    server_run: run,
    log_lines: [{ type: 'stdout', line: '2025-07-20T12:25:38.980Z' }],
    metadata: { at: 'x' },
  }

  it('turns every *_at string into a Date, at any depth, and nothing else', () => {
    const revived = reviveDates(sample)
    expect(revived.created_at).toEqual(new Date('2025-07-20T12:25:38.980Z'))
    expect(revived.server_run.started_at).toEqual(new Date('2025-07-20T12:25:37.812Z'))
    expect(revived.server_run.stopped_at).toBeNull()
    expect(revived.server_run.server.updated_at).toBeInstanceOf(Date)
    expect(revived.log_lines[0]?.line).toBe('2025-07-20T12:25:38.980Z')
    expect(revived.metadata).toEqual({ at: 'x' })
    expect(sample.created_at).toBe('2025-07-20T12:25:38.980Z')
  })

  it('is off by default and on with reviveDates: true, for every method', async () => {
    const body = () => json(200, sample)
    const plain = createSessionEventsClient({ apiKey: 'k', fetch: scriptedFetch(body()) })
    expect((await plain.sessionEvents.get(sessionId, 'sev_1')).created_at).toBe('2025-07-20T12:25:38.980Z')

    const fetch = scriptedFetch(body(), page([sample], noMore), page([sample], noMore), page([sample], noMore))
    const revived = createSessionEventsClient({ apiKey: 'k', fetch, reviveDates: true })
    expect((await revived.sessionEvents.get(sessionId, 'sev_1')).created_at).toBeInstanceOf(Date)
    expect((await revived.sessionEvents.list(sessionId)).items[0]?.created_at).toBeInstanceOf(Date)
    for await (const p of revived.sessionEvents.pages(sessionId)) expect(p.items[0]?.created_at).toBeInstanceOf(Date)
    for await (const e of revived.sessionEvents.iterate(sessionId)) expect(e.created_at).toBeInstanceOf(Date)
  })
})
