import type { components } from '@session-events/client'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base62, cursorOf, readCursor } from './support/cursor.js'
import { HOSTILE_STRINGS, idPrefixes, invalidWire, validWire } from './support/derive.js'
import { fuzz, fuzzTimeout, REQUEST_TIMEOUT_MS } from './support/fuzz.js'
import {
  checkResponse,
  formatQuery,
  operations,
  poolsOf,
  spec,
  type CheckedResponse,
  type Operation,
  type Parameter,
  type WireValue,
} from './support/spec.js'
import { inProcess, type SendOptions } from './support/transport.js'
import { createWorld, eventIds, pathOf, sessionIds, within, type World } from './support/world.js'

// Property-based fuzzing with generators derived from the spec's parameter schemas. Valid
// requests always get a 2xx whose headers and body conform; invalid ones always get a 4xx in the
// error shape, never a 5xx and never a hang. FUZZ_RUNS sets the runs of each property (200 by
// default), FUZZ_SEED the seed (fixed, so `npm test` is reproducible).

type SessionEventList = components['schemas']['SessionEventList']
type ApiError = components['schemas']['Error']

let world: World
/** A's sessions, each with its events, as path entities. */
let entities: { SessionId: string; SessionEventId: string }[]
/** Ids of A's sessions by the spec pattern they match, so that filters and positions hit real rows. */
let pools: Record<string, string[]>
/** Cursors the server itself handed out. */
let issuedCursors: string[]

const prefixes = idPrefixes(spec)
const eventIdPattern = new RegExp(spec.components.schemas.SessionEventId.pattern)

beforeAll(async () => {
  world = await createWorld({ sessions: 2, events: 40 })
  entities = []
  const ids: string[] = []
  for (const session of world.a.sessions) {
    for (const event of await eventIds(world.store, session.id)) entities.push({ SessionId: session.id, SessionEventId: event })
    ids.push(...(await sessionIds(world.store, session.id)))
  }
  pools = poolsOf(ids)
  issuedCursors = await collectCursors()
})

afterAll(async () => {
  await world?.store.close()
})

/** Walks A's first session in both orders, small pages, and keeps every cursor it is given. */
async function collectCursors(): Promise<string[]> {
  const op = operations.find((o) => o.parameters.some((p) => p.name === 'cursor'))
  if (!op) return []
  const found = new Set<string>()
  for (const order of ['asc', 'desc']) {
    let cursor: string | undefined
    do {
      const res = await inProcess.send(world.app, pathOf(op, entities[0]!) + formatQuery({ limit: '7', order, cursor }), { key: world.a.secret_key })
      const page = (await res.json()) as SessionEventList
      for (const c of [page.pagination.next_cursor, page.pagination.previous_cursor]) if (c) found.add(c)
      cursor = page.pagination.next_cursor ?? undefined
    } while (cursor)
  }
  return [...found]
}

const secret = (): SendOptions => ({ key: world.a.secret_key })

/** One request, in-process, that must be answered within the timeout, held to the spec. */
async function send(op: Operation, path: string, options: SendOptions = secret()): Promise<CheckedResponse> {
  return within(
    inProcess.send(world.app, path, options).then((res) => checkResponse(op, res)),
    REQUEST_TIMEOUT_MS,
    `${op.operationId} ${path.slice(0, 200)}`,
  )
}

const byLocation = (op: Operation, location: Parameter['in']) => op.parameters.filter((p) => p.in === location)
const has = (op: Operation, name: string) => op.parameters.some((p) => p.name === name && p.in === 'query')

/** Valid cursors: those the server handed out, and Metorial-format ones for any well-formed event id. */
const validCursor = () =>
  fc.oneof(
    fc.constantFrom(...issuedCursors),
    fc.tuple(fc.constantFrom('after', 'before'), validWire(spec.components.schemas.SessionEventId, { pools })).map((value) => cursorOf(value)),
  )

/**
 * The valid value of one parameter. Two parameters need the world, not only their schema: a
 * cursor is valid when a server issued it (its schema admits any base-62 text), and path ids must
 * exist to be answered with a 2xx.
 */
function validValue(p: Parameter): fc.Arbitrary<WireValue> {
  if (p.in === 'query' && p.name === 'cursor') return validCursor()
  return validWire(p.schema, { location: p.in, pools })
}

/** Positions exclude each other (the spec: "Cannot be combined"): keep the first one set. */
function onePosition(query: Record<string, WireValue | undefined>) {
  if (query.cursor !== undefined) {
    delete query.after
    delete query.before
  } else if (query.after !== undefined) delete query.before
  return query
}

/** Query parameters that the spec does not have, which the server must ignore. */
const unknownParameters = (op: Operation) => {
  const known = new Set(op.parameters.map((p) => p.name))
  return fc.dictionary(
    fc.stringMatching(/^[a-z][a-z_]{0,11}$/).filter((k) => !known.has(k)),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    { maxKeys: 3 },
  )
}

interface ValidRequest {
  entity: { SessionId: string; SessionEventId: string }
  query: Record<string, WireValue | undefined>
  headers: Record<string, string>
  indexed: boolean
  unknown: Record<string, string>
}

function validRequest(op: Operation): fc.Arbitrary<ValidRequest> {
  const optional = (ps: Parameter[]) => fc.record(Object.fromEntries(ps.map((p) => [p.name, fc.option(validValue(p), { nil: undefined, freq: 2 })])))
  return fc.record({
    entity: fc.constantFrom(...entities),
    query: optional(byLocation(op, 'query')).map(onePosition),
    headers: optional(byLocation(op, 'header')).map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>),
    indexed: fc.boolean(),
    unknown: unknownParameters(op),
  })
}

const pathAndQuery = (op: Operation, r: ValidRequest, query = r.query) =>
  pathOf(op, r.entity) + formatQuery({ ...r.unknown, ...query }, { indexed: r.indexed })

const errorOf = (checked: CheckedResponse) => checked.body as ApiError

/**
 * A path segment that URL rules turn into a trailing slash (``, `.`, `%2e`). Left out of the
 * generators: such a path answers 405 today, a status the spec does not declare (known finding
 * BUG-1, skipped below).
 */
const isDotSegment = (segment: string) => /^(\.|%2e)?$/i.test(segment)

/** A 4xx in the error shape, conforming to what the operation declares for it. */
function expectClientError(checked: CheckedResponse, what: string) {
  expect(checked.status, `${what}: ${checked.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400)
  expect(checked.status, `${what}: ${checked.text.slice(0, 300)}`).toBeLessThan(500)
  expect(checked.problems, what).toEqual([])
}

const ops = operations.map((op) => [op.operationId, op] as const)

describe.each(ops)('fuzz %s', (_, op) => {
  it(
    'valid requests: a 2xx whose headers and body conform',
    async () => {
      await fc.assert(
        fc.asyncProperty(validRequest(op), async (r) => {
          const checked = await send(op, pathAndQuery(op, r), { ...secret(), headers: r.headers })
          expect(checked.status, checked.text.slice(0, 300)).toBeGreaterThanOrEqual(200)
          expect(checked.status).toBeLessThan(300)
          expect(checked.problems).toEqual([])
        }),
        fuzz(),
      )
    },
    fuzzTimeout(),
  )

  it(
    'one invalid parameter (out of range, wrong type, unknown enum, hostile text): a 4xx that names it',
    async () => {
      const params = op.parameters
      const bad = fc
        .constantFrom(...params)
        .chain((p) => fc.tuple(fc.constant(p), invalidWire(p.schema, { location: p.in, prefixes }).filter((v) => !(p.in === 'path' && isDotSegment(v as string)))))
      await fc.assert(
        fc.asyncProperty(validRequest(op), bad, async (r, [p, value]) => {
          let path: string
          const options = { ...secret(), headers: { ...r.headers } }
          if (p.in === 'path') {
            path = pathOf(op, { ...r.entity, [p.schemaName!]: value as string }) + formatQuery({ ...r.unknown, ...r.query }, { indexed: r.indexed })
          } else if (p.in === 'query') {
            path = pathAndQuery(op, r, { ...r.query, [p.name]: value })
          } else {
            path = pathAndQuery(op, r)
            options.headers[p.name] = value as string
          }
          const checked = await send(op, path, options)
          const what = `${p.in} ${p.name}=${JSON.stringify(value).slice(0, 100)}`
          expectClientError(checked, what)
          // `..` is a path step of its own: it addresses another resource, not a bad id.
          const addressesAnother = p.in === 'path' && /^(\.|%2e){2}$/i.test(encodeURIComponent(value as string))
          if (!addressesAnother) {
            expect(checked.status, what).toBe(400)
            const error = errorOf(checked)
            if (error.code === 'invalid_data') {
              expect(error.errors?.map((e) => String(e.path[0]).toLowerCase()), what).toContain(p.name.toLowerCase())
            }
          }
        }),
        fuzz(),
      )
    },
    fuzzTimeout(),
  )

  it(
    'odd Authorization headers: a 401 (or 403 for a publishable key), never data',
    async () => {
      const { secret_key: key, publishable_key: publishable, revoked_key: revoked } = world.a
      const latin1 = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 80 })
      const scheme = fc.constantFrom('Bearer', 'bearer', 'BEARER', 'Basic', 'Token', 'Bearer:', 'Bearer=', 'Bearer,', 'Digest', '')
      const separator = fc.constantFrom(' ', '  ', '\t', '', ':', '=', ',')
      const token = fc.oneof(
        latin1,
        fc.constantFrom(...HOSTILE_STRINGS.filter((s) => /^[\x20-\xff]*$/.test(s))),
        fc.constantFrom(publishable, revoked, 'metorial_sk_', 'metorial_pk_', `"${key}"`, `${key} ${key}`, `${key},${key}`, `${key}%00`, key.toUpperCase()),
        fc.tuple(fc.nat(), fc.constantFrom('', 'x', '!', ' x', 'é')).map(([i, c]) => {
          const at = i % key.length
          return key.slice(0, at) + c + key.slice(at + 1)
        }),
        fc.string({ unit: 'grapheme-ascii', minLength: 513, maxLength: 8_000 }),
      )
      const header = fc.oneof(fc.tuple(scheme, separator, token).map(([s, sep, t]) => `${s}${sep}${t}`), latin1)
      // The valid forms of the real secret key (scheme in any case, spaces or tabs) are not odd.
      const accepted = (h: string) => new RegExp(`^[ \\t]*bearer[ \\t]+${key}[ \\t]*$`, 'i').test(h)
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), header.filter((h) => !accepted(h)), async (entity, authorization) => {
          const checked = await send(op, pathOf(op, entity), { authorization })
          expectClientError(checked, JSON.stringify(authorization).slice(0, 120))
          expect([401, 403], JSON.stringify(authorization).slice(0, 120)).toContain(checked.status)
          if (checked.status === 403) expect(authorization.includes(publishable), authorization).toBe(true)
        }),
        fuzz(0.5, 20),
      )
    },
    fuzzTimeout(0.5),
  )

  if (byLocation(op, 'path').length > 0) it(
    'hostile path segments (unicode, control characters, raw percent-encodings): a 4xx, never a 5xx',
    async () => {
      const segment = fc.oneof(
        fc.constantFrom(...HOSTILE_STRINGS).map(encodeURIComponent),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).map(encodeURIComponent),
        fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 60 }).map(encodeURIComponent),
        fc.constantFrom('%', '%ZZ', '%ff', '%C0%80', '%ED%A0%80', '%00', '%2F', '%2e%2e', 'ses_%', 'sev_%E2%82', ';', ';a=b', '*'),
      ).filter((raw) => !isDotSegment(raw))
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), fc.constantFrom(...byLocation(op, 'path')), segment, async (entity, p, raw) => {
          // The raw segment goes into the path as it is, so that malformed encodings reach the server.
          const path = pathOf(op, { ...entity, [p.schemaName!]: 'RAW' }).replace('RAW', raw)
          expectClientError(await send(op, path), `${p.name}: ${raw}`)
        }),
        fuzz(0.5, 20),
      )
    },
    fuzzTimeout(0.5),
  )
})

const withCursor = operations.filter((op) => has(op, 'cursor'))
describe.each(withCursor.map((op) => [op.operationId, op] as const))('fuzz %s cursors', (_, op) => {
  it(
    'malformed, forged and tampered cursors: a 200 exactly when they stand for a position, else a 400',
    async () => {
      const cursorParameter = op.parameters.find((p) => p.name === 'cursor')!
      const cursor = fc.oneof(
        invalidWire(cursorParameter.schema, { location: 'query', prefixes }) as fc.Arbitrary<string>,
        fc.uint8Array({ minLength: 1, maxLength: 120 }).map((bytes) => `cur_${base62(bytes)}`),
        fc.jsonValue({ maxDepth: 2 }).map(cursorOf),
        fc.tuple(fc.constantFrom('after', 'before', 'sideways', 'AFTER', ''), fc.oneof(...prefixes.map((pre) => fc.constant(pre)), fc.constant('')))
          .chain(([d, pre]) => fc.stringMatching(/^[0-9a-z]{9}[0-9A-Za-z]{13}$/).map((rest) => cursorOf([d, `${pre}${rest}`]))),
        fc.tuple(fc.constantFrom(...issuedCursors), fc.nat(), fc.constantFrom('0', 'z', 'Z', 'A')).map(([c, i, ch]) => {
          const at = 4 + (i % (c.length - 4))
          return c.slice(0, at) + ch + c.slice(at + 1)
        }),
        fc.constantFrom(...issuedCursors).map((c) => c.slice(0, -2)),
        fc.constantFrom(...issuedCursors).map((c) => `${c}00`),
        validCursor(),
      )
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), cursor, async (entity, text) => {
          const checked = await send(op, pathOf(op, entity) + formatQuery({ cursor: text }))
          const position = readCursor(text, eventIdPattern)
          if (position && text.length <= 204) {
            expect(checked.status, `${text} stands for ${JSON.stringify(position)}: ${checked.text.slice(0, 200)}`).toBe(200)
            expect(checked.problems).toEqual([])
          } else {
            expectClientError(checked, text)
            expect(checked.status, text).toBe(400)
          }
        }),
        fuzz(0.5, 20),
      )
    },
    fuzzTimeout(0.5),
  )
})

const withPositions = operations.filter((op) => ['after', 'before', 'cursor'].filter((n) => has(op, n)).length >= 2)
describe.each(withPositions.map((op) => [op.operationId, op] as const))('fuzz %s positions', (_, op) => {
  it(
    'positions that exclude each other (after, before, cursor): a 400',
    async () => {
      const names = ['after', 'before', 'cursor'].filter((n) => has(op, n))
      const positions = fc.subarray(names, { minLength: 2 }).chain((chosen) =>
        fc.record(Object.fromEntries(chosen.map((n) => [n, validValue(op.parameters.find((p) => p.name === n)!)]))),
      )
      await fc.assert(
        fc.asyncProperty(validRequest(op), positions, async (r, position) => {
          const checked = await send(op, pathAndQuery(op, r, { ...r.query, ...position }))
          expectClientError(checked, JSON.stringify(position))
          expect(checked.status).toBe(400)
        }),
        fuzz(0.25, 20),
      )
    },
    fuzzTimeout(0.25),
  )
})

const withArrays = operations.filter((op) => byLocation(op, 'query').some((p) => [p.schema.type].flat().includes('array')))
describe.each(withArrays.map((op) => [op.operationId, op] as const))('fuzz %s array parameters', (_, op) => {
  const arrays = byLocation(op, 'query').filter((p) => [p.schema.type].flat().includes('array'))
  const scalars = byLocation(op, 'query').filter((p) => ![p.schema.type].flat().includes('array'))

  it(
    'repeated keys and indexed keys (in any order, brackets encoded or not) give the same page',
    async () => {
      const filters = fc.record(Object.fromEntries(arrays.map((p) => [p.name, validValue(p) as fc.Arbitrary<string[]>])))
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), filters, fc.boolean(), fc.integer(), async (entity, values, encodeBrackets, seed) => {
          const repeated = pathOf(op, entity) + formatQuery(values)
          // Indexed keys, shuffled: the server orders them by index.
          const parts = Object.entries(values).flatMap(([name, vs]) =>
            (vs as string[]).map((v, i) => `${name}${encodeBrackets ? `%5B${i}%5D` : `[${i}]`}=${encodeURIComponent(v)}`),
          )
          const shuffled = parts.map((part, i) => ({ part, key: Math.sin(seed + i) })).sort((x, y) => x.key - y.key).map((x) => x.part)
          const indexed = pathOf(op, entity) + (shuffled.length > 0 ? `?${shuffled.join('&')}` : '')
          const [a, b] = [await send(op, repeated), await send(op, indexed)]
          expect(a.status, a.text.slice(0, 200)).toBe(200)
          expect(b.problems).toEqual([])
          expect(b.text, indexed).toBe(a.text)
        }),
        fuzz(0.5, 20),
      )
    },
    fuzzTimeout(0.5),
  )

  if (scalars.length > 0) it(
    'a single-valued parameter given twice (repeated or indexed): a 400',
    async () => {
      const twice = fc
        .constantFrom(...scalars)
        .chain((p) => fc.tuple(fc.constant(p), fc.array(validValue(p) as fc.Arbitrary<string>, { minLength: 2, maxLength: 4 }), fc.boolean()))
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), twice, async (entity, [p, values, indexed]) => {
          const query = values.map((v, i) => `${p.name}${indexed ? `[${i}]` : ''}=${encodeURIComponent(v)}`).join('&')
          const checked = await send(op, `${pathOf(op, entity)}?${query}`)
          expectClientError(checked, query)
          expect(checked.status, query).toBe(400)
        }),
        fuzz(0.25, 20),
      )
    },
    fuzzTimeout(0.25),
  )
})

const withQuery = operations.filter((op) => byLocation(op, 'query').length > 0)
describe.each(withQuery.map((op) => [op.operationId, op] as const))('fuzz %s raw query strings', (_, op) => {
  it(
    'any query string (duplicated, indexed, half-encoded, malformed): never a 5xx, always a declared response',
    async () => {
      const names = byLocation(op, 'query').map((p) => p.name)
      const key = fc.oneof(
        fc.constantFrom(...names),
        fc.tuple(fc.constantFrom(...names), fc.constantFrom('[0]', '[1]', '[]', '[x]', '%5B0%5D', '[-1]', '[99999999999999999999]', '[0][0]', '.0')).map(([n, s]) => n + s),
        fc.constantFrom('', '%', '%ZZ', '[', ']', '&', '=', '__proto__', 'constructor'),
      )
      const value = fc.oneof(
        ...byLocation(op, 'query').map((p) => validValue(p).map((v) => encodeURIComponent([v].flat()[0] ?? ''))),
        fc.constantFrom(...HOSTILE_STRINGS).map((s) => (s.length > 500 ? s.slice(0, 500) : s)).map(encodeURIComponent),
        fc.constantFrom('%', '%ZZ', '%ff', '%C0%80', '%00', '+', '%2B', '&', '==', '%26limit%3D1'),
        fc.string({ unit: 'binary-ascii', maxLength: 30 }).map(encodeURIComponent),
      )
      const query = fc.array(fc.tuple(key, fc.constantFrom('=', '', '=='), value), { minLength: 1, maxLength: 8 })
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), query, async (entity, parts) => {
          const text = parts.map(([k, eq, v]) => (eq === '' ? k : `${k}${eq}${v}`)).join('&')
          const checked = await send(op, `${pathOf(op, entity)}?${text}`)
          expect(checked.status, `${text}: ${checked.text.slice(0, 200)}`).toBeLessThan(500)
          expect(checked.problems, text).toEqual([])
        }),
        fuzz(),
      )
    },
    fuzzTimeout(),
  )
})
