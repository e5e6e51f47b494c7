import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { idFields, placesOf, setAt, validBody, type Places } from './support/bodies.js'
import { validWire } from './support/derive.js'
import { FUZZ_SEED } from './support/fuzz.js'
import {
  checkResponse,
  EVENT_STREAM,
  formatQuery,
  isStream,
  operations,
  poolsOf,
  spec,
  streamParts,
  type Operation,
  type Schema,
} from './support/spec.js'
import { eventsAfter } from './support/sse.js'
import { inProcess, overHttp, type SendOptions, type Transport } from './support/transport.js'
import {
  changesItsRun,
  createWorld,
  eventIds,
  freshRun,
  instanceSecrets,
  pathOf,
  rowCounts,
  runStates,
  sessionIds,
  sessionRuns,
  successStatus,
  withoutRequestId,
  type Instance,
  type World,
} from './support/world.js'

// The isolation matrix: for every operation, a key of one instance on the sessions, events and
// runs of another answers byte for byte like one on ids that do not exist (the request id
// aside), and so do their ids in the filters of a list and in the body of a write; a write so
// refused writes nothing. Publishable keys get a 403, revoked keys and no key a 401, whoever owns
// the data, and write nothing either; no such response shows anything of the other instance; an
// Idempotency-Key is the instance's own. Both directions, in-process and over HTTP.

interface Entities {
  SessionId: string
  SessionEventId: string
  ServerRunId: string
}

interface Owned {
  instance: Instance
  entity: Entities
  places: Places
  /** A few bodies of each write that would succeed in this session. */
  bodies: Map<string, unknown[]>
  /** The ids its events refer to, by pattern (for filters). */
  pools: Record<string, string[]>
  /** Ids only this instance has, by pattern (for bodies): its runs, deployments, server sessions, custom servers and their versions. */
  own: Record<string, string[]>
  secrets: string[]
}

let world: World
let owned: Map<string, Owned>
/** For every id schema of the spec, an id that matches it and belongs to nobody (by schema name and by pattern). */
let missing: Record<string, string>
const http = overHttp()
const transports: Transport[] = [inProcess, http]
const schemas = spec.components.schemas as Record<string, Schema>
const pattern = (name: string) => schemas[name]!.pattern as string
/** The patterns of the ids a write's body may name. */
const ID_PATTERNS = {
  server: '^srv_[0-9a-z]{9}[0-9A-Za-z]{13}$',
  version: '^sve_[0-9a-z]{9}[0-9A-Za-z]{13}$',
  deployment: '^svd_[0-9a-z]{9}[0-9A-Za-z]{13}$',
}

beforeAll(async () => {
  world = await createWorld({ sessions: 2, events: 20 })
  owned = new Map()
  for (const instance of [world.a, world.b]) {
    const sessionId = instance.sessions[0]!.id
    const places = await placesOf(world.store, instance.id, sessionId)
    const writes = operations.filter((op) => op.requestBody)
    owned.set(instance.id, {
      instance,
      entity: {
        SessionId: sessionId,
        SessionEventId: (await eventIds(world.store, sessionId))[0]!,
        ServerRunId: (await sessionRuns(world.store, sessionId))[0]!.id,
      },
      places,
      bodies: new Map(
        writes.map((op) => [op.operationId, fc.sample(validBody(op, places), { seed: FUZZ_SEED, numRuns: 3 })]),
      ),
      pools: poolsOf(await sessionIds(world.store, sessionId)),
      own: {},
      secrets: await instanceSecrets(world.store, instance),
    })
  }
  // What only one of the two has: the catalogue's servers (and their versions) are deployed by both.
  const [a, b] = [owned.get(world.a.id)!, owned.get(world.b.id)!]
  for (const [mine, theirs] of [
    [a, b],
    [b, a],
  ] as const) {
    const shared = new Set(theirs.places.deployments.map((d) => d.serverId))
    const only = mine.places.deployments.filter((d) => !shared.has(d.serverId))
    mine.own = {
      [pattern('ServerRunId')]: (await sessionRuns(world.store, mine.entity.SessionId)).map((r) => r.id),
      [pattern('ServerSessionId')]: mine.places.deployments.flatMap((d) => d.serverSessionIds),
      [ID_PATTERNS.deployment]: mine.places.deployments.map((d) => d.id),
      [ID_PATTERNS.server]: only.map((d) => d.serverId),
      [ID_PATTERNS.version]: only.flatMap((d) => d.versionIds),
    }
  }
  missing = {}
  const idSchemas = [
    ...Object.entries(schemas),
    ...Object.entries(ID_PATTERNS).map(([name, p]) => [name, { type: 'string', pattern: p }] as const),
  ]
  for (const [name, schema] of idSchemas) {
    if (typeof schema.pattern !== 'string') continue
    const [id] = fc.sample(validWire(schema) as fc.Arbitrary<string>, { seed: FUZZ_SEED, numRuns: 1 })
    missing[name] = id!
    missing[schema.pattern] = id!
  }
})

afterAll(async () => {
  await http.close()
  await world?.store.close()
})

interface Answer {
  status: number
  /** Every header but the request id and the transport's date, names lower-cased. */
  headers: Record<string, string>
  /** The body with the request id masked. */
  body: string
  /** Everything a reader of the response sees. */
  raw: string
}

async function answer(
  t: Transport,
  op: Operation,
  path: string,
  options: SendOptions,
  body?: unknown,
): Promise<Answer> {
  const res = await t.send(world.app, path, {
    ...options,
    method: op.method,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  })
  const headers: Record<string, string> = {}
  res.headers.forEach((value, name) => {
    if (!['metorial-req-id', 'date', 'ratelimit-remaining', 'ratelimit-reset'].includes(name.toLowerCase()))
      headers[name.toLowerCase()] = value
  })
  // A stream (streamSessionEvents) is read through its session.position message, then closed.
  const checked = await checkResponse(op, res)
  expect(checked.problems, `${op.operationId} ${path}`).toEqual([])
  const text = checked.text
  const raw = `${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${text}`
  return { status: res.status, headers, body: withoutRequestId(text), raw }
}

const expectSame = (actual: Answer, expected: Answer, what: string) => {
  expect(actual.status, what).toBe(expected.status)
  expect(actual.headers, what).toEqual(expected.headers)
  expect(actual.body, what).toBe(expected.body)
}

const expectNothingOf = (answer: Answer, other: string[], what: string) => {
  const shown = other.filter((secret) => answer.raw.includes(secret))
  expect(shown, `${what} shows data of the other instance`).toEqual([])
}

/** Everything a write may change: the rows of every table it writes to, and every run's state. */
const snapshot = async () => JSON.stringify({ rows: await rowCounts(world.store), runs: await runStates(world.store) })

/** Runs `request` and expects it to have written nothing. */
async function writesNothing<T>(what: string, request: () => Promise<T>): Promise<T> {
  const before = await snapshot()
  const result = await request()
  expect(await snapshot(), `${what} wrote something`).toBe(before)
  return result
}

/** [transport, operation, key holder, owner of the data] */
const matrix = transports.flatMap((t) =>
  operations.flatMap((op) =>
    (['a→b', 'b→a'] as const).map(
      (direction) => [`${t.name} ${op.operationId} ${direction}`, t, op, direction] as const,
    ),
  ),
)

describe.each(matrix)('isolation %s', (_, t, op, direction) => {
  let holder: Instance
  let owner: Instance
  const mine = () => owned.get(holder.id)!
  const theirs = () => owned.get(owner.id)!
  const own = () => mine().entity
  const their = () => theirs().entity
  /** A body of the operation that would succeed in the session of `who`. */
  const bodyOf = (who: Owned) => who.bodies.get(op.operationId)?.[0]

  beforeAll(() => {
    ;[holder, owner] = direction === 'a→b' ? [world.a, world.b] : [world.b, world.a]
  })

  it('another instance’s session, event or run answers exactly as a missing one, and a write to it writes nothing', async () => {
    const options = { key: holder.secret_key }
    const absent = {
      SessionId: missing.SessionId!,
      SessionEventId: missing.SessionEventId!,
      ServerRunId: missing.ServerRunId!,
    }
    const cases: [string, Entities, Entities, unknown][] = [
      ['their session', their(), { ...their(), SessionId: absent.SessionId }, bodyOf(theirs())],
      [
        'their session and an event and a run of mine',
        { ...own(), SessionId: their().SessionId },
        { ...own(), SessionId: absent.SessionId },
        bodyOf(mine()),
      ],
      [
        'my session and their event',
        { ...own(), SessionEventId: their().SessionEventId },
        { ...own(), SessionEventId: absent.SessionEventId },
        bodyOf(mine()),
      ],
      [
        'my session and their run',
        { ...own(), ServerRunId: their().ServerRunId },
        { ...own(), ServerRunId: absent.ServerRunId },
        bodyOf(mine()),
      ],
    ]
    for (const [what, foreign, nowhere, body] of cases) {
      const path = pathOf(op, foreign)
      if (path === pathOf(op, own())) continue // the operation does not address what this case changes
      const [a, b] = await writesNothing(what, async () => [
        await answer(t, op, path, options, body),
        await answer(t, op, pathOf(op, nowhere), options, body),
      ])
      expect(a.status, what).toBeGreaterThanOrEqual(400)
      expectSame(a, b, what)
      expectNothingOf(a, theirs().secrets, what)
    }
  })

  // Filters that take ids (array parameters whose items have a pattern): theirs against none.
  const idFilters = op.parameters.filter((p) => p.in === 'query' && typeof p.schema.items?.pattern === 'string')

  if (idFilters.length > 0)
    it('their ids in the filters of my session answer as ids that do not exist', async () => {
      const options = { key: holder.secret_key }
      for (const p of idFilters) {
        const idPattern: string = p.schema.items.pattern
        const foreign = theirs().pools[idPattern] ?? []
        expect(foreign.length, `${p.name}: ids of theirs to try`).toBeGreaterThan(0)
        const [a, b] = [
          await answer(
            t,
            op,
            pathOf(op, own()) + formatQuery({ [p.name]: foreign.slice(0, p.schema.maxItems ?? 10) }),
            options,
          ),
          await answer(t, op, pathOf(op, own()) + formatQuery({ [p.name]: [missing[idPattern]!] }), options),
        ]
        expect(a.status, p.name).toBe(200)
        expectSame(a, b, p.name)
        expectNothingOf(a, theirs().secrets, p.name)
      }
    })

  // Ids in a write's body (a run, a server, a deployment, a version, a server session): theirs against none.
  const bodyIds = op.requestBody ? idFields(op.requestBody.schema) : []

  if (bodyIds.length > 0)
    it('their ids in the body of a write in my session answer as ids that do not exist, and write nothing', async () => {
      const options = { key: holder.secret_key }
      for (const field of bodyIds) {
        const foreign = theirs().own[field.pattern] ?? []
        const what = `body ${field.path.join('.')}`
        expect(foreign.length, `${what}: ids of theirs to try`).toBeGreaterThan(0)
        for (const id of foreign.slice(0, 2)) {
          const path = pathOf(
            op,
            changesItsRun(op)
              ? { ...own(), ServerRunId: await freshRun(world.store, holder.id, own().SessionId) }
              : own(),
          )
          const [a, b] = await writesNothing(what, async () => [
            await answer(t, op, path, options, setAt(bodyOf(mine()), field.path, id)),
            await answer(t, op, path, options, setAt(bodyOf(mine()), field.path, missing[field.pattern])),
          ])
          expect(a.status, `${what}: ${a.body}`).toBe(400)
          expectSame(a, b, what)
          expectNothingOf(a, theirs().secrets, what)
        }
      }
    })

  it('a publishable key gets a 403, a revoked key and no key a 401, alike for mine, theirs and missing, and write nothing', async () => {
    const keys: [string, SendOptions, number][] = [
      ['publishable key', { key: holder.publishable_key }, 403],
      ['revoked key', { key: holder.revoked_key }, 401],
      ['no key', {}, 401],
    ]
    const targets: [string, Entities, unknown][] = [
      ['mine', own(), bodyOf(mine())],
      ['theirs', their(), bodyOf(theirs())],
      [
        'missing',
        { SessionId: missing.SessionId!, SessionEventId: missing.SessionEventId!, ServerRunId: missing.ServerRunId! },
        bodyOf(mine()),
      ],
    ]
    for (const [keyName, options, status] of keys) {
      const answers = []
      for (const [target, entity, body] of targets) {
        const a = await writesNothing(`${keyName} on ${target}`, () => answer(t, op, pathOf(op, entity), options, body))
        expect(a.status, `${keyName} on ${target}`).toBe(status)
        expectNothingOf(a, theirs().secrets, `${keyName} on ${target}`)
        answers.push(a)
      }
      for (const a of answers.slice(1)) expectSame(a, answers[0]!, keyName)
    }
  })

  it('my key on my own data: a success that shows nothing of theirs', async () => {
    const entity = changesItsRun(op)
      ? { ...own(), ServerRunId: await freshRun(world.store, holder.id, own().SessionId) }
      : own()
    const a = await answer(t, op, pathOf(op, entity), { key: holder.secret_key }, bodyOf(mine()))
    expect(a.status, a.body).toBe(successStatus(op))
    expectNothingOf(a, theirs().secrets, 'my own data')
  })

  if (isStream(op))
    it('my stream never carries their events: appended to their session meanwhile, through the API and the writer', async () => {
      const append = async (who: Owned, through: 'API' | 'writer', what: string) => {
        const run = who.places.activeRuns[0]!
        const lines = [{ type: 'stdout' as const, line: `isolation ${t.name} ${direction}: ${what}` }]
        if (through === 'writer')
          return (await world.store.writer.appendEvent({ sessionId: who.entity.SessionId, serverRunId: run, lines }))
            .event.id
        const res = await t.send(world.app, `/sessions/${who.entity.SessionId}/events`, {
          method: 'POST',
          key: who.instance.secret_key,
          body: JSON.stringify({ server_run_id: run, log_lines: lines }),
        })
        const text = await res.text()
        expect(res.status, text).toBe(201)
        return JSON.parse(text).id as string
      }
      // The newest events first (tail), then what is written while the stream is open.
      const res = await t.send(world.app, pathOf(op, own()) + formatQuery({ tail: '100' }), { key: holder.secret_key })
      expect(res.status).toBe(200)
      const mineSent: string[] = []
      for (const through of ['API', 'writer'] as const) {
        await append(theirs(), through, 'theirs, before mine')
        mineSent.push(await append(mine(), through, 'mine'))
        await append(theirs(), through, 'theirs, after mine')
      }
      const checked = await checkResponse(op, res, {
        until: eventsAfter(EVENT_STREAM.position, EVENT_STREAM.event, mineSent.length),
      })
      expect(checked.problems).toEqual([])
      const parts = streamParts(checked.messages!)
      expect(parts.after.map((e) => e.id)).toEqual(mineSent)
      expect(
        (checked.body as { session_id: string }[]).every((e) => e.session_id === own().SessionId),
        'every event is of my session',
      ).toBe(true)
      expect(parts.before.length, 'the tail').toBeGreaterThan(0)
      expectNothingOf(
        { status: checked.status, headers: {}, body: checked.text, raw: checked.text },
        theirs().secrets,
        'my stream',
      )
    })

  if (op.method !== 'GET')
    it('an Idempotency-Key is the instance’s own: the key they used neither replays their answer nor is refused', async () => {
      const key = `isolation-${t.name}-${op.operationId}-${direction === 'a→b' ? 'ab' : 'ba'}`
      const request = async (who: Owned) => {
        const entity = changesItsRun(op)
          ? { ...who.entity, ServerRunId: await freshRun(world.store, who.instance.id, who.entity.SessionId) }
          : who.entity
        return answer(
          t,
          op,
          pathOf(op, entity),
          { key: who.instance.secret_key, headers: { 'Idempotency-Key': key } },
          bodyOf(who),
        )
      }
      const theirAnswer = await request(theirs())
      expect(theirAnswer.status, theirAnswer.body).toBe(successStatus(op))
      const myAnswer = await request(mine())
      expect(myAnswer.status, myAnswer.body).toBe(successStatus(op))
      expect(myAnswer.headers['idempotent-replayed'], 'my request is answered, not replayed').toBeUndefined()
      expect(myAnswer.body).not.toBe(theirAnswer.body)
      expectNothingOf(myAnswer, theirs().secrets, 'my answer with their key')
    })
})
