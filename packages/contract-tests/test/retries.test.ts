import { createServer, connect, type Server, type Socket } from 'node:net'
import { serve, type RunningServer } from '@session-events/api'
import { createSessionEventsClient, type components } from '@session-events/client'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { placesOf, rowsWritten, validBody, type Places } from './support/bodies.js'
import { FUZZ_SEED } from './support/fuzz.js'
import { operation } from './support/spec.js'
import { createWorld, freshRun, heldStore, rowCounts, rowsAdded, within, type World } from './support/world.js'

// Retries that cannot write twice. Between the typed client and the real server sits a TCP proxy
// that, when told to, lets a request through and then cuts the connection as the answer starts
// to come back: the server got the request and wrote, the client never sees the answer. The
// client (@session-events/client) retries on its own with the same Idempotency-Key and body, and
// gets the first answer, replayed. Each call must leave exactly the rows of one call, and return
// what the server wrote; and when the cut comes while the server is still writing, the retry is
// told to wait (409 idempotency_key_in_use, Retry-After) and then gets the first answer. Without
// a key (the control), the same cut writes twice: the cut is real.

type ServerRunStart = components['schemas']['ServerRunStart']
type SessionEventCreate = components['schemas']['SessionEventCreate']
type ServerRunStop = components['schemas']['ServerRunStop']
type SessionCreate = components['schemas']['SessionCreate']

/**
 * A TCP proxy to `target` that cuts the next `drops` answers: when the first bytes of an answer
 * come back for a request, both connections are destroyed instead. (The client sends one
 * request at a time on a connection: bytes from the server after bytes from the client are
 * the start of that request's answer.)
 */
class DroppingProxy {
  drops = 0
  dropped = 0
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  readonly #clients = new Set<Socket>()
  /** Clients cut on purpose while the server works: their server side stays open. */
  readonly #cut = new WeakSet<Socket>()
  url = ''

  constructor(target: { port: number }) {
    this.#server = createServer((client) => {
      const upstream = connect(target.port, '127.0.0.1')
      this.#sockets.add(client).add(upstream)
      this.#clients.add(client)
      client.on('close', () => this.#clients.delete(client))
      let answering = false
      client.on('data', (chunk) => {
        answering = false
        upstream.write(chunk)
      })
      upstream.on('data', (chunk) => {
        if (!answering && this.drops > 0) {
          this.drops -= 1
          this.dropped += 1
          client.destroy()
          upstream.destroy()
          return
        }
        answering = true
        client.write(chunk)
      })
      // The server's side closes the client's; the client's side closes the server's, unless
      // the client was cut on purpose while the server works (cutClients).
      client.on('error', () => client.destroy())
      upstream.on('error', () => upstream.destroy())
      upstream.on('close', () => {
        this.#sockets.delete(upstream)
        client.destroy()
      })
      client.on('close', () => {
        this.#sockets.delete(client)
        if (!this.#cut.has(client)) upstream.destroy()
      })
    })
  }

  /** Cuts every client's connection now, leaving the server's side open: the server goes on with what it is doing. */
  cutClients(): number {
    const cut = this.#clients.size
    for (const client of this.#clients) {
      this.#cut.add(client)
      client.destroy()
    }
    return cut
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    const address = this.#server.address()
    if (!address || typeof address === 'string') throw new Error('the proxy has no port')
    this.url = `http://127.0.0.1:${address.port}`
    return this
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

let world: World
let server: RunningServer
let proxy: DroppingProxy
let places: Places
let sessionId: string
/** The writes that reached the server, as method and path. */
const arrived: string[] = []
/** The answers the client saw, as status and whether they were replays. */
const seen: { status: number; replayed: boolean }[] = []

beforeAll(async () => {
  world = await createWorld({ sessions: 1, events: 10 })
  sessionId = world.a.sessions[0]!.id
  places = await placesOf(world.store, world.a.id, sessionId)
  // The real app, counting the writes that reach it.
  const app = {
    fetch: (request: Request, ...rest: unknown[]) => {
      if (request.method === 'POST') arrived.push(`${request.method} ${new URL(request.url).pathname}`)
      return world.app.fetch(request, ...(rest as []))
    },
  }
  server = await serve({ app, port: 0 })
  proxy = await new DroppingProxy(server).listen()
})

afterAll(async () => {
  await proxy?.close()
  await server?.close({ timeoutMs: 1_000 })
  await world?.store.close()
})

/** The typed client, through the proxy; it sends an Idempotency-Key with every write and retries a cut connection. */
function client(options: { withoutKeys?: boolean; through?: DroppingProxy } = {}) {
  return createSessionEventsClient({
    apiKey: world.a.secret_key,
    baseUrl: (options.through ?? proxy).url,
    maxRetries: 3,
    retryDelayMs: 5,
    timeoutMs: 10_000,
    fetch: async (request) => {
      // The control: the same client with the key it made taken off again.
      if (options.withoutKeys) request.headers.delete('Idempotency-Key')
      const response = await fetch(request)
      seen.push({ status: response.status, replayed: response.headers.get('idempotent-replayed') === 'true' })
      return response
    },
  })
}

const sample = <T>(arbitrary: fc.Arbitrary<T>, count: number) =>
  fc.sample(arbitrary, { seed: FUZZ_SEED, numRuns: count })

interface Call {
  operationId: string
  body: unknown
  /** Makes the call (on `run`, an active run of the session, for a call that stops one); returns the id of what it wrote. */
  run(c: ReturnType<typeof client>, run: string): Promise<string>
}

function calls(): Call[] {
  const bodies = (id: string, n: number) => sample(validBody(operation(id), places), n)
  return [
    ...bodies('createSessionEvent', 3).map((body) => ({
      operationId: 'createSessionEvent',
      body,
      run: async (c: ReturnType<typeof client>) => (await c.events.append(sessionId, body as SessionEventCreate)).id,
    })),
    ...bodies('startServerRun', 3).map((body) => ({
      operationId: 'startServerRun',
      body,
      run: async (c: ReturnType<typeof client>) => (await c.serverRuns.start(sessionId, body as ServerRunStart)).id,
    })),
    ...bodies('createSession', 2).map((body) => ({
      operationId: 'createSession',
      body,
      run: async (c: ReturnType<typeof client>) => (await c.sessions.create(body as SessionCreate | undefined)).id,
    })),
    ...bodies('stopServerRun', 2).map((body) => ({
      operationId: 'stopServerRun',
      body,
      run: async (c: ReturnType<typeof client>, run: string) =>
        (await c.serverRuns.stop(sessionId, run, body as ServerRunStop)).id,
    })),
  ]
}

describe('retries through a connection cut after the request was sent', () => {
  it.each([1, 2, 3])('%i answer(s) cut: each call writes exactly once and returns what it wrote', async (drops) => {
    for (const call of calls()) {
      const what = `${call.operationId} ${JSON.stringify(call.body)?.slice(0, 200)}`
      const run = await freshRun(world.store, world.a.id, sessionId)
      const [arrivedBefore, seenBefore, before] = [arrived.length, seen.length, await rowCounts(world.store)]
      proxy.drops = drops
      const id = await call.run(client(), run)
      expect(proxy.drops, `${what}: every cut happened`).toBe(0)
      // The server got the request once per attempt; the rows are those of one call.
      expect(arrived.length - arrivedBefore, `${what}: attempts that reached the server`).toBe(drops + 1)
      expect(await rowsAdded(world.store, before), what).toEqual(rowsWritten(operation(call.operationId), call.body))
      // The answer the client returned is the first one, replayed: the server's ids.
      expect(seen.slice(seenBefore), what).toEqual([
        { status: call.operationId === 'stopServerRun' ? 200 : 201, replayed: true },
      ])
      expect(id, what).toMatch(/^[a-z]+_[0-9A-Za-z]{22}$/)
    }
  })

  it('the ids returned are the rows written: appends through cuts land once each, in order', async () => {
    const run = places.activeRuns[0]!
    const before = await world.store.db
      .selectFrom('session_events')
      .select('id')
      .where('session_id', '=', sessionId)
      .execute()
    const ids: string[] = []
    for (let i = 0; i < 20; i++) {
      proxy.drops = i % 3
      ids.push(
        (
          await client().events.append(sessionId, {
            server_run_id: run,
            log_lines: [{ type: 'stdout', line: `line ${i}` }],
          })
        ).id,
      )
    }
    const rows = await world.store.db
      .selectFrom('session_events')
      .select(['id', 'log_lines_json'])
      .where('session_id', '=', sessionId)
      .where(
        'id',
        'not in',
        before.map((r) => r.id),
      )
      .orderBy('id')
      .execute()
    expect(rows.map((r) => r.id)).toEqual(ids)
    expect(rows.map((r) => JSON.parse(r.log_lines_json)[0].line)).toEqual(ids.map((_, i) => `line ${i}`))
  })

  it('the control: without the Idempotency-Key, the same cut writes twice', async () => {
    const run = places.activeRuns[0]!
    const before = await rowCounts(world.store)
    proxy.drops = 1
    await client({ withoutKeys: true }).events.append(sessionId, {
      server_run_id: run,
      log_lines: [{ type: 'stdout', line: 'written twice' }],
    })
    expect(proxy.dropped).toBeGreaterThan(0)
    expect(await rowsAdded(world.store, before)).toEqual({ session_events: 2 })
  })

  it('a cut while the server is still writing: the retry is told to wait (409, Retry-After), then gets the first answer; one write', async () => {
    const held = heldStore(world.store)
    const heldServer = await serve({ app: world.appWith({ store: held.store }), port: 0 })
    const heldProxy = await new DroppingProxy(heldServer).listen()
    try {
      const run = places.activeRuns[0]!
      const before = await rowCounts(world.store)
      const seenBefore = seen.length
      const call = client({ through: heldProxy }).events.append(sessionId, {
        server_run_id: run,
        log_lines: [{ type: 'stdout', line: 'cut mid-write' }],
      })
      await within(held.entered, 5_000, 'the first attempt reaching its write')
      expect(heldProxy.cutClients(), 'connections cut').toBeGreaterThan(0)
      // The retry arrives while the first attempt holds its key: a 409 that says when to come back.
      await within(
        (async () => {
          while (!seen.slice(seenBefore).some((s) => s.status === 409)) await new Promise((r) => setTimeout(r, 5))
        })(),
        5_000,
        'a 409 to the retry',
      )
      held.release()
      const event = await call
      expect(seen.slice(seenBefore)).toEqual([
        { status: 409, replayed: false },
        { status: 201, replayed: true },
      ])
      expect(await rowsAdded(world.store, before)).toEqual({ session_events: 1 })
      const [row] = await world.store.db
        .selectFrom('session_events')
        .select('id')
        .where('session_id', '=', sessionId)
        .orderBy('id', 'desc')
        .limit(1)
        .execute()
      expect(event.id).toBe(row!.id)
    } finally {
      held.release()
      await heldProxy.close()
      await heldServer.close({ timeoutMs: 1_000 })
    }
  })
})
