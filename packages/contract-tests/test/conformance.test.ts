import type { components } from '@session-events/client'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { idFields, invalidBody, placesOf, setAt, validBody, type Places } from './support/bodies.js'
import { idPrefixes, invalidWire, validWire } from './support/derive.js'
import { FUZZ_SEED } from './support/fuzz.js'
import { eventsAfter } from './support/sse.js'
import {
  checkResponse,
  declaredPairs,
  EVENT_STREAM,
  formatQuery,
  isStream,
  NOT_DRIVEN_YET,
  operation,
  operations,
  patterns,
  poolsOf,
  spec,
  streamParts,
  type CheckedResponse,
  type Operation,
  type Schema,
  type WireValue,
} from './support/spec.js'
import { inProcess, overHttp, type SendOptions, type Transport } from './support/transport.js'
import {
  API_WRITES,
  changesItsRun,
  createWorld,
  eventIds,
  faultyStore,
  freshRun,
  heldStore,
  pathOf,
  READS_AFTER_AUTH,
  sessionIds,
  sessionRuns,
  successStatus,
  unavailable,
  unexpectedFailure,
  within,
  type App,
  type World,
} from './support/world.js'

// Spec-driven conformance: for every operation and every status the spec declares, drive the
// real app into that response, in-process and over HTTP, and hold the response to the spec
// (status, headers, content type, body). The only hand-written part is how to provoke each
// status; what a request may carry (parameters, bodies) is derived from the spec's schemas, and
// what a response must look like comes from the spec alone.

type ApiError = components['schemas']['Error']

interface Variant {
  label: string
  status: number
  send(t: Transport): Promise<Response>
  /** For a stream: how far to read it (default: through its `session.position` message). */
  until?: (messages: NonNullable<CheckedResponse['messages']>) => boolean
  /** What else the response must be (for a stream: the events it carries); the problems found. */
  verify?(t: Transport, checked: CheckedResponse): Promise<string[]>
}

/** The path entities of the suite, by the schema name of the path parameter they fill. */
interface Entities {
  SessionId: string
  SessionEventId: string
  ServerRunId: string
}

interface Context {
  world: World
  /** A session of instance A with a log event, an error event and a run; B's; A's other session's; ids nobody has. */
  real: Entities & { errorEvent: string }
  foreign: Entities
  otherSession: Entities
  /** Ids that match their schema's pattern and belong to nothing: by schema name and by pattern. */
  missing: Record<string, string>
  /** The ids of A's session by the spec pattern they match. */
  pools: Record<string, string[]>
  places: Places
  /** A few bodies of each operation that takes one, derived from its schema and held to its rules. */
  bodies: Map<string, unknown[]>
  apps: {
    limited: Map<string, App>
    failing: App
    failingWrites: App
    unavailable: App
    unavailableWrites: App
    failingKeys: App
    down: App
  }
}

let ctx: Context
const transports: Transport[] = [inProcess, overHttp()]
const covered = new Map<string, Set<string>>(transports.map((t) => [t.name, new Set()]))
const prefixes = idPrefixes(spec)

/** A few values of an arbitrary, the same on every run of the suite. */
const sample = <T>(arbitrary: fc.Arbitrary<T>, count: number): T[] =>
  fc.sample(arbitrary, { seed: FUZZ_SEED, numRuns: count })

/** Idempotency-Keys no request has sent before (keys are kept for a day: a reused one replays). */
let keys = 0
const newKey = (what: string) => `conformance-${what}-${++keys}`

beforeAll(async () => {
  const world = await createWorld({ sessions: 2, events: 30 })
  const [sessionId, otherSessionId] = world.a.sessions.map((s) => s.id) as [string, string]
  const [logs, errors] = await Promise.all(
    (['server_logs', 'server_run_error'] as const).map((type) =>
      world.store.db
        .selectFrom('session_events')
        .select('id')
        .where('session_id', '=', sessionId)
        .where('type', '=', type)
        .orderBy('id')
        .executeTakeFirstOrThrow(),
    ),
  )
  const firstOf = async (id: string): Promise<Entities> => ({
    SessionId: id,
    SessionEventId: (await eventIds(world.store, id))[0]!,
    ServerRunId: (await sessionRuns(world.store, id))[0]!.id,
  })
  const missing: Record<string, string> = {}
  for (const pattern of patterns)
    missing[pattern] = sample(validWire({ type: 'string', pattern }) as fc.Arbitrary<string>, 1)[0]!
  for (const [name, schema] of Object.entries(spec.components.schemas as Record<string, Schema>)) {
    if (typeof schema.pattern === 'string') missing[name] = missing[schema.pattern]!
  }
  const places = await placesOf(world.store, world.a.id, sessionId)
  const bodies = new Map(
    operations.filter((op) => op.requestBody).map((op) => [op.operationId, sample(validBody(op, places), 3)]),
  )
  const writes = { writer: API_WRITES }
  ctx = {
    world,
    real: { ...(await firstOf(sessionId)), SessionEventId: logs!.id, errorEvent: errors!.id },
    foreign: await firstOf(world.b.sessions[0]!.id),
    otherSession: await firstOf(otherSessionId),
    missing,
    pools: poolsOf(await sessionIds(world.store, sessionId)),
    places,
    bodies,
    apps: {
      limited: new Map(),
      failing: world.appWith({
        store: faultyStore(world.store, unexpectedFailure, { reader: READS_AFTER_AUTH, ...writes }),
      }),
      failingWrites: world.appWith({ store: faultyStore(world.store, unexpectedFailure, writes) }),
      unavailable: world.appWith({
        store: faultyStore(world.store, unavailable, { reader: READS_AFTER_AUTH, ...writes }),
      }),
      unavailableWrites: world.appWith({ store: faultyStore(world.store, unavailable, writes) }),
      failingKeys: world.appWith({ store: faultyStore(world.store, unexpectedFailure, { reader: ['findApiKey'] }) }),
      down: world.appWith({
        store: faultyStore(world.store, unavailable, { reader: ['findApiKey', ...READS_AFTER_AUTH], ...writes }),
      }),
    },
  }
})

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()))
  await ctx?.world.store.close()
})

/** What a request changes from the operation's real request. */
interface Change {
  entities?: Partial<Entities>
  query?: Record<string, WireValue | undefined>
  /** The body as a value (sent as JSON); `undefined` sends none. */
  body?: unknown
  /** The body as text, as it goes on the wire. */
  rawBody?: string
  headers?: Record<string, string>
  options?: Omit<SendOptions, 'method' | 'body' | 'headers'>
}

/**
 * The operation's real request, with a change: A's session (and its log event and a run, or a
 * fresh active run for an operation that changes it), the first derived body, A's secret key.
 */
async function request(op: Operation, change: Change = {}): Promise<{ path: string; options: SendOptions }> {
  const entities: Entities = {
    SessionId: ctx.real.SessionId,
    SessionEventId: ctx.real.SessionEventId,
    ServerRunId: ctx.real.ServerRunId,
  }
  if (changesItsRun(op) && change.entities?.ServerRunId === undefined) {
    entities.ServerRunId = await freshRun(ctx.world.store, ctx.world.a.id, ctx.real.SessionId)
  }
  Object.assign(entities, change.entities)
  const body =
    'rawBody' in change
      ? change.rawBody
      : 'body' in change
        ? json(change.body)
        : op.requestBody
          ? json(ctx.bodies.get(op.operationId)![0])
          : undefined
  return {
    path: pathOf(op, entities) + formatQuery(change.query ?? {}),
    options: {
      method: op.method,
      key: ctx.world.a.secret_key,
      ...change.options,
      headers: change.headers ?? {},
      ...(body !== undefined && { body }),
    },
  }
}

const json = (value: unknown) => (value === undefined ? undefined : JSON.stringify(value))

async function send(t: Transport, app: App, op: Operation, change: Change = {}): Promise<Response> {
  const { path, options } = await request(op, change)
  return t.send(app, path, options)
}

/** Values that address another resource by URL rules (`/sessions/../events`), not a bad id. */
const addressable = (value: WireValue) =>
  typeof value !== 'string' || !['', '.', '..'].includes(encodeURIComponent(value))

const isWrite = (op: Operation) => op.method !== 'GET'

/** Expects a response to be the operation's success, conforming; for the request before the one a variant is about. */
async function expectSuccess(op: Operation, res: Response, what: string) {
  const checked = await checkResponse(op, res)
  expect(checked.problems, what).toEqual([])
  expect(checked.status, `${what}: ${checked.text.slice(0, 300)}`).toBe(successStatus(op))
  return checked
}

function successes(op: Operation, status: number): Variant[] {
  const app = () => ctx.world.app
  const variants: Variant[] = [{ label: 'a secret key of the owner', status, send: (t) => send(t, app(), op) }]
  // A stream's start is held to what its query and headers ask for (the variants built below
  // each carry their change; streamVariants adds those that append, resume and hold streams).
  const streamed = isStream(op)
  const add = (label: string, change: Change) =>
    variants.push({
      label,
      status,
      send: (t) => send(t, app(), op, change),
      ...(streamed && { verify: (_t: Transport, checked: CheckedResponse) => startAsModelled(change, checked) }),
    })
  if (streamed) variants[0]!.verify = (_t, checked) => startAsModelled({}, checked)
  if (op.parameters.some((p) => p.schemaName === 'SessionEventId')) {
    variants.push({
      label: 'an error event',
      status,
      send: (t) => send(t, app(), op, { entities: { SessionEventId: ctx.real.errorEvent } }),
    })
  }
  // Every query parameter at once, with values derived from its schema (ids that exist mixed
  // in). Of the positions, which exclude each other, only `after`: a cursor is valid only
  // when a server issued it, and the fuzzing suites cover those.
  const query = op.parameters.filter((p) => p.in === 'query' && p.name !== 'cursor' && p.name !== 'before')
  if (query.length > 0) {
    for (const [i, values] of sample(
      fc.record(
        Object.fromEntries(query.map((p) => [p.name, validWire(p.schema, { location: 'query', pools: ctx.pools })])),
      ),
      3,
    ).entries()) {
      add(`derived query #${i + 1}`, { query: values })
    }
  }
  for (const p of op.parameters.filter((p) => p.in === 'header')) {
    const [value] = sample(validWire(p.schema, { location: 'header' }) as fc.Arbitrary<string>, 1)
    // An Idempotency-Key sent before answers with what it answered then: each send needs its own.
    const fresh = (v: string) => (p.name === 'Idempotency-Key' ? `${v.slice(0, 200)}${newKey('')}` : v)
    add(`header ${p.name}`, { headers: { [p.name]: fresh(value!) } })
  }
  if (streamed) variants.push(...streamVariants(op))
  if (op.requestBody) {
    for (const [i, body] of ctx.bodies.get(op.operationId)!.entries()) {
      variants.push({
        label: `derived body #${i + 1}${body === undefined ? ' (none)' : ''}`,
        status,
        send: (t) => send(t, app(), op, { body }),
      })
    }
  }
  if (isWrite(op)) {
    variants.push({
      label: 'the same request again with its Idempotency-Key: the first answer, replayed',
      status,
      send: async (t) => {
        const { path, options } = await request(op, { headers: { 'Idempotency-Key': newKey('replay') } })
        const first = await expectSuccess(op, await t.send(app(), path, options), 'the first request')
        const again = await t.send(app(), path, options)
        expect(again.headers.get('idempotent-replayed'), 'the replay says so').toBe('true')
        expect(await again.clone().text(), 'the replay is the first answer').toBe(first.text)
        return again
      },
    })
  }
  if (changesItsRun(op)) {
    variants.push({
      label: 'stopping a stopped run again the same way',
      status,
      send: async (t) => {
        const { path, options } = await request(op)
        await expectSuccess(op, await t.send(app(), path, options), 'the first stop')
        return t.send(app(), path, options)
      },
    })
  }
  return variants
}

/** The events of A's session as the stream's model needs them, straight from the database. */
const sessionRows = (sessionId: string) =>
  ctx.world.store.db
    .selectFrom('session_events')
    .select(['id', 'type', 'server_run_id', 'server_session_id'])
    .where('session_id', '=', sessionId)
    .orderBy('id')
    .execute()

/**
 * A stream's start as the spec describes it, for a request with `change`: resuming after an event
 * (`Last-Event-ID`, which wins, or `after`), it stands at that event and sends none before; else
 * it first sends the newest `tail` events that pass the filters (in id order), and stands at the
 * session's newest event. The problems found, none when it starts so.
 */
async function startAsModelled(change: Change, checked: CheckedResponse): Promise<string[]> {
  const parts = streamParts(checked.messages ?? [])
  const query = change.query ?? {}
  const header = Object.entries(change.headers ?? {}).find(([name]) => name.toLowerCase() === 'last-event-id')?.[1]
  const resume = header ?? (query.after as string | undefined)
  const rows = await sessionRows(ctx.real.SessionId)
  let expected: { before: string[]; position?: string }
  if (resume !== undefined) expected = { before: [], position: resume }
  else {
    const passes = (name: string, value: string | null) => {
      const wanted = [query[name] ?? []].flat()
      return wanted.length === 0 || (value !== null && wanted.includes(value))
    }
    const passing = rows.filter(
      (r) =>
        passes('type', r.type) &&
        passes('server_run_id', r.server_run_id) &&
        passes('server_session_id', r.server_session_id),
    )
    const tail = Number(query.tail ?? 0)
    expected = { before: tail === 0 ? [] : passing.slice(-tail).map((r) => r.id), position: rows.at(-1)?.id }
  }
  const got = { before: parts.before, position: parts.position }
  return JSON.stringify(got) === JSON.stringify(expected)
    ? []
    : [`the stream starts ${JSON.stringify(got)}, not ${JSON.stringify(expected)} (${JSON.stringify(change)})`]
}

/** A request through `t` with A's key, its text. */
async function fetchText(
  t: Transport,
  path: string,
  options: SendOptions = {},
): Promise<{ status: number; text: string }> {
  const res = await t.send(ctx.world.app, path, { key: ctx.world.a.secret_key, ...options })
  return { status: res.status, text: await res.text() }
}

/**
 * The events after the position must be `ids`, in order, each one's data exactly what
 * getSessionEvent answers for it (byte for byte).
 */
async function eventsAsSent(
  t: Transport,
  checked: CheckedResponse,
  ids: string[],
  sessionId = ctx.real.SessionId,
): Promise<string[]> {
  const problems: string[] = []
  const { after } = streamParts(checked.messages ?? [])
  if (JSON.stringify(after.map((e) => e.id)) !== JSON.stringify(ids))
    problems.push(`the stream sent ${JSON.stringify(after.map((e) => e.id))}, not ${JSON.stringify(ids)}`)
  const get = operation('getSessionEvent')
  for (const event of after) {
    const one = await fetchText(t, pathOf(get, { SessionId: sessionId, SessionEventId: event.id }))
    if (one.status !== 200 || one.text !== event.data)
      problems.push(
        `event ${event.id}: the data is not what getSessionEvent answers (${one.status}): ${event.data.slice(0, 200)} ≠ ${one.text.slice(0, 200)}`,
      )
  }
  return problems
}

/** The stream's own ways into a 200: events appended while it is open, resuming, the start it is asked for. */
function streamVariants(op: Operation): Variant[] {
  const app = () => ctx.world.app
  const run = () => ctx.places.activeRuns[0]!
  const ids = () => eventIds(ctx.world.store, ctx.real.SessionId)
  const lines = (what: string) => [{ type: 'stdout' as const, line: `conformance: ${what}` }]
  const oneMore = eventsAfter(EVENT_STREAM.position, EVENT_STREAM.event, 1)
  const variants: Variant[] = []

  for (const through of ['the store’s writer', 'the API'] as const) {
    let appended: string
    variants.push({
      label: `an event appended through ${through} once the stream is open: its data is getSessionEvent’s answer`,
      status: 200,
      until: oneMore,
      send: async (t) => {
        const res = await send(t, app(), op)
        if (res.status !== 200) return res
        if (through === 'the API') {
          const created = await fetchText(
            t,
            pathOf(operation('createSessionEvent'), { SessionId: ctx.real.SessionId }),
            {
              method: 'POST',
              body: JSON.stringify({ server_run_id: run(), log_lines: lines(`${t.name} through the API`) }),
            },
          )
          expect(created.status, created.text).toBe(201)
          appended = JSON.parse(created.text).id
        } else {
          appended = (
            await ctx.world.store.writer.appendEvent({
              sessionId: ctx.real.SessionId,
              serverRunId: run(),
              lines: lines(`${t.name} through the writer`),
            })
          ).event.id
        }
        return res
      },
      verify: async (t, checked) => [
        ...(await eventsAsSent(t, checked, [appended])),
        ...(streamParts(checked.messages!).before.length > 0 ? ['events before the position without a tail'] : []),
      ],
    })
  }

  // Resuming: what was written since the event, in order; the header wins over `after`; `tail` is ignored.
  const resuming = (
    label: string,
    change: (all: string[]) => Change,
    sent: (all: string[]) => string[],
    at: (all: string[]) => string,
    prepare?: () => Promise<void>,
  ) => {
    let all: string[] = []
    let expected: string[] = []
    variants.push({
      label,
      status: 200,
      until: (messages) => eventsAfter(EVENT_STREAM.position, EVENT_STREAM.event, expected.length)(messages),
      send: async (t) => {
        await prepare?.()
        all = await ids()
        expected = sent(all)
        return send(t, app(), op, change(all))
      },
      verify: async (t, checked) => {
        const parts = streamParts(checked.messages!)
        const problems = await eventsAsSent(t, checked, expected)
        if (parts.position !== at(all) || parts.before.length > 0)
          problems.push(`a resumed stream stands at ${at(all)} and sends nothing before: ${JSON.stringify(parts)}`)
        return problems
      },
    })
  }
  resuming(
    'after an event: what was written since',
    (all) => ({ query: { after: all.at(-4)! } }),
    (all) => all.slice(-3),
    (all) => all.at(-4)!,
  )
  resuming(
    'Last-Event-ID wins over after',
    (all) => ({ query: { after: all.at(-2)! }, headers: { 'Last-Event-ID': all.at(-4)! } }),
    (all) => all.slice(-3),
    (all) => all.at(-4)!,
  )
  resuming(
    'tail is ignored when the stream resumes',
    (all) => ({ query: { after: all.at(-2)!, tail: '5' } }),
    (all) => all.slice(-1),
    (all) => all.at(-2)!,
  )
  // The stream reads the store 50 events at a time: the session gets more than that first.
  const moreThanAPage = async () => {
    for (let n = (await ids()).length; n <= 120; n++) {
      await ctx.world.store.writer.appendEvent({
        sessionId: ctx.real.SessionId,
        serverRunId: run(),
        lines: lines(`event ${n}`),
      })
    }
  }
  resuming(
    'after the session’s first event: over a hundred events, more than two reads of the store, in order',
    (all) => ({ query: { after: all[0]! } }),
    (all) => all.slice(1),
    (all) => all[0]!,
    moreThanAPage,
  )

  // The start asked for: the newest events first, with filters.
  const modelled = (label: string, change: () => Promise<Change>) => {
    let sent: Change = {}
    variants.push({
      label,
      status: 200,
      send: async (t) => send(t, app(), op, (sent = await change())),
      verify: (_t, checked) => startAsModelled(sent, checked),
    })
  }
  modelled('tail 100: the newest events first, then the position', async () => ({ query: { tail: '100' } }))
  modelled('tail 3 of the errors only', async () => ({ query: { tail: '3', type: ['server_run_error'] } }))
  modelled('tail 5 of one run', async () => ({
    query: {
      tail: '5',
      server_run_id: [(await sessionRows(ctx.real.SessionId)).find((r) => r.server_run_id)!.server_run_id!],
    },
  }))
  modelled('tail 5 of one server session', async () => ({
    query: {
      tail: '5',
      server_session_id: [(await sessionRows(ctx.real.SessionId)).find((r) => r.server_session_id)!.server_session_id!],
    },
  }))
  modelled('tail 5 of ids that name nothing', async () => ({
    query: { tail: '5', server_run_id: [ctx.missing.ServerRunId!] },
  }))

  // A session without events stands before its first event; resuming there (as a browser
  // would, from the position's id) gets every event written since.
  let empty: { sessionId: string; position?: string; appended: string[] }
  variants.push({
    label:
      'a new session without events: it stands before its first event, which comes once written, and resuming at that position gets it too',
    status: 200,
    until: oneMore,
    send: async (t) => {
      const created = await fetchText(t, '/sessions', { method: 'POST', body: JSON.stringify({}) })
      expect(created.status, created.text).toBe(201)
      const sessionId = JSON.parse(created.text).id as string
      const res = await send(t, app(), op, { entities: { SessionId: sessionId } })
      const started = await fetchText(t, `/sessions/${sessionId}/server-runs`, {
        method: 'POST',
        body: JSON.stringify({ type: 'external', server: { name: 'Conformance' } }),
      })
      expect(started.status, started.text).toBe(201)
      const appendedEvent = await fetchText(t, `/sessions/${sessionId}/events`, {
        method: 'POST',
        body: JSON.stringify({
          server_run_id: JSON.parse(started.text).id,
          log_lines: lines(`${t.name}: the first event of a new session`),
        }),
      })
      expect(appendedEvent.status, appendedEvent.text).toBe(201)
      empty = { sessionId, appended: await eventIds(ctx.world.store, sessionId) }
      return res
    },
    verify: async (t, checked) => {
      const parts = streamParts(checked.messages!)
      const problems = await eventsAsSent(t, checked, empty.appended, empty.sessionId)
      if (parts.before.length > 0 || parts.position === undefined || parts.position >= empty.appended[0]!) {
        problems.push(`a session without events stands before its first event: ${JSON.stringify(parts)}`)
      }
      const resumed = await checkResponse(
        op,
        await send(t, app(), op, {
          entities: { SessionId: empty.sessionId },
          headers: { 'Last-Event-ID': parts.position! },
        }),
        { until: oneMore },
      )
      problems.push(...resumed.problems.map((p) => `resuming at the position: ${p}`))
      const again = streamParts(resumed.messages ?? [])
      if (JSON.stringify(again.after.map((e) => e.id)) !== JSON.stringify(empty.appended.slice(0, 1)))
        problems.push(`resuming at the position ${parts.position} sent ${JSON.stringify(again)}`)
      return problems
    },
  })

  variants.push({
    label: 'the key’s one stream closed, the next is let in (streamsPerKey: 1)',
    status: 200,
    send: async (t) => {
      const capped = ctx.world.appWith({ streamsPerKey: 1 })
      const first = await send(t, capped, op)
      expect(first.status, 'the first stream').toBe(200)
      await first.body!.cancel()
      // Over HTTP the server hears of the closed connection a moment later.
      for (let tries = 0; ; tries++) {
        const next = await send(t, capped, op)
        if (next.status !== 429 || tries === 50) return next
        await next.text()
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
  })
  return variants
}

/**
 * The store failing as the stream starts (its first read, after the session was found): an error
 * before the stream opens, and the key's stream slot given back, so that the next request fails
 * the same way rather than with a 429 (streamsPerKey: 1).
 */
function streamStartFailing(op: Operation, fault: () => Error, status: number): Variant {
  return {
    label: 'the store failing as the stream starts, twice with room for one stream',
    status,
    send: async (t) => {
      const app = ctx.world.appWith({
        streamsPerKey: 1,
        store: faultyStore(ctx.world.store, fault, { reader: ['listEventIds'] }),
      })
      const first = await send(t, app, op)
      expect(first.status, `the first request: ${await first.clone().text()}`).toBe(status)
      await first.text()
      return send(t, app, op)
    },
  }
}

/** How to drive an operation into each status. */
const provoke: Record<string, (op: Operation) => Variant[]> = {
  '200': (op) => successes(op, 200),
  '201': (op) => successes(op, 201),

  '400': (op) => {
    const app = () => ctx.world.app
    const variants: Variant[] = []
    for (const p of op.parameters) {
      const bad = sample(invalidWire(p.schema, { location: p.in, prefixes }).filter(addressable), 3)
      for (const [i, value] of bad.entries()) {
        const label = `${p.in} ${p.name} invalid #${i + 1}`
        if (p.in === 'path')
          variants.push({
            label,
            status: 400,
            send: (t) => send(t, app(), op, { entities: { [p.schemaName!]: value as string } }),
          })
        else if (p.in === 'query')
          variants.push({ label, status: 400, send: (t) => send(t, app(), op, { query: { [p.name]: value } }) })
        else if (p.in === 'header')
          variants.push({
            label,
            status: 400,
            send: (t) => send(t, app(), op, { headers: { [p.name]: value as string } }),
          })
      }
    }
    // A malformed request that passes validation: positions that exclude each other.
    const names = new Set(op.parameters.map((p) => p.name))
    if (names.has('after') && names.has('before')) {
      variants.push({
        label: 'after and before together',
        status: 400,
        send: (t) => send(t, app(), op, { query: { after: ctx.real.SessionEventId, before: ctx.real.errorEvent } }),
      })
    }
    if (names.has('cursor'))
      variants.push({
        label: 'a forged cursor',
        status: 400,
        send: (t) => send(t, app(), op, { query: { cursor: 'cur_0' } }),
      })
    if (isStream(op)) {
      // Besides the derived ones: the edges of `tail`, and a bad position next to a good one
      // (the header wins over `after`, but each is held to its schema).
      const good = ctx.real.SessionEventId
      for (const [label, change] of [
        ['tail 101', { query: { tail: '101' } }],
        ['tail -1', { query: { tail: '-1' } }],
        ['tail 1.5', { query: { tail: '1.5' } }],
        ['tail twice', { query: { tail: ['1', '2'] } }],
        ['after an id of another kind', { query: { after: ctx.real.ServerRunId } }],
        ['Last-Event-ID an id of another kind', { headers: { 'Last-Event-ID': ctx.real.SessionId } }],
        [
          'a valid Last-Event-ID and an invalid after',
          { query: { after: 'sev_0' }, headers: { 'Last-Event-ID': good } },
        ],
        [
          'an invalid Last-Event-ID and a valid after',
          { query: { after: good }, headers: { 'Last-Event-ID': 'sev_0' } },
        ],
      ] as [string, Change][]) {
        variants.push({ label, status: 400, send: (t) => send(t, app(), op, change) })
      }
    }

    const body = op.requestBody
    if (body) {
      // Bodies with one field invalid by the schema, derived from it.
      for (const [i, bad] of sample(invalidBody(op), 4).entries()) {
        variants.push({
          label: `body invalid at ${JSON.stringify(bad.path)} #${i + 1}`,
          status: 400,
          send: (t) => send(t, app(), op, { body: bad.value }),
        })
      }
      variants.push(
        {
          label: 'a body that is not JSON',
          status: 400,
          send: (t) => send(t, app(), op, { rawBody: '{"metadata": {' }),
        },
        {
          label: 'a JSON body sent as text/plain',
          status: 400,
          send: (t) => send(t, app(), op, { options: { contentType: 'text/plain' } }),
        },
      )
      if (body.required)
        variants.push({ label: 'no body', status: 400, send: (t) => send(t, app(), op, { body: undefined }) })
      // Ids in the body that name nothing of the instance: "a 400 invalid_data naming the field".
      const first = ctx.bodies.get(op.operationId)![0]
      for (const field of idFields(body.schema)) {
        variants.push({
          label: `body ${field.path.join('.')} names nothing`,
          status: 400,
          send: (t) => send(t, app(), op, { body: setAt(first, field.path, ctx.missing[field.pattern]) }),
        })
      }
      if (op.operationId === 'startServerRun') {
        variants.push({
          label: 'a new server without a name',
          status: 400,
          send: (t) => send(t, app(), op, { body: { type: 'hosted', server: {} } }),
        })
      }
      if (op.operationId === 'stopServerRun') {
        variants.push({
          label: 'a completed stop with an error',
          status: 400,
          send: (t) =>
            send(t, app(), op, { body: { status: 'completed', error: { code: 'process_exited', message: 'exited' } } }),
        })
      }
      if (op.operationId === 'createSessionEvent') {
        for (const [label, run] of [
          ['a run of another session of mine', ctx.otherSession.ServerRunId],
          ['a run of another instance', ctx.foreign.ServerRunId],
        ] as const) {
          variants.push({
            label: `body server_run_id: ${label}`,
            status: 400,
            send: (t) => send(t, app(), op, { body: { ...(first as object), server_run_id: run } }),
          })
        }
      }
    }
    return variants
  },

  '401': (op) => [
    {
      label: 'no Authorization header',
      status: 401,
      send: (t) => send(t, ctx.world.app, op, { options: { key: null } }),
    },
    {
      label: 'an unknown key',
      status: 401,
      send: (t) => send(t, ctx.world.app, op, { options: { key: 'metorial_sk_unknown000000000000000000000000' } }),
    },
    {
      label: 'a revoked key',
      status: 401,
      send: (t) => send(t, ctx.world.app, op, { options: { key: ctx.world.a.revoked_key } }),
    },
    {
      label: 'a Basic header',
      status: 401,
      send: (t) => send(t, ctx.world.app, op, { options: { authorization: `Basic ${ctx.world.a.secret_key}` } }),
    },
  ],

  '403': (op) => [
    {
      label: 'a publishable key',
      status: 403,
      send: (t) => send(t, ctx.world.app, op, { options: { key: ctx.world.a.publishable_key } }),
    },
  ],

  '404': (op) => {
    const variants: Variant[] = []
    for (const p of op.parameters.filter((p) => p.in === 'path')) {
      const name = p.schemaName as keyof Entities
      const at = (id: string) => ({ entities: { [name]: id } })
      variants.push(
        { label: `no such ${p.name}`, status: 404, send: (t) => send(t, ctx.world.app, op, at(ctx.missing[name]!)) },
        {
          label: `${p.name} of another instance`,
          status: 404,
          send: (t) => send(t, ctx.world.app, op, at(ctx.foreign[name])),
        },
      )
      if (name !== 'SessionId') {
        variants.push({
          label: `${p.name} of another session of mine`,
          status: 404,
          send: (t) => send(t, ctx.world.app, op, at(ctx.otherSession[name])),
        })
      }
    }
    return variants
  },

  '409': (op) => {
    const app = () => ctx.world.app
    const variants: Variant[] = []
    const body = op.requestBody?.schema
    if (body?.properties?.server_run_id) {
      variants.push({
        label: 'lines for a run that has stopped',
        status: 409,
        send: async (t) => {
          const run = await freshRun(ctx.world.store, ctx.world.a.id, ctx.real.SessionId)
          await ctx.world.store.writer.stopServerRun({
            sessionId: ctx.real.SessionId,
            serverRunId: run,
            stop: { status: 'completed' },
          })
          return send(t, app(), op, { body: { ...(ctx.bodies.get(op.operationId)![0] as object), server_run_id: run } })
        },
      })
    }
    if (changesItsRun(op)) {
      const stops = ctx.bodies.get(op.operationId)! as { status: string }[]
      const other = [...stops, { status: 'completed' }, { status: 'failed' }].find(
        (s) => s.status !== stops[0]!.status,
      )!
      variants.push({
        label: 'a stopped run stopped another way',
        status: 409,
        send: async (t) => {
          const { path, options } = await request(op)
          await expectSuccess(op, await t.send(app(), path, options), 'the first stop')
          return t.send(app(), path, { ...options, body: json(other) })
        },
      })
    }
    if (isWrite(op)) {
      variants.push({
        label: 'the same Idempotency-Key while the first request is in flight',
        status: 409,
        send: async (t) => {
          const held = heldStore(ctx.world.store)
          const heldApp = ctx.world.appWith({ store: held.store })
          const { path, options } = await request(op, { headers: { 'Idempotency-Key': newKey('in-flight') } })
          const first = t.send(heldApp, path, options)
          try {
            await within(held.entered, 5_000, 'the first request reaching its write')
            const second = await t.send(heldApp, path, options)
            expect(second.headers.get('retry-after'), 'a 409 idempotency_key_in_use says when to retry').toMatch(
              /^\d+$/,
            )
            return second
          } finally {
            held.release()
            await expectSuccess(op, await first, 'the first request, once let through')
          }
        },
      })
    }
    return variants
  },

  '413': (op) => [
    {
      label: 'a body of 6 MB',
      status: 413,
      // A valid body with a property the schema ignores, padded: only the size is wrong.
      send: (t) =>
        send(t, ctx.world.app, op, {
          body: { ...(ctx.bodies.get(op.operationId)![0] ?? {}), padding: 'x'.repeat(6 * 1024 * 1024) },
        }),
    },
  ],

  '422': (op) => [
    {
      label: 'an Idempotency-Key sent before with another body',
      status: 422,
      send: async (t) => {
        const { path, options } = await request(op, { headers: { 'Idempotency-Key': newKey('reused') } })
        await expectSuccess(op, await t.send(ctx.world.app, path, options), 'the first request')
        const other = { ...(ctx.bodies.get(op.operationId)![0] ?? {}), another: 'body' }
        return t.send(ctx.world.app, path, { ...options, body: json(other) })
      },
    },
  ],

  '429': (op) => [
    ...(isStream(op)
      ? [
          {
            label: 'a second stream while the key holds its one (streamsPerKey: 1)',
            status: 429,
            send: async (t: Transport) => {
              const app = ctx.world.appWith({ streamsPerKey: 1 })
              const held = await send(t, app, op)
              expect(held.status, 'the stream the key holds').toBe(200)
              try {
                const second = await send(t, app, op)
                expect(second.headers.get('retry-after'), 'a 429 says when to retry').toMatch(/^\d+$/)
                return second
              } finally {
                await held.body?.cancel()
              }
            },
          },
        ]
      : []),
    {
      label: 'over a rate limit of one request',
      status: 429,
      send: async (t) => {
        const key = `${t.name} ${op.operationId}`
        let app = ctx.apps.limited.get(key)
        if (!app) {
          app = ctx.world.appWith({ rateLimit: { points: 1, durationSeconds: 3_600 } })
          ctx.apps.limited.set(key, app)
        }
        await expectSuccess(op, await send(t, app, op), 'the request before the limit')
        return send(t, app, op)
      },
    },
  ],

  '500': (op) => [
    { label: 'a store that fails unexpectedly', status: 500, send: (t) => send(t, ctx.apps.failing, op) },
    { label: 'a key lookup that fails unexpectedly', status: 500, send: (t) => send(t, ctx.apps.failingKeys, op) },
    ...(isWrite(op)
      ? [
          {
            label: 'a write that fails unexpectedly',
            status: 500,
            send: (t: Transport) => send(t, ctx.apps.failingWrites, op),
          },
        ]
      : []),
    ...(isStream(op) ? [streamStartFailing(op, unexpectedFailure, 500)] : []),
  ],

  '503': (op) => [
    { label: 'a store that cannot be reached', status: 503, send: (t) => send(t, ctx.apps.unavailable, op) },
    { label: 'a store that is down from the key lookup on', status: 503, send: (t) => send(t, ctx.apps.down, op) },
    ...(isWrite(op)
      ? [
          {
            label: 'a write to a store that cannot be reached',
            status: 503,
            send: (t: Transport) => send(t, ctx.apps.unavailableWrites, op),
          },
        ]
      : []),
    ...(isStream(op) ? [streamStartFailing(op, unavailable, 503)] : []),
  ],
}

describe.each(transports.map((t) => [t.name, t] as const))('conformance %s', (name, transport) => {
  describe.each(operations.map((op) => [op.operationId, op] as const))('%s', (_, op) => {
    it.each(Object.keys(op.responses))('%s: the response the spec declares', async (status) => {
      const variants = provoke[status]?.(op)
      expect(variants, `the suite has no way to drive ${op.operationId} into ${status}`).toBeDefined()
      expect(variants!.length).toBeGreaterThan(0)
      let conforms = true
      for (const variant of variants!) {
        const checked = await checkResponse(op, await variant.send(transport), { until: variant.until })
        const wrong =
          checked.status === variant.status && variant.verify ? await variant.verify(transport, checked) : []
        expect.soft(wrong, variant.label).toEqual([])
        // A 5xx shows nothing of what went wrong inside.
        const leaks = checked.status >= 500 && /SQLITE|ECONNREFUSED|secret\.db|10\.0\.0\.5/.test(checked.text)
        expect.soft(checked.status, `${variant.label}: ${checked.text.slice(0, 300)}`).toBe(variant.status)
        expect.soft(checked.problems, variant.label).toEqual([])
        expect.soft(leaks, `${variant.label} shows internals: ${checked.text}`).toBe(false)
        // The Error schema: `status` is "the HTTP status of the response".
        const statusAgrees = checked.status < 400 || (checked.body as ApiError | undefined)?.status === checked.status
        expect.soft(statusAgrees, `${variant.label}: the body's status is the response's`).toBe(true)
        conforms &&=
          checked.status === Number(status) &&
          checked.problems.length === 0 &&
          wrong.length === 0 &&
          !leaks &&
          statusAgrees
      }
      if (conforms) covered.get(name)!.add(`${op.operationId} ${status}`)
    })
  })
})

describe('conformance coverage', () => {
  it('drives every operation of the spec', () => {
    expect([...NOT_DRIVEN_YET], 'operations of the spec that no suite drives (support/spec.ts)').toEqual([])
  })

  it('covers every operation×status pair the spec declares, in-process and over HTTP', () => {
    const both = declaredPairs.filter((pair) => transports.every((t) => covered.get(t.name)!.has(pair)))
    console.log(`covered ${both.length} of ${declaredPairs.length} operation×status pairs (in-process and over HTTP)`)
    expect(declaredPairs.filter((pair) => !both.includes(pair))).toEqual([])
  })
})
