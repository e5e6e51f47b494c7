import { loadSpec } from '@session-events/openapi'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApp } from '../src/app.js'
import { KEEP_ALIVE_MS } from '../src/follow.js'
import { newId } from '../src/ids.js'
import { StoreUnavailableError, type Store } from '../src/store/types.js'
import { fixture, silent, testSettings, type Fixture } from './helpers.js'
import { overriding } from './store-overrides.js'

// The spec's examples of what the server itself writes (the bodies of its errors, the messages
// of its stream) are what the server sends: each is produced for real, through the app, and
// compared with the example, ids aside. A new example with no case here fails, so an example
// cannot be added, or a message changed, without the two agreeing.

const spec = loadSpec()

/** An example's value, its `$ref` (to `#/components/examples/…`) resolved. */
const valueOf = (example: any) =>
  example.$ref ? spec.components.examples[example.$ref.split('/').at(-1)].value : example.value

/**
 * Every example of an error response, by a name: `Response/example`, or `examples/Name` for one
 * shared through `components.examples` (it is the same wherever it is used).
 */
function errorExamples(): Map<string, unknown> {
  const found = new Map<string, unknown>()
  for (const [name, response] of Object.entries<any>(spec.components.responses)) {
    for (const [exampleName, example] of Object.entries<any>(response.content['application/json'].examples)) {
      found.set(
        example.$ref ? `examples/${example.$ref.split('/').at(-1)}` : `${name}/${exampleName}`,
        valueOf(example),
      )
    }
  }
  return found
}

/** The stream's examples (`streamSessionEvents`, text/event-stream). */
const streamMedia = spec.paths['/sessions/{sessionId}/events/stream'].get.responses['200'].content['text/event-stream']

/** Ids made alike: the server's are new every time. */
const withoutIds = (text: string) => text.replace(/\b([a-z]{3})_[0-9A-Za-z]{22}\b/g, '$1_…')
const normalised = (value: unknown) => JSON.parse(withoutIds(JSON.stringify(value)))

let f: Fixture
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 3 })
})
afterAll(async () => {
  await f?.store.close()
})

const auth = (key = f.a.secret_key) => ({ Authorization: `Bearer ${key}` })

function post(path: string, json: unknown, headers: Record<string, string> = {}, app = f.app) {
  return app.request(path, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json', ...headers },
    body: typeof json === 'string' ? json : JSON.stringify(json),
  })
}

async function newRun(): Promise<{ sessionId: string; runId: string }> {
  const session = await post('/sessions', {})
  const { id: sessionId } = (await session.json()) as { id: string }
  const run = await post(`/sessions/${sessionId}/server-runs`, { type: 'external', server: { name: 'examples' } })
  expect(run.status).toBe(201)
  return { sessionId, runId: ((await run.json()) as { id: string }).id }
}

const lines = (runId: string, line = 'x') => ({ server_run_id: runId, log_lines: [{ type: 'stdout', line }] })

/** A writer whose every write waits until `release()`: a request that writes stays in flight. */
function heldWriter(writer: Store['writer']) {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  let entered!: () => void
  const waiting = new Promise<void>((resolve) => (entered = resolve))
  const held = new Proxy(writer, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      return async (...args: unknown[]) => {
        entered()
        await gate
        return value.apply(target, args)
      }
    },
  })
  return { writer: held, waiting, release }
}

/** How the server is brought to answer each example. */
const cases: Record<string, () => Response | Promise<Response>> = {
  'BadRequest/invalidData': () => f.get(`/sessions/${f.a.sessions[0]!.id}/events?limit=101`),
  'BadRequest/unknownId': async () => {
    const { sessionId } = await newRun()
    // The run of the example, which is no run of this session.
    return post(`/sessions/${sessionId}/events`, lines('srr_0m5q3k1f8Ab3Cd4Ef5Gh6I'))
  },
  'BadRequest/badRequest': () => {
    const [after, before] = [newId('sessionEvent'), newId('sessionEvent')]
    return f.get(`/sessions/${f.a.sessions[0]!.id}/events?after=${after}&before=${before}`)
  },
  'Unauthorized/missingHeader': () => f.get(`/sessions/${f.a.sessions[0]!.id}/events`, null),
  'Unauthorized/invalidKey': () => f.get(`/sessions/${f.a.sessions[0]!.id}/events`, `metorial_sk_${'x'.repeat(40)}`),
  'Unauthorized/revokedKey': () => f.get(`/sessions/${f.a.sessions[0]!.id}/events`, f.a.revoked_key),
  'Forbidden/forbidden': () => f.get(`/sessions/${f.a.sessions[0]!.id}/events`, f.a.publishable_key),
  'examples/SessionNotFoundError': () => f.get(`/sessions/${newId('session')}/events`),
  'SessionOrEventNotFound/sessionEvent': () =>
    f.get(`/sessions/${f.a.sessions[0]!.id}/events/${newId('sessionEvent')}`),
  'SessionOrServerRunNotFound/serverRun': () =>
    f.get(`/sessions/${f.a.sessions[0]!.id}/server-runs/${newId('serverRun')}`),
  'Conflict/runStopped': async () => {
    const { sessionId, runId } = await newRun()
    await post(`/sessions/${sessionId}/server-runs/${runId}/stop`, { status: 'completed' })
    return post(`/sessions/${sessionId}/events`, lines(runId))
  },
  'Conflict/keyInUse': async () => {
    const { sessionId, runId } = await newRun()
    const held = heldWriter(f.store.writer)
    const app = createApp({ store: overriding(f.store, { writer: held.writer }), logger: silent, config: testSettings })
    const key = { 'Idempotency-Key': 'examples-in-flight' }
    const first = post(`/sessions/${sessionId}/events`, lines(runId), key, app)
    await held.waiting
    const meanwhile = await post(`/sessions/${sessionId}/events`, lines(runId), key, app)
    held.release()
    expect((await first).status).toBe(201)
    return meanwhile
  },
  'PayloadTooLarge/tooLarge': async () => {
    const { sessionId, runId } = await newRun()
    return post(`/sessions/${sessionId}/events`, JSON.stringify(lines(runId, 'x'.repeat(6 * 1024 * 1024))))
  },
  'IdempotencyKeyReused/keyReused': async () => {
    const { sessionId, runId } = await newRun()
    const key = { 'Idempotency-Key': 'examples-reused' }
    expect((await post(`/sessions/${sessionId}/events`, lines(runId, 'first'), key)).status).toBe(201)
    return post(`/sessions/${sessionId}/events`, lines(runId, 'another'), key)
  },
  'TooManyRequests/tooManyRequests': async () => {
    const app = createApp({
      store: f.store,
      logger: silent,
      config: { ...testSettings, rateLimit: { points: 1, durationSeconds: 60 } },
    })
    const call = () => app.request(`/sessions/${f.a.sessions[0]!.id}/events?limit=1`, { headers: auth() })
    expect((await call()).status).toBe(200)
    return call()
  },
  'InternalServerError/internal': () => {
    const broken = overriding(f.store, { reader: { listEventIds: async () => Promise.reject(new Error('boom')) } })
    const app = createApp({ store: broken, logger: silent, config: testSettings })
    return app.request(`/sessions/${f.a.sessions[0]!.id}/events`, { headers: auth() })
  },
  'ServiceUnavailable/unavailable': () => {
    const down = overriding(f.store, {
      reader: { sessionInstance: async () => Promise.reject(new StoreUnavailableError('connection refused')) },
    })
    const app = createApp({ store: down, logger: silent, config: testSettings })
    return app.request(`/sessions/${f.a.sessions[0]!.id}/events`, { headers: auth() })
  },
}

describe("the spec's examples of error bodies are what the server sends", () => {
  const examples = errorExamples()

  it('has a case for every example, and no case without one', () => {
    expect([...examples.keys()].sort()).toEqual(Object.keys(cases).sort())
  })

  it.each([...examples.keys()])('%s', async (name) => {
    const example = examples.get(name) as { status: number }
    const res = await cases[name]!()
    expect(res.status).toBe(example.status)
    expect(normalised(await res.json())).toEqual(normalised(example))
  })
})

/**
 * A stream's text as its messages: each its lines, ids made alike, `data:` parsed. (The example
 * is the start of a stream that goes on: its last message may lack the blank line that ends it.)
 */
function messagesOf(text: string) {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) =>
      block
        .replace(/\n$/, '')
        .split('\n')
        .map((line) => {
          if (!line.startsWith('data: ')) return withoutIds(line)
          return { data: JSON.parse(line.slice('data: '.length)) as Record<string, unknown> }
        }),
    )
}

describe("the spec's example of a stream is what the server sends", () => {
  it.each(Object.keys(streamMedia.examples))('%s', async (name) => {
    const expected = messagesOf(valueOf(streamMedia.examples[name]))
    // The keep-alive comes after KEEP_ALIVE_MS of nothing: the stream's timers are advanced to it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'], shouldAdvanceTime: true })
    const { sessionId, runId } = await newRun()
    const res = await f.get(`/sessions/${sessionId}/events/stream`)
    expect(res.status).toBe(200)
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let text = ''
    try {
      /** Reads until the stream has sent `count` messages. */
      const readMessages = async (count: number) => {
        while (text.split('\n\n').length - 1 < count) {
          const chunk = await reader.read()
          if (chunk.done) throw new Error(`the stream ended after ${text}`)
          text += decoder.decode(chunk.value, { stream: true })
        }
      }
      await readMessages(2) // retry:, then where it stands
      // The example's event: its lines, appended now.
      const event = expected.flat().find((line) => typeof line === 'object')!.data
      const appended = await post(`/sessions/${sessionId}/events`, {
        server_run_id: runId,
        log_lines: event.log_lines,
      })
      expect(appended.status).toBe(201)
      const sent = (await appended.json()) as Record<string, unknown>
      await readMessages(3)
      await vi.advanceTimersByTimeAsync(KEEP_ALIVE_MS)
      await readMessages(4)
      const actual = messagesOf(text)
      // The event's data is the event that was appended; the example's, its own (its
      // server_run aside, the rest of the example is the same event as the spec's example).
      const dataOf = (messages: ReturnType<typeof messagesOf>) =>
        messages.flat().find((line) => typeof line === 'object')!.data
      expect(dataOf(actual)).toEqual(sent)
      expect(normalised({ ...dataOf(actual), server_run: null, created_at: '…' })).toEqual(
        normalised({ ...event, created_at: '…' }),
      )
      const withoutData = (messages: ReturnType<typeof messagesOf>) =>
        messages.map((lines) => lines.map((line) => (typeof line === 'object' ? 'data: …' : line)))
      expect(withoutData(actual)).toEqual(withoutData(expected))
    } finally {
      vi.useRealTimers()
      await reader.cancel()
    }
  })
})
