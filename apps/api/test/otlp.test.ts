import { execFile } from 'node:child_process'
import { request as httpRequest } from 'node:http'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { gzipSync } from 'node:zlib'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ExportLogsServiceRequestSchema,
  ExportLogsServiceResponseSchema,
} from '../src/generated/otlp/opentelemetry/proto/collector/logs/v1/logs_service_pb.js'
import { StatusSchema } from '../src/generated/otlp/google/rpc/status_pb.js'
import { MAX_OTLP_BYTES } from '../src/otlp/wire.js'
import { serve, type RunningServer } from '../src/server.js'
import { createApp } from '../src/app.js'
import { StoreUnavailableError } from '../src/store/types.js'
import { fixture, silent, testSettings, type Fixture } from './helpers.js'
import { overriding } from './store-overrides.js'

// POST /v1/logs, OTLP/HTTP: the OpenTelemetry JS SDK's own exporters (JSON and protobuf, gzip
// on and off), each in a process of its own configured only by its environment, against the
// real server over HTTP; then what an exporter never sends (hostile bodies, bad keys).

let f: Fixture
let server: RunningServer
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 3 })
  server = await serve({ app: f.app, port: 0 })
})
afterAll(async () => {
  await server?.close()
  await f?.store.close()
})

const exporterScript = fileURLToPath(new URL('./otlp-exporter.mjs', import.meta.url))

async function exportWith(
  protocol: 'http' | 'proto',
  attributes: Record<string, string>,
  records: [number, unknown][],
  env: Record<string, string> = {},
) {
  await promisify(execFile)(
    process.execPath,
    [exporterScript, protocol, JSON.stringify(attributes), JSON.stringify(records)],
    {
      env: {
        PATH: process.env.PATH,
        OTEL_EXPORTER_OTLP_ENDPOINT: server.url,
        OTEL_EXPORTER_OTLP_HEADERS: `Authorization=Bearer%20${f.a.secret_key}`,
        ...env,
      },
      timeout: 30_000,
    },
  )
}

const auth = () => ({ Authorization: `Bearer ${f.a.secret_key}` })

/** The sessions of instance A made for a service instance (their metadata), newest first. */
async function sessionOf(serviceInstanceId: string): Promise<string[]> {
  const rows = await f.store.db
    .selectFrom('sessions')
    .select('id')
    .where('metadata_json', '=', JSON.stringify({ 'service.instance.id': serviceInstanceId }))
    .execute()
  return rows.map((r) => r.id)
}

/** A line's stream and text, without its time, level and trace. */
const plain = (lines: { type: string; line: string }[]) => lines.map(({ type, line }) => ({ type, line }))

async function eventsOf(sessionId: string) {
  const res = await fetch(`${server.url}/sessions/${sessionId}/events?limit=100&order=asc`, { headers: auth() })
  expect(res.status).toBe(200)
  return (
    (await res.json()) as {
      items: {
        type: string
        server_run: { id: string; server: { name: string } }
        log_lines: {
          type: string
          line: string
          time?: string
          severity_text?: string
          trace_id?: string
          span_id?: string
        }[]
      }[]
    }
  ).items
}

describe('POST /v1/logs with the OpenTelemetry SDK exporters', () => {
  it.each([
    ['http', 'none'],
    ['http', 'gzip'],
    ['proto', 'none'],
    ['proto', 'gzip'],
  ] as const)(
    '%s exporter, compression %s: records become one event, in order, in a session of the service instance',
    async (protocol, compression) => {
      const instance = `otel-${protocol}-${compression}`
      const records: [number, unknown][] = [
        [9, 'first'],
        [13, 'a warning'],
        [17, { error: 'boom', code: 7 }],
        [5, 'last'],
      ]
      await exportWith(
        protocol,
        { 'service.name': 'otel-mcp', 'service.version': '1.2.3', 'service.instance.id': instance },
        records,
        {
          OTEL_EXPORTER_OTLP_COMPRESSION: compression,
        },
      )
      const [sessionId, ...more] = await sessionOf(instance)
      expect(more).toEqual([])
      const events = await eventsOf(sessionId!)
      expect(events).toHaveLength(1)
      expect(events[0]!.server_run.server.name).toBe('otel-mcp')
      expect(plain(events[0]!.log_lines)).toEqual([
        { type: 'stdout', line: 'first' },
        { type: 'stderr', line: 'a warning' },
        { type: 'stderr', line: '{"error":"boom","code":7}' },
        { type: 'stdout', line: 'last' },
      ])

      // Each line keeps its record's level and time (the SDK stamps the time at emit).
      expect(events[0]!.log_lines.map((l) => l.severity_text)).toEqual(['INFO', 'WARN', 'WARN', 'INFO'])
      for (const l of events[0]!.log_lines) expect(Math.abs(Date.parse(l.time!) - Date.now())).toBeLessThan(120_000)

      // A later export of the same instance: the same session and run, a second event.
      await exportWith(protocol, { 'service.name': 'otel-mcp', 'service.instance.id': instance }, [[9, 'again']], {
        OTEL_EXPORTER_OTLP_COMPRESSION: compression,
      })
      expect(await sessionOf(instance)).toEqual([sessionId])
      const after = await eventsOf(sessionId!)
      expect(after.map((e) => e.log_lines.map((l) => l.line))).toEqual([
        records.map((r) => events[0]!.log_lines[records.indexOf(r)]!.line),
        ['again'],
      ])
      expect(after[1]!.server_run.id).toBe(events[0]!.server_run.id)
    },
  )

  it('takes session.id and an srr_ id as where the records go', async () => {
    const sessionId = f.a.sessions[0]!.id
    await exportWith('proto', { 'service.name': 'named', 'service.instance.id': 'named-1', 'session.id': sessionId }, [
      [9, 'into a named session'],
    ])
    const events = await eventsOf(sessionId)
    const last = events.at(-1)!
    expect(plain(last.log_lines)).toEqual([{ type: 'stdout', line: 'into a named session' }])
    await exportWith('http', { 'service.name': 'named', 'service.instance.id': last.server_run.id }, [
      [9, 'into the run by id'],
    ])
    const again = (await eventsOf(sessionId)).at(-1)!
    expect([again.server_run.id, plain(again.log_lines)]).toEqual([
      last.server_run.id,
      [{ type: 'stdout', line: 'into the run by id' }],
    ])
  })
})

/** An ExportLogsServiceRequest of one resource with these records' bodies. */
function request(attributes: Record<string, string>, bodies: string[], extra: { traceId?: string } = {}) {
  return {
    resourceLogs: [
      {
        resource: { attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: { stringValue: v } })) },
        scopeLogs: [
          {
            scope: { name: 'test' },
            logRecords: bodies.map((b, i) => ({
              timeUnixNano: '1735689600000000000',
              severityNumber: i % 2 === 0 ? 9 : 13,
              body: { stringValue: b },
              ...(extra.traceId && { traceId: extra.traceId, spanId: 'eee19b7ec3c1b174' }),
            })),
          },
        ],
      },
    ],
  }
}

function post(body: string | Uint8Array, headers: Record<string, string>) {
  return fetch(`${server.url}/v1/logs`, { method: 'POST', headers: { ...auth(), ...headers }, body })
}

describe('POST /v1/logs, what an exporter must be told', () => {
  it('answers JSON in JSON, with hex trace ids, and stores the same body once', async () => {
    const body = JSON.stringify(
      request({ 'service.instance.id': 'retry-1' }, ['one', 'two'], { traceId: '5b8efff798038103d269b633813fc60c' }),
    )
    for (let i = 0; i < 2; i++) {
      const res = await post(body, { 'content-type': 'application/json' })
      expect([res.status, res.headers.get('content-type'), await res.json()]).toEqual([200, 'application/json', {}])
    }
    const [sessionId] = await sessionOf('retry-1')
    const events = await eventsOf(sessionId!)
    expect(events.map((e) => e.log_lines.length)).toEqual([2])
    expect(events[0]!.log_lines[1]).toEqual({
      type: 'stderr',
      line: 'two',
      time: '2025-01-01T00:00:00.000Z',
      trace_id: '5b8efff798038103d269b633813fc60c',
      span_id: 'eee19b7ec3c1b174',
    })
  })

  it('refuses a malformed body with 400 and a google.rpc.Status in the request encoding', async () => {
    const bad = await post(new Uint8Array([0x0a, 0xff, 0xff, 0xff]), { 'content-type': 'application/x-protobuf' })
    expect([bad.status, bad.headers.get('content-type')]).toEqual([400, 'application/x-protobuf'])
    expect(fromBinary(StatusSchema, new Uint8Array(await bad.arrayBuffer())).code).toBe(3)
    const badJson = await post('{"resourceLogs": [', { 'content-type': 'application/json' })
    expect(badJson.status).toBe(400)
    expect(((await badJson.json()) as { code: number }).code).toBe(3)
    const badId = await post(JSON.stringify(request({}, ['x'], { traceId: 'not-hex' })), {
      'content-type': 'application/json',
    })
    expect(badId.status).toBe(400)
  })

  it('cuts a gzip bomb off at 20 MiB with 413', async () => {
    const bomb = gzipSync(Buffer.alloc(MAX_OTLP_BYTES + 1024 * 1024))
    expect(bomb.length).toBeLessThan(1024 * 1024)
    const res = await post(bomb, { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' })
    expect(res.status).toBe(413)
    expect(fromBinary(StatusSchema, new Uint8Array(await res.arrayBuffer())).code).toBe(8)
  })

  it('counts a body sent without a length as it comes, and stops reading it past 20 MiB', async () => {
    const chunked = (chunks: Uint8Array[]) =>
      fetch(`${server.url}/v1/logs`, {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/x-protobuf' },
        body: new ReadableStream({
          start(controller) {
            for (const chunk of chunks) controller.enqueue(chunk)
            controller.close()
          },
        }),
        duplex: 'half',
      } as RequestInit)
    const body = toBinary(ExportLogsServiceRequestSchema, create(ExportLogsServiceRequestSchema, {}))
    expect((await chunked([body])).status).toBe(200)
    // On a connection of its own (the server stops reading it, and so ends it once it has answered).
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/logs`, {
        method: 'POST',
        agent: false,
        headers: { ...auth(), 'content-type': 'application/x-protobuf', 'transfer-encoding': 'chunked' },
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
      req.on('error', reject)
      const mib = Buffer.alloc(1024 * 1024)
      let sent = 0
      const more = () => {
        while (sent < 21) {
          sent++
          if (!req.write(mib)) return void req.once('drain', more)
        }
        req.end()
      }
      more()
    })
    expect(status).toBe(413)
  })

  it('refuses no key or a bad one with 401, another content type with 415, as a Status', async () => {
    const noKey = await fetch(`${server.url}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
    expect([noKey.status, ((await noKey.json()) as { code: number }).code]).toEqual([401, 16])
    const badKey = await fetch(`${server.url}/v1/logs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', Authorization: `Bearer metorial_sk_${'x'.repeat(40)}` },
      body: new Uint8Array(),
    })
    expect(badKey.status).toBe(401)
    expect(fromBinary(StatusSchema, new Uint8Array(await badKey.arrayBuffer())).code).toBe(16)
    const text = await post('hello', { 'content-type': 'text/plain' })
    expect(text.status).toBe(415)
  })

  it('counts the records it cannot store in partialSuccess and stores the rest', async () => {
    const good = request({ 'service.instance.id': 'partial-ok' }, ['kept'])
    const bad = request({ 'service.instance.id': 'partial-bad', 'session.id': f.b.sessions[0]!.id }, ['a', 'b'])
    const both = create(ExportLogsServiceRequestSchema)
    const res = await post(JSON.stringify({ resourceLogs: [...good.resourceLogs, ...bad.resourceLogs] }), {
      'content-type': 'application/json',
    })
    expect(both.resourceLogs).toEqual([])
    expect(res.status).toBe(200)
    const answer = (await res.json()) as { partialSuccess: { rejectedLogRecords: string; errorMessage: string } }
    expect(answer.partialSuccess.rejectedLogRecords).toBe('2')
    expect(answer.partialSuccess.errorMessage).toContain('no session of this instance')
    const [sessionId] = await sessionOf('partial-ok')
    expect(plain((await eventsOf(sessionId!))[0]!.log_lines)).toEqual([{ type: 'stdout', line: 'kept' }])

    // The same in protobuf: the answer is protobuf.
    const binary = await post(toBinary(ExportLogsServiceRequestSchema, create(ExportLogsServiceRequestSchema, {})), {
      'content-type': 'application/x-protobuf',
    })
    expect(binary.status).toBe(200)
    expect(
      fromBinary(ExportLogsServiceResponseSchema, new Uint8Array(await binary.arrayBuffer())).partialSuccess,
    ).toBeUndefined()
  })

  it('stores the same body sent twice at once only once', async () => {
    const body = toBinary(
      ExportLogsServiceRequestSchema,
      create(ExportLogsServiceRequestSchema, {
        resourceLogs: [
          {
            resource: {
              attributes: [{ key: 'service.instance.id', value: { value: { case: 'stringValue', value: 'twice-1' } } }],
            },
            scopeLogs: [{ logRecords: [{ body: { value: { case: 'stringValue', value: 'only once' } } }] }],
          },
        ],
      }),
    )
    const answers = await Promise.all([1, 2].map(() => post(body, { 'content-type': 'application/x-protobuf' })))
    // A retry that meets the first still writing is told to come back (503, which exporters retry).
    for (const res of answers) expect([200, 503]).toContain(res.status)
    expect((await post(body, { 'content-type': 'application/x-protobuf' })).status).toBe(200)
    const [sessionId] = await sessionOf('twice-1')
    expect((await eventsOf(sessionId!)).map((e) => plain(e.log_lines))).toEqual([
      [{ type: 'stdout', line: 'only once' }],
    ])
  })

  it('a service instance whose session was pruned since it was found: a new session, no record refused', async () => {
    const send = (line: string) =>
      post(JSON.stringify(request({ 'service.instance.id': 'pruned-1', 'service.name': 'svc' }, [line])), {
        'content-type': 'application/json',
      })
    expect((await send('before')).status).toBe(200)
    const [first] = await sessionOf('pruned-1')
    // What a prune does to a session idle past its retention (and, a day after, to the answers of
    // the keys it was made under); this process still has it in memory as the instance's.
    const runs = f.store.db.selectFrom('server_sessions').select('id').where('session_id', '=', first!)
    await f.store.db.deleteFrom('session_events').where('session_id', '=', first!).execute()
    await f.store.db.deleteFrom('server_runs').where('server_session_id', 'in', runs).execute()
    await f.store.db.deleteFrom('server_sessions').where('session_id', '=', first!).execute()
    await f.store.db.deleteFrom('sessions').where('id', '=', first!).execute()
    await f.store.db.deleteFrom('idempotency_answers').execute()

    const res = await send('after')
    expect([res.status, await res.json()]).toEqual([200, {}])
    const [second] = await sessionOf('pruned-1')
    expect(second).not.toBe(first)
    expect((await eventsOf(second!)).map((e) => plain(e.log_lines))).toEqual([[{ type: 'stdout', line: 'after' }]])
  })

  it('cuts a body longer than a log line takes into pieces, as run does', async () => {
    const long = 'x'.repeat(65_536) + 'y'.repeat(10)
    const res = await post(JSON.stringify(request({ 'service.instance.id': 'long-1' }, [long])), {
      'content-type': 'application/json',
    })
    expect(res.status).toBe(200)
    const [sessionId] = await sessionOf('long-1')
    expect(plain((await eventsOf(sessionId!))[0]!.log_lines)).toEqual([
      { type: 'stdout', line: 'x'.repeat(65_536) },
      { type: 'stdout', line: 'y'.repeat(10) },
    ])
  })

  it('answers the rate limit with 429 and a store that is down with 503, each with Retry-After, as a Status', async () => {
    const limited = createApp({
      store: f.store,
      logger: silent,
      config: { ...testSettings, rateLimit: { points: 1, durationSeconds: 60 } },
    })
    const send = (app: ReturnType<typeof createApp>) =>
      app.request('/v1/logs', {
        method: 'POST',
        headers: { ...auth(), 'content-type': 'application/json' },
        body: JSON.stringify(request({ 'service.instance.id': 'limits-1' }, ['x'])),
      })
    expect((await send(limited)).status).toBe(200)
    const over = await send(limited)
    expect([over.status, over.headers.get('retry-after') !== null]).toEqual([429, true])
    expect(((await over.json()) as { code: number }).code).toBe(8)

    const down = createApp({
      store: overriding(f.store, {
        writer: new Proxy(f.store.writer, {
          get: () => async () => {
            throw new StoreUnavailableError('down')
          },
        }),
      }),
      logger: silent,
      config: testSettings,
    })
    const unavailable = await send(down)
    expect([unavailable.status, unavailable.headers.get('retry-after')]).toEqual([503, '1'])
    expect(((await unavailable.json()) as { code: number }).code).toBe(14)
  })
})
