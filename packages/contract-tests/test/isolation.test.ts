import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validWire } from './support/derive.js'
import { checkResponse, formatQuery, operations, poolsOf, spec, type Operation } from './support/spec.js'
import { inProcess, overHttp, type SendOptions, type Transport } from './support/transport.js'
import {
  createWorld,
  eventIds,
  instanceSecrets,
  pathOf,
  sessionIds,
  withoutRequestId,
  type Instance,
  type World,
} from './support/world.js'
import fc from 'fast-check'
import { FUZZ_SEED } from './support/fuzz.js'

// The isolation matrix: for every operation, a key of one instance on the sessions and events of
// another answers byte for byte like one on sessions and events that do not exist (the request id
// aside); publishable keys get a 403, revoked keys and no key a 401, whoever owns the data; and no
// such response shows anything of the other instance. Both directions, in-process and over HTTP.

let world: World
/** Per instance: a session, an event of it, the ids its events refer to (by pattern), and every id and secret it has. */
let owned: Map<string, { entity: { SessionId: string; SessionEventId: string }; pools: Record<string, string[]>; secrets: string[] }>
/** For every id schema of the spec, an id that matches it and belongs to nobody (by schema name and by pattern). */
let missing: Record<string, string>
const http = overHttp()
const transports: Transport[] = [inProcess, http]

beforeAll(async () => {
  world = await createWorld({ sessions: 2, events: 20 })
  owned = new Map()
  for (const instance of [world.a, world.b]) {
    const sessionId = instance.sessions[0]!.id
    owned.set(instance.id, {
      entity: { SessionId: sessionId, SessionEventId: (await eventIds(world.store, sessionId))[0]! },
      pools: poolsOf(await sessionIds(world.store, sessionId)),
      secrets: await instanceSecrets(world.store, instance),
    })
  }
  missing = {}
  for (const [name, schema] of Object.entries(spec.components.schemas as Record<string, any>)) {
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

async function answer(t: Transport, op: Operation, path: string, options: SendOptions): Promise<Answer> {
  const res = await t.send(world.app, path, options)
  const headers: Record<string, string> = {}
  res.headers.forEach((value, name) => {
    if (!['metorial-req-id', 'date', 'ratelimit-remaining', 'ratelimit-reset'].includes(name.toLowerCase())) headers[name.toLowerCase()] = value
  })
  const checked = await checkResponse(op, res.clone())
  expect(checked.problems, `${op.operationId} ${path}`).toEqual([])
  const text = await res.text()
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

/** [transport, operation, key holder, owner of the data] */
const matrix = transports.flatMap((t) =>
  operations.flatMap((op) =>
    (['a→b', 'b→a'] as const).map((direction) => [`${t.name} ${op.operationId} ${direction}`, t, op, direction] as const),
  ),
)

describe.each(matrix)('isolation %s', (_, t, op, direction) => {
  let holder: Instance
  let owner: Instance
  const mine = () => owned.get(holder.id)!
  const theirs = () => owned.get(owner.id)!
  const own = () => mine().entity
  const their = () => theirs().entity

  beforeAll(() => {
    ;[holder, owner] = direction === 'a→b' ? [world.a, world.b] : [world.b, world.a]
  })

  it('another instance’s session answers exactly as a missing one', async () => {
    const options = { key: holder.secret_key }
    const cases: [string, Record<string, string>, Record<string, string>][] = [
      ['their session', their(), { ...their(), SessionId: missing.SessionId! }],
      ['their session and an event of mine', { ...their(), SessionEventId: own().SessionEventId }, { SessionId: missing.SessionId!, SessionEventId: own().SessionEventId }],
      ['my session and their event', { ...own(), SessionEventId: their().SessionEventId }, { ...own(), SessionEventId: missing.SessionEventId! }],
    ]
    for (const [what, foreign, absent] of cases) {
      const path = pathOf(op, foreign)
      if (path === pathOf(op, own())) continue // the operation does not address what this case changes
      const [a, b] = [await answer(t, op, path, options), await answer(t, op, pathOf(op, absent), options)]
      expect(a.status, what).toBeGreaterThanOrEqual(400)
      expectSame(a, b, what)
      expectNothingOf(a, theirs().secrets, what)
    }
  })

  // Filters that take ids (array parameters whose items have a pattern): theirs against none.
  const idFilters = op.parameters.filter((p) => p.in === 'query' && typeof p.schema.items?.pattern === 'string')

  if (idFilters.length > 0) it('their ids in the filters of my session answer as ids that do not exist', async () => {
    const options = { key: holder.secret_key }
    for (const p of idFilters) {
      const pattern: string = p.schema.items.pattern
      const foreign = theirs().pools[pattern] ?? []
      expect(foreign.length, `${p.name}: ids of theirs to try`).toBeGreaterThan(0)
      const [a, b] = [
        await answer(t, op, pathOf(op, own()) + formatQuery({ [p.name]: foreign.slice(0, p.schema.maxItems ?? 10) }), options),
        await answer(t, op, pathOf(op, own()) + formatQuery({ [p.name]: [missing[pattern]!] }), options),
      ]
      expect(a.status, p.name).toBe(200)
      expectSame(a, b, p.name)
      expectNothingOf(a, theirs().secrets, p.name)
    }
  })

  it('a publishable key gets a 403, a revoked key and no key a 401, alike for mine, theirs and missing', async () => {
    const keys: [string, SendOptions, number][] = [
      ['publishable key', { key: holder.publishable_key }, 403],
      ['revoked key', { key: holder.revoked_key }, 401],
      ['no key', {}, 401],
    ]
    const targets: [string, Record<string, string>][] = [
      ['mine', own()],
      ['theirs', their()],
      ['missing', { SessionId: missing.SessionId!, SessionEventId: missing.SessionEventId! }],
    ]
    for (const [keyName, options, status] of keys) {
      const answers = []
      for (const [target, entity] of targets) {
        const a = await answer(t, op, pathOf(op, entity), options)
        expect(a.status, `${keyName} on ${target}`).toBe(status)
        expectNothingOf(a, theirs().secrets, `${keyName} on ${target}`)
        answers.push(a)
      }
      for (const a of answers.slice(1)) expectSame(a, answers[0]!, keyName)
    }
  })

  it('my key on my own data: a 200 that shows nothing of theirs', async () => {
    const a = await answer(t, op, pathOf(op, own()), { key: holder.secret_key })
    expect(a.status).toBe(200)
    expectNothingOf(a, theirs().secrets, 'my own data')
  })
})
