import type { components } from '@session-events/client'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { idPrefixes, invalidWire, validWire } from './support/derive.js'
import { FUZZ_SEED } from './support/fuzz.js'
import { checkResponse, declaredPairs, formatQuery, operations, poolsOf, spec, type Operation, type WireValue } from './support/spec.js'
import { inProcess, overHttp, type SendOptions, type Transport } from './support/transport.js'
import {
  createWorld,
  eventIds,
  faultyStore,
  pathOf,
  READS_AFTER_AUTH,
  sessionIds,
  unavailable,
  unexpectedFailure,
  type App,
  type World,
} from './support/world.js'

// Spec-driven conformance: for every operation and every status the spec declares, drive the
// real app into that response, in-process and over HTTP, and hold the response to the spec
// (status, headers, content type, body). The only hand-written part is how to provoke each
// status; what a response must look like comes from the spec alone.

type ApiError = components['schemas']['Error']

interface Variant {
  label: string
  status: number
  send(t: Transport): Promise<Response>
}

interface Context {
  world: World
  /** A session of instance A with a log event and an error event; B's session; ids nobody has. */
  real: { SessionId: string; logEvent: string; errorEvent: string }
  foreign: { SessionId: string; SessionEventId: string }
  missing: Record<string, string>
  /** The ids of A's session by the spec pattern they match. */
  pools: Record<string, string[]>
  apps: { limited: Map<string, App>; failing: App; unavailable: App; failingKeys: App; down: App }
}

let ctx: Context
const transports: Transport[] = [inProcess, overHttp()]
const covered = new Map<string, Set<string>>(transports.map((t) => [t.name, new Set()]))
const prefixes = idPrefixes(spec)

/** A few values of an arbitrary, the same on every run of the suite. */
const sample = <T>(arbitrary: fc.Arbitrary<T>, count: number): T[] => fc.sample(arbitrary, { seed: FUZZ_SEED, numRuns: count })

beforeAll(async () => {
  const world = await createWorld({ sessions: 2, events: 30 })
  const sessionId = world.a.sessions[0]!.id
  const [logs, errors] = await Promise.all(
    (['server_logs', 'server_run_error'] as const).map((type) =>
      world.store.db.selectFrom('session_events').select('id').where('session_id', '=', sessionId).where('type', '=', type).orderBy('id').executeTakeFirstOrThrow(),
    ),
  )
  const foreignSession = world.b.sessions[0]!.id
  const [foreignEvent] = await eventIds(world.store, foreignSession)
  // Ids that match their schema's pattern and belong to nothing, derived from the spec.
  const missing: Record<string, string> = {}
  for (const p of operations.flatMap((op) => op.parameters)) {
    if (p.schemaName && typeof p.schema.pattern === 'string') missing[p.schemaName] ??= sample(validWire(p.schema) as fc.Arbitrary<string>, 1)[0]!
  }
  ctx = {
    world,
    real: { SessionId: sessionId, logEvent: logs!.id, errorEvent: errors!.id },
    foreign: { SessionId: foreignSession, SessionEventId: foreignEvent! },
    missing,
    pools: poolsOf(await sessionIds(world.store, sessionId)),
    apps: {
      limited: new Map(),
      failing: world.appWith({ store: faultyStore(world.store, unexpectedFailure, READS_AFTER_AUTH) }),
      unavailable: world.appWith({ store: faultyStore(world.store, unavailable, READS_AFTER_AUTH) }),
      failingKeys: world.appWith({ store: faultyStore(world.store, unexpectedFailure, ['findApiKey']) }),
      down: world.appWith({ store: faultyStore(world.store, unavailable, ['findApiKey', ...READS_AFTER_AUTH]) }),
    },
  }
})

afterAll(async () => {
  await Promise.all(transports.map((t) => t.close()))
  await ctx?.world.store.close()
})

/** A request path of `op` for A's session (and an event of it), with a query. */
function realPath(op: Operation, query: Record<string, WireValue | undefined> = {}, event = ctx.real.logEvent) {
  return pathOf(op, { SessionId: ctx.real.SessionId, SessionEventId: event }) + formatQuery(query)
}

const secret = () => ({ key: ctx.world.a.secret_key }) satisfies SendOptions

/** Values that address another resource by URL rules (`/sessions/../events`), not a bad id. */
const addressable = (value: WireValue) => typeof value !== 'string' || !['', '.', '..'].includes(encodeURIComponent(value))

/** How to drive an operation into each status. */
const provoke: Record<string, (op: Operation) => Variant[]> = {
  '200': (op) => {
    const variants: Variant[] = [{ label: 'a secret key of the owner', status: 200, send: (t) => t.send(ctx.world.app, realPath(op), secret()) }]
    if (realPath(op, {}, ctx.real.errorEvent) !== realPath(op)) {
      variants.push({ label: 'an error event', status: 200, send: (t) => t.send(ctx.world.app, realPath(op, {}, ctx.real.errorEvent), secret()) })
    }
    // Every query parameter at once, with values derived from its schema (ids that exist mixed
    // in). Of the positions, which exclude each other, only `after`: a cursor is valid only
    // when a server issued it, and the fuzzing suites cover those.
    const query = op.parameters.filter((p) => p.in === 'query' && p.name !== 'cursor' && p.name !== 'before')
    if (query.length > 0) {
      for (const [i, values] of sample(fc.record(Object.fromEntries(query.map((p) => [p.name, validWire(p.schema, { location: 'query', pools: ctx.pools })]))), 3).entries()) {
        variants.push({ label: `derived query #${i + 1}`, status: 200, send: (t) => t.send(ctx.world.app, realPath(op, values), secret()) })
      }
    }
    const header = op.parameters.filter((p) => p.in === 'header')
    for (const p of header) {
      const [value] = sample(validWire(p.schema, { location: 'header' }) as fc.Arbitrary<string>, 1)
      variants.push({
        label: `header ${p.name}`,
        status: 200,
        send: (t) => t.send(ctx.world.app, realPath(op), { ...secret(), headers: { [p.name]: value! } }),
      })
    }
    return variants
  },

  '400': (op) => {
    const variants: Variant[] = []
    for (const p of op.parameters) {
      const bad = sample(invalidWire(p.schema, { location: p.in, prefixes }).filter(addressable), 3)
      for (const [i, value] of bad.entries()) {
        const label = `${p.in} ${p.name} invalid #${i + 1}`
        if (p.in === 'path') {
          const entities = { SessionId: ctx.real.SessionId, SessionEventId: ctx.real.logEvent, [p.schemaName!]: value as string }
          variants.push({ label, status: 400, send: (t) => t.send(ctx.world.app, pathOf(op, entities), secret()) })
        } else if (p.in === 'query') {
          variants.push({ label, status: 400, send: (t) => t.send(ctx.world.app, realPath(op, { [p.name]: value }), secret()) })
        } else if (p.in === 'header') {
          variants.push({ label, status: 400, send: (t) => t.send(ctx.world.app, realPath(op), { ...secret(), headers: { [p.name]: value as string } }) })
        }
      }
    }
    // A malformed request that passes validation: positions that exclude each other.
    const names = new Set(op.parameters.map((p) => p.name))
    if (names.has('after') && names.has('before')) {
      variants.push({
        label: 'after and before together',
        status: 400,
        send: (t) => t.send(ctx.world.app, realPath(op, { after: ctx.real.logEvent, before: ctx.real.errorEvent }), secret()),
      })
    }
    if (names.has('cursor')) {
      variants.push({ label: 'a forged cursor', status: 400, send: (t) => t.send(ctx.world.app, realPath(op, { cursor: 'cur_0' }), secret()) })
    }
    return variants
  },

  '401': (op) => [
    { label: 'no Authorization header', status: 401, send: (t) => t.send(ctx.world.app, realPath(op), {}) },
    { label: 'an unknown key', status: 401, send: (t) => t.send(ctx.world.app, realPath(op), { key: 'metorial_sk_unknown000000000000000000000000' }) },
    { label: 'a revoked key', status: 401, send: (t) => t.send(ctx.world.app, realPath(op), { key: ctx.world.a.revoked_key }) },
    { label: 'a Basic header', status: 401, send: (t) => t.send(ctx.world.app, realPath(op), { authorization: `Basic ${ctx.world.a.secret_key}` }) },
  ],

  '403': (op) => [
    { label: 'a publishable key', status: 403, send: (t) => t.send(ctx.world.app, realPath(op), { key: ctx.world.a.publishable_key }) },
  ],

  '404': (op) => {
    const variants: Variant[] = []
    const path = op.parameters.filter((p) => p.in === 'path')
    for (const p of path) {
      const entities = { SessionId: ctx.real.SessionId, SessionEventId: ctx.real.logEvent, [p.schemaName!]: ctx.missing[p.schemaName!]! }
      variants.push({ label: `no such ${p.name}`, status: 404, send: (t) => t.send(ctx.world.app, pathOf(op, entities), secret()) })
      const foreign = { SessionId: ctx.real.SessionId, SessionEventId: ctx.real.logEvent, [p.schemaName!]: ctx.foreign[p.schemaName! as keyof Context['foreign']] }
      variants.push({ label: `${p.name} of another instance`, status: 404, send: (t) => t.send(ctx.world.app, pathOf(op, foreign), secret()) })
    }
    return variants
  },

  '429': (op) => [
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
        const first = await t.send(app, realPath(op), secret())
        const checked = await checkResponse(op, first)
        expect(checked.problems, 'the request before the limit').toEqual([])
        expect(checked.status, 'the request before the limit').toBe(200)
        return t.send(app, realPath(op), secret())
      },
    },
  ],

  '500': (op) => [
    { label: 'a store that fails unexpectedly', status: 500, send: (t) => t.send(ctx.apps.failing, realPath(op), secret()) },
    { label: 'a key lookup that fails unexpectedly', status: 500, send: (t) => t.send(ctx.apps.failingKeys, realPath(op), secret()) },
  ],

  '503': (op) => [
    { label: 'a store that cannot be reached', status: 503, send: (t) => t.send(ctx.apps.unavailable, realPath(op), secret()) },
    { label: 'a store that is down from the key lookup on', status: 503, send: (t) => t.send(ctx.apps.down, realPath(op), secret()) },
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
        const checked = await checkResponse(op, await variant.send(transport))
        // A 5xx shows nothing of what went wrong inside.
        const leaks = checked.status >= 500 && /SQLITE|ECONNREFUSED|secret\.db|10\.0\.0\.5/.test(checked.text)
        expect.soft(checked.status, `${variant.label}: ${checked.text.slice(0, 300)}`).toBe(variant.status)
        expect.soft(checked.problems, variant.label).toEqual([])
        expect.soft(leaks, `${variant.label} shows internals: ${checked.text}`).toBe(false)
        // The Error schema: `status` is "the HTTP status of the response".
        const statusAgrees = checked.status < 400 || (checked.body as ApiError | undefined)?.status === checked.status
        expect.soft(statusAgrees, `${variant.label}: the body's status is the response's`).toBe(true)
        conforms &&= checked.status === Number(status) && checked.problems.length === 0 && !leaks && statusAgrees
      }
      if (conforms) covered.get(name)!.add(`${op.operationId} ${status}`)
    })
  })
})

describe('conformance coverage', () => {
  it('covers every operation×status pair the spec declares, in-process and over HTTP', () => {
    const both = declaredPairs.filter((pair) => transports.every((t) => covered.get(t.name)!.has(pair)))
    console.log(`covered ${both.length} of ${declaredPairs.length} operation×status pairs (in-process and over HTTP)`)
    expect(declaredPairs.filter((pair) => !both.includes(pair))).toEqual([])
  })
})
