// client.events.tail against scripted streams: each body is a ReadableStream the test controls,
// cut at odd places, so that every fault of a long-lived connection can be produced on cue.
// The real server is followed in tail.e2e.test.ts.
import { describe, expect, it, vi } from 'vitest'
import {
  SessionEventsConnectionError,
  SessionEventsError,
  type SessionEventsClientOptions,
  type TailOptions,
  createSessionEventsClient,
} from '../src/index.js'
import {
  type Step,
  apiError,
  bytePieces,
  connectionRefused,
  event,
  eventStream,
  json,
  scriptedFetch,
  sseMessage,
} from './fake-fetch.js'

const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
/** Event ids that sort as their numbers do, as the API's do. */
const id = (n: number) => `sev_${String(n).padStart(22, '0')}`
const logEvent = (n: number, line = `line ${n}`) => ({
  ...event(id(n), `2025-07-20T12:25:${String(n % 60).padStart(2, '0')}.000Z`),
  type: 'server_logs',
  log_lines: [{ type: 'stdout', line }],
})
const message = (n: number) => sseMessage(logEvent(n))

function clientWith(steps: Step[], options: Partial<SessionEventsClientOptions> = {}) {
  const fetch = scriptedFetch(...steps)
  const client = createSessionEventsClient({
    apiKey: 'metorial_sk_test',
    baseUrl: 'http://api.test',
    fetch,
    retryDelayMs: 1,
    ...options,
  })
  return { fetch, client }
}

/** The ids of the first `count` events the tail yields; then it breaks out of the loop. */
async function take(
  client: ReturnType<typeof createSessionEventsClient>,
  count: number,
  options?: TailOptions,
): Promise<string[]> {
  const ids: string[] = []
  for await (const sessionEvent of client.events.tail(sessionId, options)) {
    ids.push(sessionEvent.id)
    if (ids.length === count) break
  }
  return ids
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5))

describe('client.events.tail: reading the stream', () => {
  it('yields typed events in order, from messages cut anywhere, with CRLF, a retry: line and keep-alives', async () => {
    const text =
      'retry: 2000\r\n\r\n' +
      sseMessage(logEvent(1, 'Server listening on stdio'), '\r\n') +
      ': keep-alive\r\n\r\n' +
      // Another kind of message, which a later API may send: skipped.
      'event: session.notice\r\ndata: {"hello":true}\r\n\r\n' +
      sseMessage(logEvent(2, 'café ☕ ok 🚀'), '\r\n') +
      sseMessage(logEvent(3), '\r\n')
    // 7 bytes a chunk: lines, CRLFs and the multi-byte characters are split across reads.
    const stream = eventStream(bytePieces(text, 7))
    const { fetch, client } = clientWith([stream.response])

    const events = []
    for await (const sessionEvent of client.events.tail(sessionId)) {
      events.push(sessionEvent)
      if (events.length === 3) break
    }
    expect(events.map((e) => e.id)).toEqual([id(1), id(2), id(3)])
    expect(events[0]).toEqual(logEvent(1, 'Server listening on stdio'))
    expect(events[1]?.log_lines).toEqual([{ type: 'stdout', line: 'café ☕ ok 🚀' }])
    expect(events[1]?.created_at).toBe('2025-07-20T12:25:02.000Z')
    expect(fetch.requests).toHaveLength(1)
  })

  it('asks for the stream with the usual headers, Accept: text/event-stream, the query and the filters', async () => {
    const { fetch, client } = clientWith([eventStream([message(6)]).response], {
      headers: { 'x-trace': 'abc' },
    })
    await take(client, 1, {
      after: id(5),
      tail: 10,
      filters: {
        type: ['server_logs', 'server_run_error'],
        server_run_id: ['srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'],
        server_session_id: ['srs_0m5q3k0a7Op9Qr0St1Uv2W'],
      },
    })
    const [request] = fetch.requests
    const url = new URL(request!.url)
    expect(url.origin + url.pathname).toBe(`http://api.test/sessions/${sessionId}/events/stream`)
    expect(url.searchParams.getAll('type')).toEqual(['server_logs', 'server_run_error'])
    expect(url.searchParams.get('server_run_id')).toBe('srr_0m5q3k1f8Ab3Cd4Ef5Gh6I')
    expect(url.searchParams.get('server_session_id')).toBe('srs_0m5q3k0a7Op9Qr0St1Uv2W')
    expect(url.searchParams.get('after')).toBe(id(5))
    expect(url.searchParams.get('tail')).toBe('10')
    expect(request!.method).toBe('GET')
    expect(request!.headers.get('accept')).toBe('text/event-stream')
    expect(request!.headers.get('authorization')).toBe('Bearer metorial_sk_test')
    expect(request!.headers.get('metorial-version')).toBe('2025-01-01-pulsar')
    expect(request!.headers.get('x-trace')).toBe('abc')
    expect(request!.headers.has('last-event-id')).toBe(false)
    expect(request!.headers.has('idempotency-key')).toBe(false)
  })

  it('revives dates when the client does, under both names', async () => {
    const client = createSessionEventsClient({
      apiKey: 'metorial_sk_test',
      fetch: scriptedFetch(eventStream([message(1)]).response, eventStream([message(2)]).response),
      reviveDates: true,
    })
    for await (const sessionEvent of client.events.tail(sessionId)) {
      expect(sessionEvent.created_at).toEqual(new Date('2025-07-20T12:25:01.000Z'))
      break
    }
    for await (const sessionEvent of client.sessionEvents.tail(sessionId)) {
      expect(sessionEvent.created_at).toEqual(new Date('2025-07-20T12:25:02.000Z'))
      break
    }
  })

  it('throws malformed_response for a 200 that is not an event stream, without retrying', async () => {
    const { fetch, client } = clientWith([json(200, { items: [] }), eventStream([]).response])
    const error = await take(client, 1).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsError)
    expect(error).toMatchObject({ status: 200, code: 'malformed_response' })
    expect((error as Error).message).toContain('application/json')
    expect(fetch.requests).toHaveLength(1)
  })

  it('throws malformed_response for a session.event whose data is not an event', async () => {
    const stream = eventStream(['id: sev_1\nevent: session.event\ndata: <html>\n\n'])
    const { client } = clientWith([stream.response])
    await expect(take(client, 1)).rejects.toMatchObject({
      code: 'malformed_response',
      body: '<html>',
    })
    await vi.waitFor(() => expect(stream.cancelled).toBe(true))
  })
})

describe('client.events.tail: reconnecting', () => {
  it('reconnects after the body drops mid-stream, sending Last-Event-ID = the last id yielded, and not `after`', async () => {
    const first = eventStream([message(1), message(2)], 'drop')
    const second = eventStream([message(3)])
    const { fetch, client } = clientWith([first.response, second.response])
    const filters: TailOptions['filters'] = { type: ['server_logs'] }
    expect(await take(client, 3, { after: id(0), tail: 5, filters })).toEqual([id(1), id(2), id(3)])

    expect(fetch.requests).toHaveLength(2)
    const [opening, reconnect] = fetch.requests.map((r) => new URL(r.url))
    expect(opening!.searchParams.get('after')).toBe(id(0))
    expect(fetch.requests[1]!.headers.get('last-event-id')).toBe(id(2))
    // Resuming after the last event: neither `after` nor `tail` again; the filters stay.
    expect(reconnect!.searchParams.has('after')).toBe(false)
    expect(reconnect!.searchParams.has('tail')).toBe(false)
    expect(reconnect!.searchParams.getAll('type')).toEqual(['server_logs'])
    expect(fetch.requests[1]!.headers.get('accept')).toBe('text/event-stream')
    expect(fetch.requests[1]!.headers.get('authorization')).toBe('Bearer metorial_sk_test')
  })

  it('reconnects when the server ends the stream, and after a network failure', async () => {
    const { fetch, client } = clientWith([
      eventStream([message(1)], 'end').response,
      connectionRefused(),
      eventStream([message(2)]).response,
    ])
    expect(await take(client, 2)).toEqual([id(1), id(2)])
    expect(fetch.requests.map((r) => r.headers.get('last-event-id'))).toEqual([null, id(1), id(1)])
  })

  it('tells onConnection when a stream opens, and when one is lost or an attempt fails, with why', async () => {
    const { client } = clientWith([
      eventStream([message(1)], 'end').response,
      connectionRefused(),
      eventStream([message(2)]).response,
    ])
    const told: [boolean, string | undefined][] = []
    const onConnection = (connected: boolean, error?: Error) => told.push([connected, error?.constructor.name])
    expect(await take(client, 2, { onConnection })).toEqual([id(1), id(2)])
    expect(told).toEqual([
      [true, undefined],
      [false, 'SessionEventsConnectionError'],
      [false, 'SessionEventsConnectionError'],
      [true, undefined],
    ])
  })

  it('sends the latest id on every reconnect, not the first one', async () => {
    const { fetch, client } = clientWith([
      eventStream([message(1)], 'drop').response,
      eventStream([message(2), message(3)], 'drop').response,
      eventStream([message(4)], 'end').response,
      eventStream([message(5)]).response,
    ])
    expect(await take(client, 5)).toEqual([1, 2, 3, 4, 5].map(id))
    expect(fetch.requests.map((r) => r.headers.get('last-event-id'))).toEqual([null, id(1), id(3), id(4)])
  })

  it('never yields an event twice across a reconnect, and never skips one cut off by the drop', async () => {
    const whole = message(1) + message(2) + message(3)
    // The connection drops in the middle of event 3: it was never complete, so never yielded.
    const cut = whole.length - 40
    const first = eventStream([whole.slice(0, cut)], 'drop')
    // A server (or a proxy's cache) that sends again what was sent already, then what is new.
    const second = eventStream([message(1) + message(2), message(3) + message(4)])
    const { client } = clientWith([first.response, second.response])
    expect(await take(client, 4)).toEqual([1, 2, 3, 4].map(id))
  })

  it('resumes where the server said the stream stood when it drops before its first event', async () => {
    const { fetch, client } = clientWith([
      eventStream([`retry: 2000\n\nid: ${id(7)}\nevent: session.position\ndata:\n\n`], 'drop').response,
      eventStream([message(8)]).response,
    ])
    expect(await take(client, 1, { tail: 3 })).toEqual([id(8)])
    const reconnect = fetch.requests[1]!
    expect(reconnect.headers.get('last-event-id')).toBe(id(7))
    expect(new URL(reconnect.url).searchParams.has('tail')).toBe(false)
  })

  it('starts over as asked when it drops before its first event and before the server said where it stood', async () => {
    const { fetch, client } = clientWith([
      eventStream(['retry: 2000\n\n'], 'drop').response,
      eventStream([message(1)]).response,
    ])
    expect(await take(client, 1, { tail: 3 })).toEqual([id(1)])
    const reconnect = fetch.requests[1]!
    expect(reconnect.headers.has('last-event-id')).toBe(false)
    expect(new URL(reconnect.url).searchParams.get('tail')).toBe('3')
  })

  it.each([429, 502, 503, 504])('retries a %i, then follows', async (status) => {
    const { fetch, client } = clientWith([
      apiError(status, 'service_unavailable', 'Try again.'),
      eventStream([message(1)]).response,
    ])
    expect(await take(client, 1)).toEqual([id(1)])
    expect(fetch.requests).toHaveLength(2)
  })

  it('waits as long as Retry-After says before it reconnects', async () => {
    const unavailable = json(
      503,
      {
        __typename: 'error',
        ok: false,
        status: 503,
        code: 'service_unavailable',
        message: 'Later.',
      },
      { 'retry-after': '1' },
    )
    const { fetch, client } = clientWith([unavailable, eventStream([message(1)]).response])
    const started = Date.now()
    expect(await take(client, 1)).toEqual([id(1)])
    expect(Date.now() - started).toBeGreaterThanOrEqual(950)
    expect(fetch.requests).toHaveLength(2)
  })

  it('throws a 429 whose Retry-After is beyond maxRetryDelayMs', async () => {
    const busy = json(
      429,
      { __typename: 'error', ok: false, status: 429, code: 'too_many_requests', message: 'Busy.' },
      { 'retry-after': '5' },
    )
    const { fetch, client } = clientWith([busy, eventStream([message(1)]).response], {
      maxRetryDelayMs: 1000,
    })
    await expect(take(client, 1)).rejects.toMatchObject({ status: 429, code: 'too_many_requests' })
    expect(fetch.requests).toHaveLength(1)
  })

  it('gives up after maxRetries when no stream ever opens', async () => {
    const refused = clientWith([connectionRefused(), connectionRefused(), connectionRefused()])
    const error = await take(refused.client, 1).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsConnectionError)
    expect((error as Error).message).toContain('ECONNREFUSED')
    expect(refused.fetch.requests).toHaveLength(3)

    const unavailable = () => apiError(503, 'service_unavailable', 'Later.')
    const busy = clientWith([unavailable(), unavailable()], { maxRetries: 1 })
    await expect(take(busy.client, 1)).rejects.toMatchObject({ status: 503 })
    expect(busy.fetch.requests).toHaveLength(2)
  })

  it('once a stream has opened, reconnects for as long as it takes, beyond maxRetries', async () => {
    const { fetch, client } = clientWith(
      [
        eventStream([message(1)], 'drop').response,
        connectionRefused(),
        apiError(503, 'service_unavailable', 'Restarting.'),
        connectionRefused(),
        eventStream([message(2)]).response,
      ],
      { maxRetries: 0 },
    )
    expect(await take(client, 2)).toEqual([id(1), id(2)])
    expect(fetch.requests).toHaveLength(5)
  })

  it('resets the backoff after a connection that delivered something', async () => {
    const times: number[] = []
    const at =
      (step: Response | Error): Step =>
      () => {
        times.push(Date.now())
        if (step instanceof Error) throw step
        return step
      }
    const { client } = clientWith(
      [
        at(eventStream([message(1)], 'drop').response),
        at(connectionRefused()),
        at(connectionRefused()),
        at(eventStream([message(2)], 'drop').response),
        at(eventStream([message(3)]).response),
      ],
      { retryDelayMs: 200, maxRetryDelayMs: 10_000 },
    )
    expect(await take(client, 3)).toEqual([1, 2, 3].map(id))
    const waits = times.slice(1).map((t, i) => t - times[i]!)
    // 100–200, 200–400, 400–800 ms: doubling while nothing comes through; then back to 100–200.
    expect(waits[2]).toBeGreaterThanOrEqual(390)
    expect(waits[3]).toBeLessThan(390)
  })

  it('timeoutMs bounds the wait for the head only: a stream goes on for longer', async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
    const slow = new Response(body, { headers: { 'content-type': 'text/event-stream' } })
    const { fetch, client } = clientWith([slow], { timeoutMs: 30 })
    const ids: string[] = []
    const reading = (async () => {
      for await (const sessionEvent of client.events.tail(sessionId)) {
        ids.push(sessionEvent.id)
        if (ids.length === 2) break
      }
    })()
    controller.enqueue(new TextEncoder().encode(message(1)))
    await new Promise((resolve) => setTimeout(resolve, 120))
    controller.enqueue(new TextEncoder().encode(message(2)))
    await reading
    expect(ids).toEqual([id(1), id(2)])
    expect(fetch.requests).toHaveLength(1)
  })

  it.each(['hang', 'hang-deaf'] as const)(
    'retries a head that does not come within timeoutMs (a fetch that %s)',
    async (step) => {
      const { fetch, client } = clientWith([step, eventStream([message(1)]).response], {
        timeoutMs: 30,
      })
      expect(await take(client, 1)).toEqual([id(1)])
      expect(fetch.requests).toHaveLength(2)
    },
  )
})

describe('client.events.tail: a silent connection', () => {
  it('ends a stream that sends nothing for idleTimeoutMs and resumes after the last event, none twice', async () => {
    // The first connection goes silent (a half-open TCP connection: no end, no error, no bytes).
    const silent = eventStream([message(1), message(2)], 'hang')
    // The server sends event 2 again (as a proxy's replay might), then what is new.
    const next = eventStream([message(2) + message(3)])
    const { fetch, client } = clientWith([silent.response, next.response])
    expect(await take(client, 3, { idleTimeoutMs: 50 })).toEqual([1, 2, 3].map(id))
    expect(fetch.requests.map((r) => r.headers.get('last-event-id'))).toEqual([null, id(2)])
    expect(silent.cancelled).toBe(true)
  })

  it('waits 45 s by default: three of the server’s 15 s keep-alives missed', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const { fetch, client } = clientWith([eventStream([message(1)]).response, eventStream([message(2)]).response])
      const tail = client.events.tail(sessionId)
      expect((await tail.next()).value?.id).toBe(id(1))
      const second = tail.next()
      await vi.advanceTimersByTimeAsync(44_999)
      expect(fetch.requests).toHaveLength(1)
      await vi.advanceTimersByTimeAsync(1 + 10) // the watchdog, then the backoff (retryDelayMs 1)
      expect((await second).value?.id).toBe(id(2))
      expect(fetch.requests[1]!.headers.get('last-event-id')).toBe(id(1))
      await tail.return()
    } finally {
      vi.useRealTimers()
    }
  })

  it('keeps a connection whose only bytes are keep-alives, for as long as they come', async () => {
    let controller!: ReadableStreamDefaultController<Uint8Array>
    const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) })
    const quiet = new Response(body, { headers: { 'content-type': 'text/event-stream' } })
    const { fetch, client } = clientWith([quiet])
    const reading = take(client, 1, { idleTimeoutMs: 100 })
    // 300 ms without an event, a comment every 30 ms: three times the watchdog's limit.
    for (let i = 0; i < 10; i++) {
      controller.enqueue(new TextEncoder().encode(': keep-alive\n\n'))
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    controller.enqueue(new TextEncoder().encode(message(1)))
    expect(await reading).toEqual([id(1)])
    expect(fetch.requests).toHaveLength(1)
  })

  it('does not count the time the caller spends on an event: a slow consumer keeps its connection', async () => {
    const stream = eventStream([message(1), message(2)])
    const { fetch, client } = clientWith([stream.response])
    const ids: string[] = []
    for await (const sessionEvent of client.events.tail(sessionId, { idleTimeoutMs: 30 })) {
      ids.push(sessionEvent.id)
      if (ids.length === 2) break
      await new Promise((resolve) => setTimeout(resolve, 150))
    }
    expect(ids).toEqual([id(1), id(2)])
    expect(fetch.requests).toHaveLength(1)
  })

  it('idleTimeoutMs: 0 turns the watchdog off', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const { fetch, client } = clientWith([eventStream([message(1)]).response])
      const controller = new AbortController()
      const tail = client.events.tail(sessionId, { idleTimeoutMs: 0, signal: controller.signal })
      expect((await tail.next()).value?.id).toBe(id(1))
      const second = tail.next()
      await vi.advanceTimersByTimeAsync(0)
      expect(vi.getTimerCount()).toBe(0)
      await vi.advanceTimersByTimeAsync(3_600_000)
      controller.abort()
      await expect(second).resolves.toEqual({ done: true, value: undefined })
      expect(fetch.requests).toHaveLength(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it.each([-1, Number.NaN, 2 ** 31])('refuses idleTimeoutMs %s, which would reconnect without end', async (value) => {
    const { fetch, client } = clientWith([eventStream([message(1)]).response])
    await expect(take(client, 1, { idleTimeoutMs: value })).rejects.toThrow(TypeError)
    expect(fetch.requests).toHaveLength(0)
  })
})

describe('client.events.tail: errors that stop it', () => {
  it('throws not_found for a 404, decoded, without retrying', async () => {
    const { fetch, client } = clientWith([
      apiError(404, 'not_found', 'The session was not found.', { entity: 'session' }),
      eventStream([message(1)]).response,
    ])
    const error = await take(client, 1).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsError)
    expect(error).toMatchObject({
      status: 404,
      code: 'not_found',
      message: 'The session was not found.',
      entity: 'session',
      requestId: 'req_0123456789abcdefABCDEF',
    })
    expect(fetch.requests).toHaveLength(1)
  })

  it.each([
    [400, 'invalid_data'],
    [401, 'unauthorized'],
    [403, 'forbidden'],
    [500, 'internal_server_error'],
  ])('throws a %i (%s) without retrying', async (status, code) => {
    const { fetch, client } = clientWith([apiError(status, code, 'No.'), eventStream([message(1)]).response])
    await expect(take(client, 1)).rejects.toMatchObject({ status, code })
    expect(fetch.requests).toHaveLength(1)
  })

  it('throws an error that comes after a reconnect, too', async () => {
    const { fetch, client } = clientWith([
      eventStream([message(1)], 'drop').response,
      apiError(403, 'forbidden', 'The key was revoked.'),
    ])
    const seen: string[] = []
    const error = await (async () => {
      for await (const sessionEvent of client.events.tail(sessionId)) seen.push(sessionEvent.id)
    })().catch((e: unknown) => e)
    expect(seen).toEqual([id(1)])
    expect(error).toMatchObject({ status: 403, code: 'forbidden' })
    expect(fetch.requests).toHaveLength(2)
  })
})

describe('client.events.tail: stopping', () => {
  it('returns when the signal aborts while it waits for events, and cancels the body', async () => {
    const stream = eventStream([message(1)])
    const { fetch, client } = clientWith([stream.response])
    const controller = new AbortController()
    const seen: string[] = []
    const reading = (async () => {
      for await (const sessionEvent of client.events.tail(sessionId, {
        signal: controller.signal,
      })) {
        seen.push(sessionEvent.id)
      }
      return 'returned'
    })()
    while (seen.length === 0) await tick()
    controller.abort()
    await expect(reading).resolves.toBe('returned')
    await vi.waitFor(() => expect(stream.cancelled).toBe(true))
    expect(seen).toEqual([id(1)])
    expect(fetch.requests).toHaveLength(1)
  })

  it('returns when the signal aborts while it waits for the head of a fetch that ignores it', async () => {
    const { fetch, client } = clientWith(['hang-deaf'])
    const controller = new AbortController()
    const reading = take(client, 1, { signal: controller.signal })
    await tick()
    controller.abort()
    await expect(reading).resolves.toEqual([])
    expect(fetch.requests).toHaveLength(1)
  })

  it('returns when the signal aborts while it waits to reconnect', async () => {
    const unavailable = json(
      503,
      {
        __typename: 'error',
        ok: false,
        status: 503,
        code: 'service_unavailable',
        message: 'Later.',
      },
      { 'retry-after': '30' },
    )
    const { fetch, client } = clientWith([unavailable, eventStream([message(1)]).response])
    const controller = new AbortController()
    const started = Date.now()
    const reading = take(client, 1, { signal: controller.signal })
    while (fetch.requests.length === 0) await tick()
    controller.abort()
    await expect(reading).resolves.toEqual([])
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(fetch.requests).toHaveLength(1)
  })

  it('sends nothing when the signal has aborted already', async () => {
    const { fetch, client } = clientWith([eventStream([message(1)]).response])
    await expect(take(client, 1, { signal: AbortSignal.abort() })).resolves.toEqual([])
    expect(fetch.requests).toHaveLength(0)
  })

  it('breaking out of the loop cancels the body and sends nothing more', async () => {
    const stream = eventStream([message(1) + message(2) + message(3)])
    const { fetch, client } = clientWith([stream.response, eventStream([]).response])
    expect(await take(client, 2)).toEqual([id(1), id(2)])
    await vi.waitFor(() => expect(stream.cancelled).toBe(true))
    await tick()
    expect(fetch.requests).toHaveLength(1)
  })

  it('leaves no timer behind: only the watchdog while the stream is open, none once it stops', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const stream = eventStream([message(1)])
      const { client } = clientWith([apiError(503, 'service_unavailable', 'Later.'), stream.response], {
        timeoutMs: 60_000,
      })
      const controller = new AbortController()
      const tail = client.events.tail(sessionId, { signal: controller.signal })
      const first = tail.next()
      await vi.advanceTimersByTimeAsync(10) // the backoff after the 503
      expect((await first).value?.id).toBe(id(1))
      // While the caller holds an event, nothing runs; then the stream waits for more: the
      // head's timeout is gone, and the idle watchdog is the one timer.
      expect(vi.getTimerCount()).toBe(0)
      const second = tail.next()
      await vi.advanceTimersByTimeAsync(0)
      expect(vi.getTimerCount()).toBe(1)
      controller.abort()
      await expect(second).resolves.toEqual({ done: true, value: undefined })
      expect(vi.getTimerCount()).toBe(0)
      expect(stream.cancelled).toBe(true)
    } finally {
      vi.useRealTimers()
    }
  })
})
