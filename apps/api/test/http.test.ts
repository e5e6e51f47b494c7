import { request as httpRequest, type IncomingMessage } from 'node:http'
import * as specValues from '@session-events/server-stubs/values'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { serve, type RunningServer } from '../src/server.js'
import { fixture, sessionRuns, silent, testSettings, type Fixture } from './helpers.js'
import { countingEventReads, overriding } from './store-overrides.js'

// Over real HTTP with @hono/node-server: what app.request() cannot show.

let f: Fixture
let server: RunningServer
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 30 })
  server = await serve({ app: f.app, port: 0 })
})
afterAll(async () => {
  await server?.close()
  await f?.store.close()
})

const auth = () => ({ Authorization: `Bearer ${f.a.secret_key}` })

describe('over HTTP', () => {
  it('serves a page with the contract headers', async () => {
    const res = await fetch(`${server.url}/sessions/${f.a.sessions[0]!.id}/events?limit=5`, {
      headers: { ...auth(), 'Metorial-Version': '2025-01-01-pulsar' },
    })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(res.headers.get('metorial-version')).toBe('2025-01-01')
    expect(res.headers.get('metorial-req-id')).toMatch(/^req_[0-9A-Za-z]{22}$/)
    const body = (await res.json()) as any
    expect(body.items).toHaveLength(5)
    const event = await fetch(`${server.url}/sessions/${f.a.sessions[0]!.id}/events/${body.items[0].id}`, {
      headers: auth(),
    })
    expect(((await event.json()) as any).id).toBe(body.items[0].id)
  })

  it('answers errors in the error shape over the wire', async () => {
    const res = await fetch(`${server.url}/sessions/${f.a.sessions[0]!.id}/events`)
    expect(res.status).toBe(401)
    expect(await res.json()).toMatchObject({ __typename: 'error', ok: false, code: 'unauthorized' })
  })

  it('answers a request too large for Node in the error shape, with the contract headers', async () => {
    const res = await fetch(`${server.url}/sessions/${f.a.sessions[0]!.id}/events?unknown=${'a'.repeat(20_000)}`, {
      headers: auth(),
    })
    expect(res.status).toBe(400)
    expect(res.headers.get('metorial-req-id')).toMatch(/^req_[0-9A-Za-z]{22}$/)
    expect(res.headers.get('metorial-version')).toBe('2025-01-01')
    expect(await res.json()).toMatchObject({ __typename: 'error', ok: false, status: 400, code: 'bad_request' })
  })

  it('gives each request its own id', async () => {
    const a = await fetch(`${server.url}/healthz`)
    const b = await fetch(`${server.url}/healthz`)
    expect(a.headers.get('metorial-req-id')).not.toBe(b.headers.get('metorial-req-id'))
  })

  it('serves the docs as HTML at /docs when they are built', async () => {
    const app = createApp({
      store: f.store,
      logger: silent,
      config: testSettings,
      docsHtml: '<!doctype html><title>Session Events API</title>',
    })
    const s = await serve({ app, port: 0 })
    const res = await fetch(`${s.url}/docs`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/html/)
    await s.close()
  })

  it('finishes a request in flight when it shuts down, and takes no new ones', async () => {
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let started!: () => void
    const inFlight = new Promise<void>((resolve) => (started = resolve))
    const slow = overriding(f.store, {
      reader: {
        listEventIds: async (query) => {
          started()
          await held
          return f.store.reader.listEventIds(query)
        },
      },
    })
    const s = await serve({ app: createApp({ store: slow, logger: silent, config: testSettings }), port: 0 })
    const response = fetch(`${s.url}/sessions/${f.a.sessions[0]!.id}/events?limit=3`, {
      headers: { ...auth(), Connection: 'close' },
    })
    await inFlight
    const closed = s.close()
    // A new connection is refused while the old request is still being answered.
    await expect(
      new Promise((resolve, reject) => {
        const req = httpRequest(`${s.url}/healthz`, resolve)
        req.on('error', reject)
        req.end()
      }),
    ).rejects.toThrow(/ECONNREFUSED/)
    release()
    const res = await response
    expect(res.status).toBe(200)
    expect(((await res.json()) as any).items).toHaveLength(3)
    await closed
  })

  it('sends a live tail to the connection: its headers, and a follower that does not read holds the server to its pace, nothing lost', async () => {
    const sessionId = f.a.sessions[0]!.id
    const runId = (await sessionRuns(f.store, sessionId)).find((r) => r.status === 'active')!.id
    const counting = countingEventReads(f.store)
    const s = await serve({
      app: createApp({ store: counting.store, logger: silent, config: { ...testSettings, cacheBytes: 0 } }),
      port: 0,
    })
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(`${s.url}/sessions/${sessionId}/events/stream`, { headers: auth() }, resolve)
      req.on('error', reject)
      req.end()
    })
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/event-stream')
    expect(res.headers['cache-control']).toBe('no-cache')
    expect(res.headers['metorial-req-id']).toMatch(/^req_[0-9A-Za-z]{22}$/)
    expect(res.headers['metorial-version']).toBe('2025-01-01')
    // The client reads nothing: what the server sends stays in its buffers and the kernel's.
    res.pause()
    // 16,000 events of about 2 KB: more than the socket buffers hold (a few MB on loopback).
    const written: string[] = []
    for (let batch = 0; batch < 16; batch++) {
      written.push(
        ...(await f.store.seeding.appendLogEvents(
          Array.from({ length: 1_000 }, (_, i) => ({
            serverRunId: runId,
            lines: [{ type: 'stdout' as const, line: `bulk ${batch}.${i} ${'x'.repeat(2_000)}` }],
          })),
        )),
      )
    }
    await new Promise((r) => setTimeout(r, 500))
    // It stopped reading the store once the connection held what the client had not taken.
    expect(counting.read()).toBeLessThan(written.length / 2)
    // Then every event, once, in order, as the client reads.
    const ids: string[] = []
    let text = ''
    res.setEncoding('utf8')
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        text += chunk
        const messages = text.split('\n\n')
        text = messages.pop()!
        for (const m of messages) {
          const [id, name] = /^id: (\S+)\nevent: (\S+)\n/.exec(m)?.slice(1) ?? []
          if (name === specValues.sseEvents.sessionEvent.name && id) ids.push(id)
        }
        if (ids.length >= written.length) resolve()
      })
      res.on('error', reject)
      res.resume()
    })
    expect(ids).toEqual(written)
    res.destroy()
    await s.close({ timeoutMs: 1_000 })
  }, 60_000)
})
