import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { newId } from '../src/ids.js'
import { backend } from './backend.js'
import { fixture, silent, testSettings, type Fixture } from './helpers.js'
import { overriding } from './store-overrides.js'

// The write half through the real app (app.request), on every store: sessions, runs, appends and
// stops, their errors, tenancy, Idempotency-Key, the body limit, and the order of ids.

let f: Fixture
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 5 })
})

const body = async (res: Response) => (await res.json()) as any

function post(path: string, json?: unknown, headers: Record<string, string> = {}, key: string = f.a.secret_key) {
  return f.app.request(path, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${key}`,
      ...(json !== undefined && { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(json !== undefined && { body: JSON.stringify(json) }),
  })
}

/** Rows of every table a write may touch: a rejected request must leave them as they were. */
async function rowCounts(): Promise<Record<string, number>> {
  const tables = [
    'sessions',
    'servers',
    'server_versions',
    'server_deployments',
    'server_sessions',
    'server_runs',
    'server_run_errors',
    'session_events',
  ] as const
  const counts: Record<string, number> = {}
  for (const table of tables) {
    const row = await f.store.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    counts[table] = Number(row.n)
  }
  return counts
}

async function newSession(key = f.a.secret_key): Promise<string> {
  const res = await post('/sessions', {}, {}, key)
  expect(res.status).toBe(201)
  return (await body(res)).id
}

async function newRun(sessionId: string, extra: Record<string, unknown> = {}): Promise<any> {
  const res = await post(`/sessions/${sessionId}/server-runs`, {
    type: 'external',
    server: { name: 'echo-server' },
    ...extra,
  })
  expect(res.status).toBe(201)
  return body(res)
}

const append = (
  sessionId: string,
  serverRunId: string,
  lines: { type: 'stdout' | 'stderr'; line: string }[],
  headers?: Record<string, string>,
) => post(`/sessions/${sessionId}/events`, { server_run_id: serverRunId, log_lines: lines }, headers)

describe(`writes (${backend})`, () => {
  it("creates a session in the key's instance, with its metadata, and lists its events (none yet)", async () => {
    const res = await post('/sessions', { metadata: { team: 'platform', n: 1 } })
    expect(res.status).toBe(201)
    expect(res.headers.get('metorial-req-id')).toMatch(/^req_/)
    const session = await body(res)
    expect(session).toMatchObject({ object: 'session', status: 'active', metadata: { team: 'platform', n: 1 } })
    expect(session.created_at).toBe(session.updated_at)
    const list = await f.get(`/sessions/${session.id}/events`)
    expect(list.status).toBe(200)
    expect((await body(list)).items).toEqual([])
    // Another instance's key does not see it.
    expect((await f.get(`/sessions/${session.id}/events`, f.b.secret_key)).status).toBe(404)
    // A bare POST, without a body, is a session without metadata.
    const bare = await f.app.request('/sessions', {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}` },
    })
    expect(bare.status).toBe(201)
    expect((await body(bare)).metadata).toEqual({})
  })

  it('starts a run with what it runs on, new or reused by id, and reads it back as it is now', async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId, {
      server_deployment: { name: 'echo (staging)', metadata: { region: 'eu' } },
      server_session: {
        mcp: {
          version: '2025-06-18',
          connection_type: 'websocket',
          client: { name: 'cli', version: '1.0.0' },
          server: null,
        },
      },
    })
    expect(run).toMatchObject({
      object: 'server.server_run',
      type: 'external',
      status: 'active',
      stopped_at: null,
      server: { name: 'echo-server', type: 'custom', description: null },
      server_deployment: { name: 'echo (staging)', metadata: { region: 'eu' } },
      server_session: {
        session_id: sessionId,
        mcp: {
          object: 'mcp',
          version: '2025-06-18',
          connection_type: 'websocket',
          client: { object: 'session.server_session.client', name: 'cli', capabilities: {} },
          server: null,
        },
      },
    })
    expect(run.started_at).toBe(run.created_at)
    // A second run on the same server, deployment and server session.
    const again = await newRun(sessionId, {
      server: { id: run.server.id },
      server_deployment: { id: run.server_deployment.id },
      server_session: { id: run.server_session.id },
      server_version_id: run.server_version_id,
    })
    expect(again.id).not.toBe(run.id)
    expect(again.server_session.id).toBe(run.server_session.id)
    expect(again.server_deployment.id).toBe(run.server_deployment.id)
    const got = await f.get(`/sessions/${sessionId}/server-runs/${run.id}`)
    expect(got.status).toBe(200)
    expect(await body(got)).toEqual(run)
    // Without a server session said, it is the spec's default.
    const plain = await newRun(sessionId)
    expect(plain.server_session.mcp).toEqual({
      object: 'mcp',
      version: '2025-03-26',
      connection_type: 'streamable_http',
      client: null,
      server: null,
    })
  })

  it("refuses ids of things that are not the instance's, naming the field, and writes nothing", async () => {
    const sessionId = await newSession()
    const mine = await newRun(sessionId)
    const foreignSession = await newSession(f.b.secret_key)
    const foreign: any = await (
      await post(
        `/sessions/${foreignSession}/server-runs`,
        { type: 'hosted', server: { name: 'b' } },
        {},
        f.b.secret_key,
      )
    ).json()
    const cases: [Record<string, unknown>, (string | number)[]][] = [
      [{ server: { id: foreign.server.id } }, ['server', 'id']],
      [{ server: { id: newId('server') } }, ['server', 'id']],
      [{ server: {} }, ['server', 'name']],
      [
        { server: { id: mine.server.id }, server_deployment: { id: foreign.server_deployment.id } },
        ['server_deployment', 'id'],
      ],
      [{ server: { id: mine.server.id }, server_version_id: foreign.server_version_id }, ['server_version_id']],
      [
        {
          server: { id: mine.server.id },
          server_deployment: { id: mine.server_deployment.id },
          server_session: { id: foreign.server_session.id },
        },
        ['server_session', 'id'],
      ],
    ]
    for (const [extra, path] of cases) {
      const before = await rowCounts()
      const res = await post(`/sessions/${sessionId}/server-runs`, {
        type: 'external',
        server: { name: 'x' },
        ...extra,
      })
      expect(res.status, JSON.stringify(extra)).toBe(400)
      const error = await body(res)
      expect(error).toMatchObject({ code: 'invalid_data' })
      expect(error.errors[0].path).toEqual(path)
      expect(await rowCounts()).toEqual(before)
    }
  })

  it('appends log lines as one immutable event, shown as the get operation shows it', async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId)
    const lines = [
      { type: 'stdout' as const, line: 'héllo "quoted" \\ back' },
      { type: 'stderr' as const, line: 'x'.repeat(65_536) },
      { type: 'stdout' as const, line: '\u0000 nul and \u2028 separators' },
    ]
    const res = await append(sessionId, run.id, lines)
    expect(res.status).toBe(201)
    const event = await body(res)
    expect(event).toMatchObject({
      object: 'session.event',
      type: 'server_logs',
      session_id: sessionId,
      log_lines: lines,
      server_run_error: null,
    })
    expect(event.server_run.id).toBe(run.id)
    expect(await body(await f.get(`/sessions/${sessionId}/events/${event.id}`))).toEqual(event)
  })

  it('refuses bad appends with a 400 naming the field, and leaves no row behind', async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId)
    const otherSession = await newSession()
    const otherRun = await newRun(otherSession)
    const cases: [unknown, (string | number)[]][] = [
      [{ server_run_id: newId('serverRun'), log_lines: [{ type: 'stdout', line: 'a' }] }, ['server_run_id']],
      [{ server_run_id: otherRun.id, log_lines: [{ type: 'stdout', line: 'a' }] }, ['server_run_id']],
      [{ server_run_id: run.id, log_lines: [] }, ['log_lines']],
      [
        { server_run_id: run.id, log_lines: Array.from({ length: 1001 }, () => ({ type: 'stdout', line: 'a' })) },
        ['log_lines'],
      ],
      [{ server_run_id: run.id, log_lines: [{ type: 'stdout', line: 'x'.repeat(65_537) }] }, ['log_lines', 0, 'line']],
      [{ server_run_id: run.id, log_lines: [{ type: 'stdlog', line: 'a' }] }, ['log_lines', 0, 'type']],
      [{ log_lines: [{ type: 'stdout', line: 'a' }] }, ['server_run_id']],
      [{ server_run_id: run.id }, ['log_lines']],
    ]
    for (const [json, path] of cases) {
      const before = await rowCounts()
      const res = await post(`/sessions/${sessionId}/events`, json)
      expect(res.status).toBe(400)
      const error = await body(res)
      expect(error.code).toBe('invalid_data')
      expect(error.errors.map((e: { path: unknown }) => e.path)).toContainEqual(path)
      expect(await rowCounts()).toEqual(before)
    }
    const malformed = await f.app.request(`/sessions/${sessionId}/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}`, 'content-type': 'application/json' },
      body: '{"server_run_id":',
    })
    expect(malformed.status).toBe(400)
    expect(await body(malformed)).toMatchObject({ code: 'bad_request' })
  })

  it('stops a run: completed, or failed with its error event; the same stop again is a no-op, another a 409', async () => {
    const sessionId = await newSession()
    const completed = await newRun(sessionId)
    const stop = (runId: string, json: unknown) => post(`/sessions/${sessionId}/server-runs/${runId}/stop`, json)

    const done = await stop(completed.id, { status: 'completed' })
    expect(done.status).toBe(200)
    const run = await body(done)
    expect(run).toMatchObject({ status: 'completed' })
    expect(run.stopped_at).toBe(run.updated_at)
    expect((await stop(completed.id, { status: 'completed' })).status).toBe(200)
    expect(await body(await stop(completed.id, { status: 'failed' }))).toMatchObject({ code: 'conflict' })
    const late = await append(sessionId, completed.id, [{ type: 'stdout', line: 'after the end' }])
    expect(late.status).toBe(409)
    expect(await body(late)).toMatchObject({ code: 'conflict' })

    const failing = await newRun(sessionId)
    await append(sessionId, failing.id, [{ type: 'stderr', line: 'panic' }])
    const error = { code: 'process_exited', message: 'exited with code 3', metadata: { exit_code: 3 } }
    const failed = await stop(failing.id, { status: 'failed', error })
    expect(failed.status).toBe(200)
    expect(await body(failed)).toMatchObject({ status: 'failed' })
    const again = await stop(failing.id, { status: 'failed', error })
    expect(again.status).toBe(200)
    expect((await stop(failing.id, { status: 'failed', error: { ...error, message: 'other' } })).status).toBe(409)
    const events = (await body(await f.get(`/sessions/${sessionId}/events?server_run_id=${failing.id}`))).items
    expect(events.map((e: { type: string }) => e.type)).toEqual(['server_logs', 'server_run_error'])
    expect(events[1].server_run_error).toMatchObject({ object: 'server.server_run.error', ...error })
    expect(events[1].server_run_error.server_run.status).toBe('failed')
    // Only a failed run has an error.
    const other = await newRun(sessionId)
    const wrong = await stop(other.id, { status: 'completed', error })
    expect(wrong.status).toBe(400)
    expect((await body(wrong)).errors[0].path).toEqual(['error'])
  })

  it("answers another instance's session or run exactly like one that does not exist, and writes nothing", async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId)
    const requests: [string, unknown][] = [
      [`/sessions/${sessionId}/server-runs`, { type: 'external', server: { name: 'x' } }],
      [`/sessions/${sessionId}/events`, { server_run_id: run.id, log_lines: [{ type: 'stdout', line: 'x' }] }],
      [`/sessions/${sessionId}/server-runs/${run.id}/stop`, { status: 'completed' }],
    ]
    for (const [path, json] of requests) {
      const before = await rowCounts()
      const foreign = await post(path, json, {}, f.b.secret_key)
      const missing = await post(path.replace(sessionId, newId('session')), json, {}, f.b.secret_key)
      expect(foreign.status).toBe(404)
      expect(await body(foreign)).toEqual(await body(missing))
      expect((await post(path, json, {}, f.a.publishable_key)).status).toBe(403)
      expect((await post(path, json, {}, f.a.revoked_key)).status).toBe(401)
      expect(await rowCounts()).toEqual(before)
    }
    expect(await body(await f.get(`/sessions/${sessionId}/server-runs/${newId('serverRun')}`))).toMatchObject({
      status: 404,
      entity: 'server_run',
    })
  })

  it('refuses bodies nested deeper than 64 levels and keys named __proto__, writing nothing', async () => {
    const before = await rowCounts()
    const tooDeep = await f.app.request('/sessions', {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}`, 'content-type': 'application/json' },
      body: `{"metadata":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}`,
    })
    expect(tooDeep.status).toBe(400)
    expect(await body(tooDeep)).toMatchObject({ code: 'bad_request' })
    let fine: unknown = 'bottom'
    for (let i = 0; i < 50; i++) fine = { a: fine }
    const nested = await post('/sessions', { metadata: fine })
    expect(nested.status).toBe(201)
    expect((await body(nested)).metadata).toEqual(fine)
    // At the edge: the body itself is a level, so metadata of 63 levels is 64 in all, and of 64, 65.
    let edge: unknown = [1]
    for (let i = 1; i < 62; i++) edge = { a: edge }
    expect((await post('/sessions', { metadata: { a: edge } })).status).toBe(201)
    const over = await post('/sessions', { metadata: { a: { a: edge } } })
    expect(over.status).toBe(400)
    expect(await body(over)).toMatchObject({ code: 'bad_request' })
    const proto = await f.app.request('/sessions', {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}`, 'content-type': 'application/json' },
      body: '{"metadata":{"plain":1,"nested":{"__proto__":{"role":"admin"}}}}',
    })
    expect(proto.status).toBe(400)
    expect((await body(proto)).errors[0].path).toEqual(['metadata', 'nested', '__proto__'])
    const after = await rowCounts()
    expect(after.sessions).toBe(before.sessions! + 2)
  })

  it('answers a body over 5 MB with 413, whether it says its length or not', async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId)
    const big = JSON.stringify({
      server_run_id: run.id,
      log_lines: Array.from({ length: 90 }, () => ({ type: 'stdout', line: 'x'.repeat(60_000) })),
    })
    expect(big.length).toBeGreaterThan(5 * 1024 * 1024)
    const before = await rowCounts()
    const sized = await post(`/sessions/${sessionId}/events`, JSON.parse(big))
    expect(sized.status).toBe(413)
    expect(await body(sized)).toMatchObject({ code: 'payload_too_large' })
    const streamed = await f.app.request(`/sessions/${sessionId}/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}`, 'content-type': 'application/json' },
      body: new Blob([big]).stream(),
      duplex: 'half',
    } as RequestInit)
    expect(streamed.status).toBe(413)
    expect(await rowCounts()).toEqual(before)
  })

  it('gives every event of a session an id above the last, in commit order, under concurrent appends', async () => {
    const sessionId = await newSession()
    const runs = [await newRun(sessionId), await newRun(sessionId)]
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) =>
        body(await append(sessionId, runs[i % 2].id, [{ type: 'stdout', line: `line ${i}` }])),
      ),
    )
    const ids = results.map((e) => e.id as string)
    expect(new Set(ids).size).toBe(40)
    const listed = (await body(await f.get(`/sessions/${sessionId}/events?limit=100`))).items.map(
      (e: { id: string }) => e.id,
    )
    expect(listed).toEqual([...ids].sort())
    // Appended with the clock set back, an event still lands after every one before it.
    const [late] = await f.store.seeding.appendLogEvents([
      { serverRunId: runs[0].id, lines: [], at: new Date('2001-01-01T00:00:00Z') },
    ])
    expect(late! > listed.at(-1)).toBe(true)
  })
})

describe(`Idempotency-Key (${backend})`, () => {
  it('replays the first answer for a retry with the same key and body, with the same ids', async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId)
    const lines = [{ type: 'stdout' as const, line: 'once' }]
    const first = await append(sessionId, run.id, lines, { 'Idempotency-Key': 'append-1' })
    const retry = await append(sessionId, run.id, lines, { 'Idempotency-Key': 'append-1' })
    expect(first.status).toBe(201)
    expect(retry.status).toBe(201)
    expect(first.headers.get('idempotent-replayed')).toBeNull()
    expect(retry.headers.get('idempotent-replayed')).toBe('true')
    expect(retry.headers.get('metorial-req-id')).not.toBe(first.headers.get('metorial-req-id'))
    expect((await body(retry)).id).toBe((await body(first)).id)
    expect((await body(await f.get(`/sessions/${sessionId}/events`))).items).toHaveLength(1)
    // The same key with another body: 422, and nothing written.
    const other = await append(sessionId, run.id, [{ type: 'stdout', line: 'twice' }], {
      'Idempotency-Key': 'append-1',
    })
    expect(other.status).toBe(422)
    expect(await body(other)).toMatchObject({ code: 'idempotency_key_reused' })
    // Keys are per instance: B's same key is B's own.
    const bSession = await newSession(f.b.secret_key)
    const bCreate = await post('/sessions', {}, { 'Idempotency-Key': 'shared' }, f.b.secret_key)
    const aCreate = await post('/sessions', {}, { 'Idempotency-Key': 'shared' })
    expect([aCreate.status, bCreate.status]).toEqual([201, 201])
    expect((await body(aCreate)).id).not.toBe((await body(bCreate)).id)
    expect(bSession).toBeTruthy()
    // A 4xx is an answer too: it is replayed.
    const stopped = await post(`/sessions/${sessionId}/server-runs/${run.id}/stop`, { status: 'completed' })
    expect(stopped.status).toBe(200)
    const refused = await append(sessionId, run.id, lines, { 'Idempotency-Key': 'late' })
    const refusedAgain = await append(sessionId, run.id, lines, { 'Idempotency-Key': 'late' })
    expect([refused.status, refusedAgain.status]).toEqual([409, 409])
    expect(await refusedAgain.json()).toEqual(await refused.json())
    // The spec declares Idempotent-Replayed on successes only: a replayed refusal is the refusal.
    expect(refusedAgain.headers.get('idempotent-replayed')).toBeNull()
  })

  it('answers 409 with Retry-After while the first request with the key is in flight, and frees the key after a 5xx', async () => {
    const sessionId = await newSession()
    const run = await newRun(sessionId)
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let fail = false
    const writer = f.store.writer
    const slow = overriding(f.store, {
      writer: Object.assign(Object.create(Object.getPrototypeOf(writer)), writer, {
        appendEvent: async (input: Parameters<typeof writer.appendEvent>[0]) => {
          await held
          if (fail) throw new Error('boom')
          return writer.appendEvent(input)
        },
      }),
    })
    const app = createApp({ store: slow, logger: silent, config: testSettings })
    const send = () =>
      app.request(`/sessions/${sessionId}/events`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${f.a.secret_key}`,
          'content-type': 'application/json',
          'Idempotency-Key': 'slow',
        },
        body: JSON.stringify({ server_run_id: run.id, log_lines: [{ type: 'stdout', line: 'slow' }] }),
      })
    fail = true
    const first = send()
    await new Promise((r) => setTimeout(r, 50))
    const meanwhile = await send()
    expect(meanwhile.status).toBe(409)
    expect(meanwhile.headers.get('retry-after')).toBe('1')
    expect(await body(meanwhile)).toMatchObject({ code: 'idempotency_key_in_use' })
    release()
    expect((await first).status).toBe(500)
    // The 500 was not kept: the retry runs, and is kept.
    fail = false
    const retry = await send()
    expect(retry.status).toBe(201)
    expect(retry.headers.get('idempotent-replayed')).toBeNull()
    expect((await send()).headers.get('idempotent-replayed')).toBe('true')
  })
})

afterAll(async () => {
  await f?.store.close()
})
