// client.events.tail against the real API: the app in-process (fetch → app.fetch) and served
// over HTTP with its own serve(), on a SQLite store in memory. Nothing is stubbed; the restarts
// are real servers closing and opening on the same port, over the same store.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createApp, openStore, seed, serve } from '@session-events/api'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  type SessionEventsClient,
  SessionEventsError,
  type SessionEventsClientOptions,
  createSessionEventsClient,
} from '../src/index.js'
import { packageDir, readmeExample } from './readme.js'

type Store = Awaited<ReturnType<typeof openStore>>
type RunningServer = Awaited<ReturnType<typeof serve>>

let store: Store
let apiKey: string
let seededSessionId: string
const servers: RunningServer[] = []

beforeAll(async () => {
  store = await openStore('sqlite::memory:')
  const summary = await seed(store, { sessions: 1, events: 30, instances: 1 })
  const instance = summary.instances[0]!
  apiKey = instance.secret_key
  seededSessionId = instance.sessions[0]!.id
})

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close({ timeoutMs: 0 })))
  await store?.close()
})

/** An app over the shared store; `shutdown` ends its streams, as a server going away does. */
function app(options: { streamsPerKey?: number } = {}) {
  const shutdown = new AbortController()
  return {
    app: createApp({
      store,
      config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false, ...options },
      shutdown: shutdown.signal,
    }),
    shutdown,
  }
}

function inProcess(
  target: ReturnType<typeof app>['app'],
  more: Partial<SessionEventsClientOptions> = {},
): SessionEventsClient {
  return createSessionEventsClient({
    apiKey,
    baseUrl: 'http://session-events.test',
    fetch: (input, init) => target.fetch(new Request(input, init)),
    ...more,
  })
}

/** A new session with an active run; `append` writes one line to it, through `client` or `via`. */
async function newRun(client: SessionEventsClient) {
  const session = await client.sessions.create({ metadata: { test: 'tail' } })
  const run = await client.serverRuns.start(session.id, {
    type: 'external',
    server: { name: 'tail-test-server' },
  })
  const append = async (line: string, via = client) =>
    (
      await via.events.append(session.id, {
        server_run_id: run.id,
        log_lines: [{ type: 'stdout', line }],
      })
    ).id
  return { sessionId: session.id, append }
}

/** Pulls events from a tail one at a time, so that a test can write between reads. */
function reader<Event>(events: AsyncGenerator<Event, void, undefined>) {
  return {
    async next(): Promise<Event> {
      const result = await events.next()
      if (result.done) throw new Error('the tail ended')
      return result.value
    },
    async take(count: number): Promise<Event[]> {
      const taken: Event[] = []
      while (taken.length < count) taken.push(await this.next())
      return taken
    },
    stop: () => events.return(),
  }
}

describe('tail e2e, in-process', () => {
  it('yields the events appended to a session, in order, each exactly as get() answers it', async () => {
    const { app: target } = app()
    const client = inProcess(target, { maxRetries: 0 })
    const { sessionId, append } = await newRun(client)
    // A tail starts when it is first read; `after` makes where it starts exact.
    const start = await append('line 0')
    const tail = reader(client.events.tail(sessionId, { after: start }))
    const appended: string[] = []
    for (let i = 1; i <= 5; i++) appended.push(await append(`line ${i}`))

    const received = await tail.take(5)
    expect(received.map((e) => e.id)).toEqual(appended)
    expect(received[2]?.log_lines).toEqual([{ type: 'stdout', line: 'line 3' }])
    expect(received[4]).toEqual(await client.events.get(sessionId, appended[4]!))

    // And what is written while the tail waits.
    const later = tail.next()
    const written = await append('line 6')
    expect((await later).id).toBe(written)
    await tail.stop()
  })

  it('starts with the last `tail` events of the session, then follows; revives dates', async () => {
    const { app: target } = app()
    const client = inProcess(target, { maxRetries: 0 })
    const newest = await client.events.list(seededSessionId, { order: 'desc', limit: 3 })
    const revived = createSessionEventsClient({
      apiKey,
      fetch: (input, init) => target.fetch(new Request(input, init)),
      reviveDates: true,
    })
    const tail = reader(revived.events.tail(seededSessionId, { tail: 3 }))
    const first = await tail.take(3)
    expect(first.map((e) => e.id)).toEqual(newest.items.map((e) => e.id).reverse())
    expect(first[0]?.created_at).toBeInstanceOf(Date)
    await tail.stop()
  })

  it('applies the filters', async () => {
    const { app: target } = app()
    const client = inProcess(target, { maxRetries: 0 })
    const session = await client.sessions.create()
    const runA = await client.serverRuns.start(session.id, {
      type: 'external',
      server: { name: 'a' },
    })
    const runB = await client.serverRuns.start(session.id, {
      type: 'external',
      server: { name: 'b' },
    })
    const lines = (run: string, line: string) =>
      client.events.append(session.id, {
        server_run_id: run,
        log_lines: [{ type: 'stderr', line }],
      })
    const a0 = await lines(runA.id, 'a0')
    const tail = reader(client.events.tail(session.id, { after: a0.id, filters: { server_run_id: [runB.id] } }))
    await lines(runA.id, 'a1')
    const b1 = await lines(runB.id, 'b1')
    await lines(runA.id, 'a2')
    const b2 = await lines(runB.id, 'b2')
    expect((await tail.take(2)).map((e) => e.id)).toEqual([b1.id, b2.id])
    await tail.stop()
  })

  it('throws not_found for a session that does not exist, and 401 for a wrong key', async () => {
    const { app: target } = app()
    const client = inProcess(target, { maxRetries: 0 })
    const missing = await reader(client.events.tail('ses_0000000000000000000000'))
      .next()
      .catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(SessionEventsError)
    expect(missing).toMatchObject({ status: 404, code: 'not_found' })

    const stranger = inProcess(target, {
      apiKey: 'metorial_sk_wrong0000000000000000000000000000000000',
      maxRetries: 0,
    })
    await expect(reader(stranger.events.tail(seededSessionId)).next()).rejects.toMatchObject({
      status: 401,
    })
  })

  it('breaking out of the loop closes the stream on the server: its slot is free again', async () => {
    // One stream per key: a stream left open would make the next one a 429.
    const { app: target } = app({ streamsPerKey: 1 })
    const client = inProcess(target, { maxRetries: 0 })
    for (let i = 0; i < 3; i++) {
      for await (const sessionEvent of client.events.tail(seededSessionId, { tail: 1 })) {
        expect(sessionEvent.session_id).toBe(seededSessionId)
        break
      }
    }
  })

  it('an abort ends the tail while it waits', async () => {
    const { app: target } = app({ streamsPerKey: 1 })
    const client = inProcess(target, { maxRetries: 0 })
    const controller = new AbortController()
    const seen: string[] = []
    const following = (async () => {
      for await (const e of client.events.tail(seededSessionId, {
        tail: 1,
        signal: controller.signal,
      }))
        seen.push(e.id)
      return 'returned'
    })()
    await vi.waitFor(() => expect(seen).toHaveLength(1))
    controller.abort()
    await expect(following).resolves.toBe('returned')
    // Its slot was given back.
    const again = reader(client.events.tail(seededSessionId, { tail: 1 }))
    expect((await again.next()).id).toBe(seen[0])
    await again.stop()
  })
})

describe('tail e2e, over HTTP', () => {
  it('follows across two server restarts, losing nothing and repeating nothing', async () => {
    // Writes go in-process, through an app of their own: they go on while no server listens.
    const { sessionId, append } = await newRun(inProcess(app().app))

    let current = app()
    let server = await serve({ app: current.app, port: 0 })
    servers.push(server)
    const port = server.port
    /** Where each stream request asked to start: `after`, or the Last-Event-ID of a reconnect. */
    const starts: string[] = []
    const client = createSessionEventsClient({
      apiKey,
      baseUrl: server.url,
      retryDelayMs: 20,
      maxRetryDelayMs: 200,
      fetch: (request) => {
        if (request.url.includes('/events/stream')) {
          const after = new URL(request.url).searchParams.get('after')
          starts.push(after ? `after=${after}` : `Last-Event-ID=${request.headers.get('last-event-id')}`)
        }
        return globalThis.fetch(request)
      },
    })
    const start = await append('a0', client)
    const tail = reader(client.events.tail(sessionId, { after: start }))

    const written: string[] = []
    for (let i = 1; i <= 3; i++) written.push(await append(`a${i}`, client))
    const received = (await tail.take(3)).map((e) => e.id)
    expect(received).toEqual(written)

    /** Restarts the server on its port while the tail reads, once it has tried to reconnect. */
    async function restart(stop: () => Promise<void>, whileDown: () => Promise<void>) {
      const attempts = starts.length
      await stop()
      await whileDown()
      // At least two attempts while nothing listens: the first is refused, and so on.
      await vi.waitFor(() => expect(starts.length).toBeGreaterThanOrEqual(attempts + 2))
      current = app()
      server = await serve({ app: current.app, port })
      servers.push(server)
    }

    // 1. A graceful restart: the server ends its streams (the body ends) and closes.
    let reading = tail.take(5)
    await restart(
      async () => {
        current.shutdown.abort()
        await server.close()
      },
      async () => {
        for (let i = 1; i <= 3; i++) written.push(await append(`b${i}`))
      },
    )
    for (let i = 1; i <= 2; i++) written.push(await append(`c${i}`, client))
    received.push(...(await reading).map((e) => e.id))
    expect(received).toEqual(written)

    // 2. An abrupt one: every connection is cut mid-stream (the body errors).
    reading = tail.take(4)
    await restart(
      () => server.close({ timeoutMs: 0 }),
      async () => {
        for (let i = 1; i <= 3; i++) written.push(await append(`d${i}`))
      },
    )
    written.push(await append('e1', client))
    received.push(...(await reading).map((e) => e.id))
    expect(received).toEqual(written)
    expect(new Set(received).size).toBe(received.length)

    // Every reconnect, refused or not, resumed after the last event received: a3, then c2.
    expect(starts[0]).toBe(`after=${start}`)
    const reconnects = [...new Set(starts.slice(1))]
    expect(reconnects).toEqual([`Last-Event-ID=${written[2]}`, `Last-Event-ID=${written[7]}`])

    await tail.stop()
  })

  it('breaking out of the loop closes the connection: the server frees the stream', async () => {
    const { app: target } = app({ streamsPerKey: 1 })
    const server = await serve({ app: target, port: 0 })
    servers.push(server)
    // No retries: a stream the server still held would make the next one a 429 at once.
    const client = createSessionEventsClient({ apiKey, baseUrl: server.url, maxRetries: 0 })
    for (let i = 0; i < 3; i++) {
      await vi.waitFor(async () => {
        for await (const sessionEvent of client.events.tail(seededSessionId, { tail: 1 })) {
          expect(sessionEvent.session_id).toBe(seededSessionId)
          break
        }
      })
    }
  })
})

describe('tail e2e, a connection that goes silent', () => {
  it('is ended after idleTimeoutMs and resumed after the last event: what it swallowed comes, once', async () => {
    const { app: target } = app()
    const server = await serve({ app: target, port: 0 })
    servers.push(server)
    const { sessionId, append } = await newRun(inProcess(target))
    /** The Last-Event-ID of each stream request (null for the first). */
    const lastEventIds: (string | null)[] = []
    let silence = () => {}
    const client = createSessionEventsClient({
      apiKey,
      baseUrl: server.url,
      retryDelayMs: 20,
      fetch: async (request) => {
        const response = await globalThis.fetch(request)
        if (!request.url.includes('/events/stream')) return response
        lastEventIds.push(request.headers.get('last-event-id'))
        if (lastEventIds.length > 1) return response
        // The first connection goes silent when told, as a half-open TCP connection does after
        // a network change: the server's bytes stop arriving, and nothing ends or fails. A
        // cancel still reaches the real body, which closes the real connection.
        let silent = false
        silence = () => void (silent = true)
        const body = response.body!.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(chunk, controller) {
              if (!silent) controller.enqueue(chunk)
            },
          }),
        )
        return new Response(body, response)
      },
    })
    const start = await append('s0', client)
    const tail = reader(client.events.tail(sessionId, { after: start, idleTimeoutMs: 300 }))
    const written = [await append('s1', client)]
    const received = (await tail.take(1)).map((e) => e.id)

    silence()
    // Sent by the server while the connection is silent: lost on the way, unless resumed.
    for (let i = 2; i <= 3; i++) written.push(await append(`s${i}`, client))
    received.push(...(await tail.take(2)).map((e) => e.id))
    expect(received).toEqual(written)
    expect(lastEventIds).toEqual([null, written[0]])
    await tail.stop()
  })
})

describe('the README follow example', () => {
  it('runs against the real server: the last 5 lines, each new one, and a clean stop on Ctrl-C', async () => {
    const { app: target } = app()
    const server = await serve({ app: target, port: 0 })
    servers.push(server)
    const { sessionId, append } = await newRun(inProcess(target))
    for (let i = 1; i <= 6; i++) await append(`line ${i}`)

    // The block as it is, importing the built package (as its users do).
    const example = readmeExample('## Following a session')
    expect(example).toBeDefined()
    const scratch = mkdtempSync(join(tmpdir(), 'session-events-client-follow-'))
    const file = join(scratch, 'follow.mjs')
    const built = pathToFileURL(join(packageDir, 'dist/index.js')).href
    writeFileSync(file, example!.replace("'@session-events/client'", JSON.stringify(built)))
    const child = spawn(process.execPath, [file, sessionId], {
      env: { ...process.env, SESSION_EVENTS_API_KEY: apiKey, SESSION_EVENTS_BASE_URL: server.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const printed = () => stdout.split('\n').filter((l) => l.includes(': line '))
    try {
      await vi.waitFor(() => expect(printed()).toHaveLength(5), { timeout: 10_000 })
      expect(printed().map((l) => l.replace(/^sev_\w+ /, ''))).toEqual([2, 3, 4, 5, 6].map((i) => `stdout: line ${i}`))
      const written = await append('line 7')
      await vi.waitFor(() => expect(printed()).toHaveLength(6), { timeout: 10_000 })
      expect(printed()[5]).toBe(`${written} stdout: line 7`)

      // Ctrl-C: the loop ends, and nothing is left to keep the process alive.
      const exited = once(child, 'exit')
      child.kill('SIGINT')
      const [code] = await exited
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
      expect(stdout.trimEnd().split('\n').at(-1)).toBe('stopped')
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
      rmSync(scratch, { recursive: true, force: true })
    }
  })
})
