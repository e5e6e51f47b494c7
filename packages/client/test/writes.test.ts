// The writes, seen through a scripted fetch: what each method sends, the Idempotency-Key every
// POST carries, and retries that send the same key and the same body again.
import { describe, expect, it } from 'vitest'
import {
  DEFAULT_BASE_URL,
  SessionEventsError,
  type SessionEventCreate,
  type SessionEventsClientOptions,
  createSessionEventsClient,
} from '../src/index.js'
import { type Step, apiError, brokenBody, connectionRefused, event, json, scriptedFetch } from './fake-fetch.js'

const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
const serverRunId = 'srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'
/** A UUIDv7 (RFC 9562): its first 48 bits the time it was made, which the API keeps its answer by. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
const timeOf = (key: string | null | undefined) => parseInt(`${key?.slice(0, 8)}${key?.slice(9, 13)}`, 16)

/** Stand-ins: the client passes results through without validating them. */
const session = () => json(201, { object: 'session', id: sessionId, created_at: '2025-07-20T12:25:36.901Z' })
const run = (status = 201, fields: Record<string, unknown> = {}) =>
  json(status, {
    object: 'server.server_run',
    id: serverRunId,
    status: 'active',
    stopped_at: null,
    ...fields,
  })
const lines: SessionEventCreate = {
  server_run_id: serverRunId,
  log_lines: [
    { type: 'stdout', line: 'Server listening on stdio' },
    { type: 'stderr', line: 'warn: no token' },
  ],
}

function clientWith(steps: Step[], options: Partial<SessionEventsClientOptions> = {}) {
  const fetch = scriptedFetch(...steps)
  const client = createSessionEventsClient({
    apiKey: 'metorial_sk_test',
    fetch,
    retryDelayMs: 1,
    ...options,
  })
  return { fetch, client }
}

/** What a request carried: method, URL, the headers that matter here, the body as JSON. */
async function sent(request: Request | undefined) {
  const text = await request!.text()
  return {
    method: request!.method,
    url: request!.url,
    contentType: request!.headers.get('content-type'),
    idempotencyKey: request!.headers.get('idempotency-key'),
    authorization: request!.headers.get('authorization'),
    body: text === '' ? undefined : JSON.parse(text),
  }
}

describe('what each write sends', () => {
  it('sessions.create: POST /sessions with the metadata, or with no body at all', async () => {
    const { fetch, client } = clientWith([session(), session()])
    await expect(client.sessions.create({ metadata: { user: 'ada' } })).resolves.toMatchObject({
      object: 'session',
      id: sessionId,
    })
    await client.sessions.create()
    const [withBody, bare] = await Promise.all(fetch.requests.map(sent))
    expect(withBody).toMatchObject({
      method: 'POST',
      url: `${DEFAULT_BASE_URL}/sessions`,
      contentType: 'application/json',
      authorization: 'Bearer metorial_sk_test',
      body: { metadata: { user: 'ada' } },
    })
    expect(withBody?.idempotencyKey).toMatch(UUID)
    expect(Math.abs(timeOf(withBody?.idempotencyKey) - Date.now())).toBeLessThan(60_000)
    // A bare POST, which the API takes: no body, so no Content-Type either.
    expect(bare).toMatchObject({ method: 'POST', contentType: null, body: undefined })
    expect(bare?.idempotencyKey).toMatch(UUID)
    expect(bare?.idempotencyKey).not.toBe(withBody?.idempotencyKey)
  })

  it('serverRuns.start: POST /sessions/{sessionId}/server-runs with the body', async () => {
    const { fetch, client } = clientWith([run()])
    const body = {
      type: 'external',
      server: { name: 'GitHub' },
      server_session: { mcp: { version: '2025-03-26', connection_type: 'streamable_http' } },
    } as const
    await expect(client.serverRuns.start(sessionId, body)).resolves.toMatchObject({
      id: serverRunId,
      status: 'active',
    })
    expect(await sent(fetch.requests[0])).toMatchObject({
      method: 'POST',
      url: `${DEFAULT_BASE_URL}/sessions/${sessionId}/server-runs`,
      contentType: 'application/json',
      idempotencyKey: expect.stringMatching(UUID),
      body,
    })
  })

  it('serverRuns.get: GET /sessions/{sessionId}/server-runs/{serverRunId}, with no key', async () => {
    const { fetch, client } = clientWith([run(200)])
    await expect(client.serverRuns.get(sessionId, serverRunId)).resolves.toMatchObject({
      id: serverRunId,
    })
    expect(await sent(fetch.requests[0])).toMatchObject({
      method: 'GET',
      url: `${DEFAULT_BASE_URL}/sessions/${sessionId}/server-runs/${serverRunId}`,
      idempotencyKey: null,
      body: undefined,
    })
  })

  it('serverRuns.stop: POST …/server-runs/{serverRunId}/stop with the status and error', async () => {
    const { fetch, client } = clientWith([run(200, { status: 'failed' })])
    const body = {
      status: 'failed',
      error: { code: 'process_exited', message: 'Exited with 1.', metadata: { exit_code: 1 } },
    } as const
    await expect(client.serverRuns.stop(sessionId, serverRunId, body)).resolves.toMatchObject({
      status: 'failed',
    })
    expect(await sent(fetch.requests[0])).toMatchObject({
      method: 'POST',
      url: `${DEFAULT_BASE_URL}/sessions/${sessionId}/server-runs/${serverRunId}/stop`,
      idempotencyKey: expect.stringMatching(UUID),
      body,
    })
  })

  it('events.append: POST /sessions/{sessionId}/events with the run and its lines', async () => {
    const { fetch, client } = clientWith([json(201, event('sev_1'))])
    await expect(client.events.append(sessionId, lines)).resolves.toMatchObject({ id: 'sev_1' })
    expect(await sent(fetch.requests[0])).toMatchObject({
      method: 'POST',
      url: `${DEFAULT_BASE_URL}/sessions/${sessionId}/events`,
      contentType: 'application/json',
      idempotencyKey: expect.stringMatching(UUID),
      body: lines,
    })
  })

  it('keeps sessionEvents as the same object as events', () => {
    const { client } = clientWith([])
    expect(client.sessionEvents).toBe(client.events)
  })

  it('sends the caller’s idempotencyKey instead of one of its own', async () => {
    const { fetch, client } = clientWith([session(), run(), run(200), json(201, event('sev_1'))])
    await client.sessions.create(undefined, { idempotencyKey: 'create-1' })
    await client.serverRuns.start(sessionId, { type: 'hosted', server: { name: 'x' } }, { idempotencyKey: 'start-1' })
    await client.serverRuns.stop(sessionId, serverRunId, { status: 'completed' }, { idempotencyKey: 'stop-1' })
    await client.events.append(sessionId, lines, { idempotencyKey: 'append-1' })
    expect(fetch.requests.map((r) => r.headers.get('idempotency-key'))).toEqual([
      'create-1',
      'start-1',
      'stop-1',
      'append-1',
    ])
  })

  it('gives a POST of the raw client a key too, and keeps one the caller set', async () => {
    const { fetch, client } = clientWith([session(), session()])
    await client.raw.POST('/sessions', {})
    await client.raw.POST('/sessions', { params: { header: { 'Idempotency-Key': 'mine' } } })
    expect(fetch.requests[0]?.headers.get('idempotency-key')).toMatch(UUID)
    expect(fetch.requests[1]?.headers.get('idempotency-key')).toBe('mine')
  })

  it('revives the dates of a write’s result when asked to', async () => {
    const started = await createSessionEventsClient({
      apiKey: 'k',
      fetch: scriptedFetch(run(201, { created_at: '2025-07-20T12:40:02.114Z' })),
      reviveDates: true,
    }).serverRuns.start(sessionId, { type: 'hosted', server: { name: 'x' } })
    expect(started.created_at).toEqual(new Date('2025-07-20T12:40:02.114Z'))
    expect(started.stopped_at).toBeNull()
  })
})

describe('retrying a write', () => {
  /** Every request of the call: the same key and the same body bytes. */
  async function expectSameKeyAndBody(requests: Request[], count: number) {
    expect(requests).toHaveLength(count)
    const seen = await Promise.all(requests.map(sent))
    const first = seen[0]!
    expect(first.idempotencyKey).toMatch(UUID)
    for (const request of seen) {
      expect(request.idempotencyKey).toBe(first.idempotencyKey)
      expect(request.body).toEqual(first.body)
      expect(request.contentType).toBe('application/json')
    }
    return first
  }

  it('after a 503: the same key and the same body', async () => {
    const { fetch, client } = clientWith([apiError(503, 'service_unavailable', 'Later.'), json(201, event('sev_1'))])
    await expect(client.events.append(sessionId, lines)).resolves.toMatchObject({ id: 'sev_1' })
    expect((await expectSameKeyAndBody(fetch.requests, 2)).body).toEqual(lines)
  })

  it('after a connection that is refused, then one that drops mid-response', async () => {
    const { fetch, client } = clientWith([connectionRefused(), brokenBody(), run()], {
      maxRetries: 2,
    })
    const body = { type: 'hosted', server: { name: 'GitHub' } } as const
    await expect(client.serverRuns.start(sessionId, body)).resolves.toMatchObject({
      id: serverRunId,
    })
    expect((await expectSameKeyAndBody(fetch.requests, 3)).body).toEqual(body)
  })

  it('after a timeout, with the caller’s key', async () => {
    const { fetch, client } = clientWith(['hang', run(200)], { timeoutMs: 20 })
    await client.serverRuns.stop(sessionId, serverRunId, { status: 'completed' }, { idempotencyKey: 'stop-1' })
    expect(fetch.requests.map((r) => r.headers.get('idempotency-key'))).toEqual(['stop-1', 'stop-1'])
    expect(await Promise.all(fetch.requests.map((r) => r.text()))).toEqual([
      '{"status":"completed"}',
      '{"status":"completed"}',
    ])
  })

  it('retries a 409 idempotency_key_in_use, honouring its Retry-After', async () => {
    const inUse = json(
      409,
      {
        __typename: 'error',
        ok: false,
        status: 409,
        code: 'idempotency_key_in_use',
        message: 'A request with this Idempotency-Key is still being processed.',
      },
      { 'retry-after': '0' },
    )
    const { fetch, client } = clientWith([inUse, json(201, event('sev_1'))], {
      maxRetryDelayMs: 0,
    })
    await expect(client.events.append(sessionId, lines)).resolves.toMatchObject({ id: 'sev_1' })
    await expectSameKeyAndBody(fetch.requests, 2)
  })

  it('does not retry a 409 idempotency_key_in_use that asks for a longer wait than maxRetryDelayMs', async () => {
    const inUse = json(
      409,
      {
        __typename: 'error',
        ok: false,
        status: 409,
        code: 'idempotency_key_in_use',
        message: 'Still in flight.',
      },
      { 'retry-after': '120' },
    )
    const { fetch, client } = clientWith([inUse, json(201, event('sev_1'))])
    await expect(client.events.append(sessionId, lines)).rejects.toMatchObject({
      status: 409,
      code: 'idempotency_key_in_use',
    })
    expect(fetch.requests).toHaveLength(1)
  })

  it.each([
    [409, 'conflict', 'The server run has stopped.'],
    [413, 'payload_too_large', 'The request body is larger than 5 MB.'],
    [422, 'idempotency_key_reused', 'This Idempotency-Key was used with another request body.'],
  ] as const)('throws a %i %s at once, typed', async (status, code, message) => {
    const { fetch, client } = clientWith([apiError(status, code, message), run()])
    const error = await client.events.append(sessionId, lines).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsError)
    expect(error).toMatchObject({ status, code, message })
    expect(fetch.requests).toHaveLength(1)
  })

  it('gives each call a key of its own', async () => {
    const { fetch, client } = clientWith([
      apiError(503, 'service_unavailable', 'Later.'),
      json(201, event('sev_1')),
      json(201, event('sev_2')),
    ])
    await client.events.append(sessionId, lines)
    await client.events.append(sessionId, lines)
    const [first, retry, second] = fetch.requests.map((r) => r.headers.get('idempotency-key'))
    expect(retry).toBe(first)
    expect(second).not.toBe(first)
  })
})
