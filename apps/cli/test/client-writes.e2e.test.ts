// The client's writes against the real API: the app in-process (fetch → app.fetch) and the same
// app served over HTTP, over an in-memory SQLite store. A lost answer is caused in process by a
// fetch that throws after the app has answered, and over HTTP by a TCP proxy that cuts the
// connection as the answer comes back; either way the retry must not write twice.
import { type SeedSummary, createApp, openStore, seed, serve } from '@session-events/api'
import {
  type SessionEvent,
  SessionEventsError,
  type SessionEventsClientOptions,
  createSessionEventsClient,
} from '@session-events/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TcpProxy, startTcpProxy } from './tcp-proxy.js'

process.env.LOG_LEVEL = 'silent' // the app's request log

type Instance = SeedSummary['instances'][number]
type Fetch = NonNullable<SessionEventsClientOptions['fetch']>

let app: ReturnType<typeof createApp>
let a: Instance
let server: Awaited<ReturnType<typeof serve>> | undefined
let proxy: TcpProxy | undefined

beforeAll(async () => {
  const store = await openStore('sqlite::memory:')
  ;[a] = (await seed(store, { sessions: 1, events: 1 })).instances as [Instance]
  app = createApp({ store, config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false } })
})

afterAll(async () => {
  await proxy?.close()
  await server?.close()
})

/** How each transport reaches the app, and how it loses the answers of the next `count` requests. */
interface Transport {
  baseUrl: string
  fetch?: Fetch
  loseAnswers(count: number): void
}

const transports: [string, () => Promise<Transport>][] = [
  [
    'in-process',
    async () => {
      let toLose = 0
      return {
        baseUrl: 'http://session-events.test',
        async fetch(input, init) {
          const response = await app.fetch(new Request(input, init))
          if (toLose === 0) return response
          toLose--
          await response.arrayBuffer() // the app has answered in full: the write is done
          throw new TypeError('fetch failed', { cause: new Error('other side closed') })
        },
        loseAnswers(count) {
          toLose = count
        },
      }
    },
  ],
  [
    'over HTTP',
    async () => {
      server ??= await serve({ app, port: 0 })
      proxy ??= await startTcpProxy(server.url)
      const through = proxy
      return { baseUrl: through.url, loseAnswers: (count) => through.loseAnswers(count) }
    },
  ],
]

describe.each(transports)('client writes e2e, %s', (_name, makeTransport) => {
  let transport: Transport
  /** Every request the client sent: method, path, Idempotency-Key, and the answer's replay header. */
  let sent: { method: string; path: string; key: string | null; replayed: string | null }[]
  const client = (more: Partial<SessionEventsClientOptions> = {}) =>
    createSessionEventsClient({
      apiKey: a.secret_key,
      baseUrl: transport.baseUrl,
      retryDelayMs: 1,
      fetch: async (request) => {
        const entry = {
          method: request.method,
          path: new URL(request.url).pathname,
          key: request.headers.get('idempotency-key'),
          replayed: null as string | null,
        }
        sent.push(entry)
        const response = await (transport.fetch ?? globalThis.fetch)(request)
        entry.replayed = response.headers.get('idempotent-replayed')
        return response
      },
      ...more,
    })

  beforeAll(async () => {
    transport = await makeTransport()
  })

  async function eventsOf(sessionId: string): Promise<SessionEvent[]> {
    const events: SessionEvent[] = []
    for await (const event of client().events.iterate(sessionId)) events.push(event)
    return events
  }

  it('creates a session, starts a run, appends its lines, stops it, and reads it all back', async () => {
    sent = []
    const api = client()
    const session = await api.sessions.create({ metadata: { source: 'e2e' } })
    expect(session).toMatchObject({
      object: 'session',
      status: 'active',
      metadata: { source: 'e2e' },
    })
    expect(session.id).toMatch(/^ses_\w{22}$/)

    const started = await api.serverRuns.start(session.id, {
      type: 'external',
      server: { name: 'e2e-server' },
    })
    expect(started).toMatchObject({
      object: 'server.server_run',
      type: 'external',
      status: 'active',
      stopped_at: null,
      server: { name: 'e2e-server' },
    })
    expect(started.started_at).not.toBeNull()

    const appended = await api.events.append(session.id, {
      server_run_id: started.id,
      log_lines: [
        { type: 'stdout', line: 'Server listening on stdio' },
        { type: 'stderr', line: 'warn: no token' },
      ],
    })
    expect(appended).toMatchObject({
      object: 'session.event',
      type: 'server_logs',
      session_id: session.id,
      server_run: { id: started.id },
      server_run_error: null,
    })
    expect(await api.events.get(session.id, appended.id)).toEqual(appended)

    const stopped = await api.serverRuns.stop(session.id, started.id, {
      status: 'failed',
      error: { code: 'process_exited', message: 'Exited with code 2.', metadata: { exit_code: 2 } },
    })
    expect(stopped).toMatchObject({ id: started.id, status: 'failed' })
    expect(stopped.stopped_at).not.toBeNull()
    expect(await api.serverRuns.get(session.id, started.id)).toEqual(stopped)

    const events = await eventsOf(session.id)
    expect(events.map((e) => e.type)).toEqual(['server_logs', 'server_run_error'])
    expect(events[0]!.log_lines).toEqual(appended.log_lines)
    expect(events[0]!.server_run?.status).toBe('failed') // the run as it is now
    expect(events[1]!.server_run_error).toMatchObject({
      code: 'process_exited',
      message: 'Exited with code 2.',
      metadata: { exit_code: 2 },
    })

    // Every POST carried a key of its own; no GET carried one.
    const posts = sent.filter((r) => r.method === 'POST')
    expect(posts).toHaveLength(4)
    expect(new Set(posts.map((r) => r.key)).size).toBe(4)
    expect(sent.filter((r) => r.method === 'GET').every((r) => r.key === null)).toBe(true)
  })

  it('answers a stop repeated the same way with the run, and refuses another way or more lines', async () => {
    const api = client()
    const session = await api.sessions.create()
    const run = await api.serverRuns.start(session.id, { type: 'external', server: { name: 's' } })
    const stopped = await api.serverRuns.stop(session.id, run.id, { status: 'completed' })
    expect(await api.serverRuns.stop(session.id, run.id, { status: 'completed' })).toEqual(stopped)

    const conflicts = await Promise.all([
      api.serverRuns.stop(session.id, run.id, { status: 'failed' }).catch((e: unknown) => e),
      api.events
        .append(session.id, { server_run_id: run.id, log_lines: [{ type: 'stdout', line: 'x' }] })
        .catch((e: unknown) => e),
    ])
    for (const error of conflicts) {
      expect(error).toBeInstanceOf(SessionEventsError)
      expect(error).toMatchObject({ status: 409, code: 'conflict' })
    }
  })

  it('stores a write once when its answer was lost and the client sent it again', async () => {
    const api = client()
    sent = []
    transport.loseAnswers(1)
    const session = await api.sessions.create({ metadata: { attempt: 'lost answer' } })
    transport.loseAnswers(1)
    const run = await api.serverRuns.start(session.id, { type: 'external', server: { name: 's' } })
    transport.loseAnswers(2)
    const appended = await api.events.append(session.id, {
      server_run_id: run.id,
      log_lines: [{ type: 'stdout', line: 'once' }],
    })
    transport.loseAnswers(1)
    const stopped = await api.serverRuns.stop(session.id, run.id, { status: 'completed' })
    expect(stopped.status).toBe('completed')

    // Each write was sent again with its key, and the API answered the retry from its record.
    const posts = sent.filter((r) => r.method === 'POST')
    expect(posts.map((r) => r.path)).toEqual([
      '/sessions',
      '/sessions',
      `/sessions/${session.id}/server-runs`,
      `/sessions/${session.id}/server-runs`,
      `/sessions/${session.id}/events`,
      `/sessions/${session.id}/events`,
      `/sessions/${session.id}/events`,
      `/sessions/${session.id}/server-runs/${run.id}/stop`,
      `/sessions/${session.id}/server-runs/${run.id}/stop`,
    ])
    for (const [first, ...retries] of [posts.slice(0, 2), posts.slice(2, 4), posts.slice(4, 7), posts.slice(7)]) {
      for (const retry of retries) expect(retry.key).toBe(first!.key)
      expect(retries.at(-1)!.replayed).toBe('true')
    }

    const events = await eventsOf(session.id)
    expect(events.map((e) => e.id)).toEqual([appended.id])
    expect(events[0]!.log_lines).toEqual([{ type: 'stdout', line: 'once' }])
    expect((await api.serverRuns.get(session.id, run.id)).status).toBe('completed')
  })

  it('answers a key of the caller’s sent again by another call with the first answer', async () => {
    const api = client()
    const session = await api.sessions.create()
    const run = await api.serverRuns.start(session.id, { type: 'external', server: { name: 's' } })
    const body = {
      server_run_id: run.id,
      log_lines: [{ type: 'stderr' as const, line: 'a batch' }],
    }
    const idempotencyKey = `${run.id}-batch-1`
    const first = await api.events.append(session.id, body, { idempotencyKey })
    const again = await api.events.append(session.id, body, { idempotencyKey })
    expect(again).toEqual(first)
    expect((await eventsOf(session.id)).map((e) => e.id)).toEqual([first.id])
  })
})
