// Retries, timeouts and aborts, each fault produced by a scripted fetch. Delays are tiny
// (retryDelayMs: 1) and nothing asserts on time: only on outcomes and on how many requests went out.
import { describe, expect, it } from 'vitest'
import {
  SessionEventsConnectionError,
  SessionEventsError,
  SessionEventsTimeoutError,
  createSessionEventsClient,
} from '../src/index.js'
import { backoffDelay, parseRetryAfter, retryDelay } from '../src/transport.js'
import {
  type Step,
  apiError,
  brokenBody,
  connectionRefused,
  event,
  json,
  scriptedFetch,
  stalledBody,
} from './fake-fetch.js'

const sessionId = 'ses_0m5q3jz7a4GhR2sLmN8pQ1'
const eventId = 'sev_0m5q3k2x1Tz8KqPw3vXyA9'
const ok = () => json(200, event(eventId))

function clientWith(
  steps: Step[],
  options: { maxRetries?: number; timeoutMs?: number; maxRetryDelayMs?: number } = {},
) {
  const fetch = scriptedFetch(...steps)
  const client = createSessionEventsClient({
    apiKey: 'metorial_sk_test',
    fetch,
    retryDelayMs: 1,
    ...options,
  })
  return { fetch, client }
}

describe('retries', () => {
  it.each([429, 502, 503, 504])('retries a %i and returns the answer that follows', async (status) => {
    const { fetch, client } = clientWith([apiError(status, 'service_unavailable', 'Try again.'), ok()])
    await expect(client.sessionEvents.get(sessionId, eventId)).resolves.toMatchObject({
      id: eventId,
    })
    expect(fetch.requests).toHaveLength(2)
  })

  it('gives up after maxRetries and throws the last answer', async () => {
    const unavailable = () => apiError(503, 'service_unavailable', 'The service is temporarily unavailable.')
    const { fetch, client } = clientWith([unavailable(), unavailable(), unavailable(), unavailable()], {
      maxRetries: 3,
    })
    const error = await client.sessionEvents.get(sessionId, eventId).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsError)
    expect(error).toMatchObject({ status: 503, code: 'service_unavailable' })
    expect(fetch.requests).toHaveLength(4)
  })

  it.each([400, 401, 403, 404, 500])('does not retry a %i', async (status) => {
    const { fetch, client } = clientWith([apiError(status, 'bad_request', 'No.'), ok()])
    await expect(client.sessionEvents.get(sessionId, eventId)).rejects.toMatchObject({ status })
    expect(fetch.requests).toHaveLength(1)
  })

  it('does not retry when maxRetries is 0', async () => {
    const { fetch, client } = clientWith([apiError(503, 'service_unavailable', 'Later.'), ok()], {
      maxRetries: 0,
    })
    await expect(client.sessionEvents.get(sessionId, eventId)).rejects.toMatchObject({
      status: 503,
    })
    expect(fetch.requests).toHaveLength(1)
  })

  it('retries a network failure, then succeeds', async () => {
    const { fetch, client } = clientWith([connectionRefused(), ok()])
    await expect(client.sessionEvents.get(sessionId, eventId)).resolves.toMatchObject({
      id: eventId,
    })
    expect(fetch.requests).toHaveLength(2)
  })

  it('throws a SessionEventsConnectionError, with the cause, when the network never answers', async () => {
    const refused = connectionRefused()
    const { fetch, client } = clientWith([refused, refused, refused])
    const error = await client.sessionEvents.get(sessionId, eventId).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsConnectionError)
    expect(error).not.toBeInstanceOf(SessionEventsTimeoutError)
    expect(error).toMatchObject({ code: 'connection_error', cause: refused })
    expect((error as Error).message).toContain('ECONNREFUSED')
    expect(fetch.requests).toHaveLength(3)
  })

  it('retries a connection that drops in the middle of the body', async () => {
    const { fetch, client } = clientWith([brokenBody(), ok()])
    await expect(client.sessionEvents.get(sessionId, eventId)).resolves.toMatchObject({
      id: eventId,
    })
    expect(fetch.requests).toHaveLength(2)
  })

  it('sends the same request again: same URL, same headers', async () => {
    const { fetch, client } = clientWith([apiError(502, 'internal_server_error', 'Bad gateway.'), page()])
    await client.sessionEvents.list(sessionId, {
      server_run_id: ['srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'],
      limit: 5,
    })
    const [first, second] = fetch.requests
    expect(second?.url).toBe(first?.url)
    expect(Object.fromEntries(second!.headers)).toEqual(Object.fromEntries(first!.headers))
  })

  it('also retries for the raw openapi-fetch client', async () => {
    const { fetch, client } = clientWith([apiError(429, 'too_many_requests', 'Slow down.'), ok()])
    const { data } = await client.raw.GET('/sessions/{sessionId}/events/{sessionEventId}', {
      params: { path: { sessionId, sessionEventId: eventId } },
    })
    expect(data?.id).toBe(eventId)
    expect(fetch.requests).toHaveLength(2)
  })
})

describe('how long to wait', () => {
  const options = { retryDelayMs: 500, maxRetryDelayMs: 60_000 }
  const now = Date.parse('2025-07-20T12:00:00.000Z')

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter('0', now)).toBe(0)
    expect(parseRetryAfter('1.5', now)).toBe(1500)
    expect(parseRetryAfter('Sun, 20 Jul 2025 12:00:07 GMT', now)).toBe(7000)
    expect(parseRetryAfter('Sun, 20 Jul 2025 11:59:00 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter('-5', now)).toBeUndefined()
    expect(parseRetryAfter(null, now)).toBeUndefined()
  })

  it('prefers Retry-After, then RateLimit-Reset, then backoff', () => {
    expect(retryDelay(new Headers({ 'retry-after': '2', 'ratelimit-reset': '9' }), 0, options, now)).toBe(2000)
    expect(retryDelay(new Headers({ 'ratelimit-reset': '9' }), 0, options, now)).toBe(9000)
    expect(retryDelay(new Headers({ 'retry-after': 'garbage', 'ratelimit-reset': '4' }), 0, options, now)).toBe(4000)
    const backoff = retryDelay(new Headers(), 0, options, now)
    expect(backoff).toBeGreaterThanOrEqual(250)
    expect(backoff).toBeLessThanOrEqual(500)
  })

  it('gives up rather than wait longer than maxRetryDelayMs when the server asks to', () => {
    expect(retryDelay(new Headers({ 'retry-after': '61' }), 0, options, now)).toBeUndefined()
    expect(retryDelay(new Headers({ 'retry-after': '60' }), 0, options, now)).toBe(60_000)
  })

  it('backs off exponentially, with jitter, up to the cap', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(60_000, 500 * 2 ** attempt)
      for (let i = 0; i < 20; i++) {
        const delay = backoffDelay(attempt, options)
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2)
        expect(delay).toBeLessThanOrEqual(ceiling)
      }
    }
  })

  it('honours Retry-After: 0 by retrying at once', async () => {
    const now = json(
      429,
      {
        __typename: 'error',
        ok: false,
        status: 429,
        code: 'too_many_requests',
        message: 'Slow down.',
      },
      { 'retry-after': '0' },
    )
    const { fetch, client } = clientWith([now, ok()], { maxRetryDelayMs: 0 })
    await client.sessionEvents.get(sessionId, eventId)
    expect(fetch.requests).toHaveLength(2)
  })

  it('returns a 429 as an error when its Retry-After is beyond maxRetryDelayMs', async () => {
    const tooLong = json(
      429,
      {
        __typename: 'error',
        ok: false,
        status: 429,
        code: 'too_many_requests',
        message: 'Slow down.',
      },
      { 'retry-after': '120' },
    )
    const { fetch, client } = clientWith([tooLong, ok()], { maxRetryDelayMs: 60_000 })
    await expect(client.sessionEvents.get(sessionId, eventId)).rejects.toMatchObject({
      status: 429,
      code: 'too_many_requests',
    })
    expect(fetch.requests).toHaveLength(1)
  })
})

describe('timeouts', () => {
  it('times out an attempt that gets no answer, retries it, then throws a SessionEventsTimeoutError', async () => {
    const { fetch, client } = clientWith(['hang', 'hang'], { timeoutMs: 20, maxRetries: 1 })
    const error = await client.sessionEvents.get(sessionId, eventId).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SessionEventsTimeoutError)
    expect(error).toBeInstanceOf(SessionEventsConnectionError)
    expect(error).toMatchObject({ code: 'timeout', timeoutMs: 20 })
    expect(fetch.requests).toHaveLength(2)
  })

  it('times out a fetch that ignores its signal', async () => {
    const { client } = clientWith(['hang-deaf'], { timeoutMs: 20, maxRetries: 0 })
    await expect(client.sessionEvents.get(sessionId, eventId)).rejects.toBeInstanceOf(SessionEventsTimeoutError)
  })

  it('times out a body that stalls after the headers', async () => {
    const { client } = clientWith([stalledBody()], { timeoutMs: 20, maxRetries: 0 })
    await expect(client.sessionEvents.get(sessionId, eventId)).rejects.toBeInstanceOf(SessionEventsTimeoutError)
  })

  it('starts every attempt with a fresh timeout', async () => {
    const { fetch, client } = clientWith(['hang', ok()], { timeoutMs: 20, maxRetries: 1 })
    await expect(client.sessionEvents.get(sessionId, eventId)).resolves.toMatchObject({
      id: eventId,
    })
    expect(fetch.requests).toHaveLength(2)
  })
})

describe('abort', () => {
  const reason = () => new DOMException('The caller gave up.', 'AbortError')

  it('does not send anything when the signal is already aborted', async () => {
    const { fetch, client } = clientWith([ok()])
    const controller = new AbortController()
    const why = reason()
    controller.abort(why)
    await expect(client.sessionEvents.get(sessionId, eventId, { signal: controller.signal })).rejects.toBe(why)
    expect(fetch.requests).toHaveLength(0)
  })

  it('stops a request in flight, with the signal reason, and does not retry it', async () => {
    const controller = new AbortController()
    const why = reason()
    const { fetch, client } = clientWith([
      (request) => {
        controller.abort(why)
        return new Promise((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason)))
      },
      ok(),
    ])
    await expect(client.sessionEvents.get(sessionId, eventId, { signal: controller.signal })).rejects.toBe(why)
    expect(fetch.requests).toHaveLength(1)
  })

  it('stops a request whose fetch ignores the signal', async () => {
    const controller = new AbortController()
    const { client } = clientWith(['hang-deaf'])
    const pending = client.sessionEvents.get(sessionId, eventId, { signal: controller.signal })
    controller.abort()
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
  })

  it('stops the wait between two attempts', async () => {
    const controller = new AbortController()
    const why = reason()
    // Without the abort this test would sit out an hour-long Retry-After.
    const { fetch, client } = clientWith(
      [
        () => {
          setTimeout(() => controller.abort(why), 5)
          return json(
            503,
            {
              __typename: 'error',
              ok: false,
              status: 503,
              code: 'service_unavailable',
              message: 'Later.',
            },
            { 'retry-after': '3600' },
          )
        },
        ok(),
      ],
      { maxRetryDelayMs: 7_200_000 },
    )
    await expect(client.sessionEvents.get(sessionId, eventId, { signal: controller.signal })).rejects.toBe(why)
    expect(fetch.requests).toHaveLength(1)
  })

  it('stops an iteration at once, in the middle of a page', async () => {
    const controller = new AbortController()
    const { fetch, client } = clientWith([
      json(200, {
        __typename: 'list',
        items: [event('sev_1'), event('sev_2')],
        pagination: {
          has_more_before: false,
          has_more_after: true,
          next_cursor: 'cur_2',
          previous_cursor: null,
        },
      }),
      ok(),
    ])
    const seen: string[] = []
    const walk = async () => {
      for await (const e of client.sessionEvents.iterate(sessionId, {}, { signal: controller.signal })) {
        seen.push(e.id)
        controller.abort()
      }
    }
    await expect(walk()).rejects.toMatchObject({ name: 'AbortError' })
    expect(seen).toEqual(['sev_1'])
    expect(fetch.requests).toHaveLength(1)
  })
})

function page() {
  return json(200, {
    __typename: 'list',
    items: [],
    pagination: {
      has_more_before: false,
      has_more_after: false,
      next_cursor: null,
      previous_cursor: null,
    },
  })
}
