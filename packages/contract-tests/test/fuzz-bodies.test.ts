import type { components } from '@session-events/client'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  brief,
  expectReadBack,
  idFields,
  invalidBody,
  rowsWritten,
  setAt,
  shownBriefly,
  validBody,
} from './support/bodies.js'
import { HOSTILE_STRINGS, validWire, type JsonPath } from './support/derive.js'
import { fuzz, fuzzTimeout } from './support/fuzz.js'
import {
  entities,
  errorOf,
  expectClientError,
  noRowLeftBehind,
  places,
  prepared,
  secret,
  send,
  useFuzzWorld,
  world,
  type Entity,
} from './support/fuzz-world.js'
import { operations, patterns, type Operation, type Schema } from './support/spec.js'
import type { SendOptions } from './support/transport.js'
import { freshRun, pathOf, rowCounts, rowsAdded, successStatus } from './support/world.js'

// Property-based fuzzing of request bodies, for every operation that takes one. Bodies come from
// generators derived from the body's schema (support/derive.ts) and held to the operation's rules
// (support/bodies.ts):
// - a valid body gets the operation's success, conforming, reading back what was sent, and writes
//   exactly the rows one call writes;
// - a body with one field invalid gets a 400 invalid_data whose `errors` name that field;
// - a body that breaks one of the spec's rules (an id that names nothing, a stopped run, a new
//   server without a name, a completed stop with an error) gets the 400 (or 409) the spec says;
// - hostile JSON (malformed, truncated, deeply nested, huge numbers, duplicate and __proto__ keys,
//   lone surrogates, wrong content types) never gets a 5xx;
// and a body that is refused leaves no row behind: sessions, servers, versions, deployments,
// server sessions, runs, run errors and events are counted before and after, and every run's
// state compared.

type ApiError = components['schemas']['Error']

useFuzzWorld()

const writes = operations.filter((op) => op.requestBody)

/** Where a request goes: one of A's sessions (with an event and a run), prepared before it is sent (a fresh run to stop). */
const target = () => fc.constantFrom(...entities)

async function sendBody(op: Operation, entity: Entity, body: string | undefined, options: SendOptions = {}) {
  return send(op, pathOf(op, entity), { ...secret(), ...options, ...(body !== undefined && { body }) })
}

/** Whether an error's path names `field`: the field itself, or a place inside the value it holds. */
const names = (path: readonly (string | number)[], field: readonly (string | number)[]) =>
  path.length >= field.length && field.every((x, i) => String(x) === String(path[i]))

/** The fields of a body schema that take any JSON object (metadata, capabilities), at any depth outside arrays. */
function freeFormFields(schema: Schema, at: JsonPath = []): JsonPath[] {
  const choices = (schema.oneOf ?? schema.anyOf ?? []) as Schema[]
  if (choices.length > 0) return choices.flatMap((c) => freeFormFields(c, at))
  const properties = Object.entries((schema.properties ?? {}) as Record<string, Schema>)
  if (properties.length === 0)
    return [schema.type, schema.additionalProperties].includes('object') || schema.additionalProperties === true
      ? [at]
      : []
  return properties.flatMap(([name, s]) => freeFormFields(s, [...at, name]))
}

describe.each(writes.map((op) => [op.operationId, op] as const))('fuzz %s bodies', (_, op) => {
  const bodySchema = op.requestBody!.schema
  const made = new Map<string, fc.Arbitrary<unknown>>()
  /** Valid bodies in the entity's session (made once per session: deriving them is not free). */
  const bodies = (entity: Entity) => {
    let arbitrary = made.get(entity.SessionId)
    if (!arbitrary) made.set(entity.SessionId, (arbitrary = validBody(op, places.get(entity.SessionId)!)))
    return arbitrary
  }

  it(
    'valid bodies: the success, conforming, reading back what was sent, writing exactly the rows of one call',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          target().chain((entity) => fc.tuple(fc.constant(entity), bodies(entity))),
          async ([entity, body]) => {
            const ready = await prepared(op, entity)
            const before = await rowCounts(world.store)
            const checked = await sendBody(op, ready, body === undefined ? undefined : JSON.stringify(body))
            const what = `${JSON.stringify(body)?.slice(0, 300)}: ${checked.text.slice(0, 300)}`
            expect(checked.status, what).toBe(successStatus(op))
            expect(checked.problems, what).toEqual([])
            expectReadBack(op, ready.SessionId, body, checked.body)
            expect(await rowsAdded(world.store, before), what).toEqual(rowsWritten(op, body))
          },
        ),
        fuzz(0.5, 20),
      )
    },
    fuzzTimeout(0.5, 200),
  )

  it(
    'one field invalid by the schema: a 400 invalid_data that names it, and no row left behind',
    async () => {
      const bad = invalidBody(op)
      await fc.assert(
        fc.asyncProperty(target(), bad, async (entity, { value, path, reported }) => {
          const ready = await prepared(op, entity)
          const text = JSON.stringify(value)
          const what = `${JSON.stringify(path)} in ${text.slice(0, 300)}`
          const checked = await noRowLeftBehind(what, () => sendBody(op, ready, text))
          expectClientError(checked, what)
          expect(checked.status, what).toBe(400)
          const error = errorOf(checked)
          expect(error.code, what).toBe('invalid_data')
          const named = (error.errors ?? []).map((e) => e.path)
          expect(
            named.some((p) => names(p, reported)),
            `${what}: named ${JSON.stringify(named)}, not ${JSON.stringify(reported)}`,
          ).toBe(true)
        }),
        fuzz(),
      )
    },
    fuzzTimeout(1, 200),
  )

  // The spec's rules, broken one at a time: what a schema cannot say.
  const ids = idFields(bodySchema)
  const missingId = (pattern: string) => validWire({ type: 'string', pattern }) as fc.Arbitrary<string>

  const hasRules = ids.length > 0 || ['startServerRun', 'stopServerRun', 'createSessionEvent'].includes(op.operationId)

  if (hasRules)
    it(
      'a body that breaks one of the spec’s rules: the 400 (or 409) that names the field, and no row left behind',
      async () => {
        type Broken = { body: unknown; status: number; field: JsonPath | undefined; code: ApiError['code'] }
        const broken = (entity: Entity): fc.Arbitrary<Broken> => {
          const choices: fc.Arbitrary<Broken>[] = []
          // An id that names nothing of the instance: "a 400 invalid_data whose errors name the field".
          for (const field of ids) {
            choices.push(
              fc.tuple(bodies(entity), missingId(field.pattern)).map(([b, id]) => ({
                body: setAt(b, field.path, id),
                status: 400,
                field: field.path,
                code: 'invalid_data',
              })),
            )
          }
          if (op.operationId === 'startServerRun') {
            choices.push(
              bodies(entity).map((b) => ({
                body: { ...(b as object), server: {} },
                status: 400,
                field: ['server', 'name'],
                code: 'invalid_data',
              })),
            )
          }
          if (op.operationId === 'stopServerRun') {
            const error = { code: 'process_exited', message: 'exited' }
            choices.push(
              fc.constant({
                body: { status: 'completed', error },
                status: 400,
                field: ['error'],
                code: 'invalid_data',
              }),
            )
          }
          if (op.operationId === 'createSessionEvent') {
            // A run of another session, and a run that has stopped (409).
            const other = entities.find((e) => e.SessionId !== entity.SessionId)!
            choices.push(
              bodies(entity).map((b) => ({
                body: { ...(b as object), server_run_id: other.ServerRunId },
                status: 400,
                field: ['server_run_id'],
                code: 'invalid_data',
              })),
            )
            choices.push(bodies(entity).map((b) => ({ body: b, status: 409, field: undefined, code: 'conflict' })))
          }
          return fc.oneof(...choices)
        }
        await fc.assert(
          fc.asyncProperty(
            target().chain((entity) => fc.tuple(fc.constant(entity), broken(entity))),
            async ([entity, rule]) => {
              const ready = await prepared(op, entity)
              let body = rule.body
              if (rule.code === 'conflict') {
                // Lines for a run that has stopped: stop one of the session's, now.
                const run = await freshRun(world.store, world.a.id, entity.SessionId)
                await world.store.writer.stopServerRun({
                  sessionId: entity.SessionId,
                  serverRunId: run,
                  stop: { status: 'completed' },
                })
                body = { ...(body as object), server_run_id: run }
              }
              const text = JSON.stringify(body)
              const what = text.slice(0, 300)
              const checked = await noRowLeftBehind(what, () => sendBody(op, ready, text))
              expectClientError(checked, what)
              expect(checked.status, what).toBe(rule.status)
              const error = errorOf(checked)
              expect(error.code, what).toBe(rule.code)
              if (rule.field) {
                const named = (error.errors ?? []).map((e) => e.path)
                expect(
                  named.some((p) => names(p, rule.field!)),
                  `${what}: named ${JSON.stringify(named)}, not ${JSON.stringify(rule.field)}`,
                ).toBe(true)
              }
            },
          ),
          fuzz(0.5, 20),
        )
      },
      fuzzTimeout(0.5, 200),
    )

  it(
    'hostile JSON (malformed, truncated, nested deep, odd numbers and keys, lone surrogates, wrong content types): never a 5xx, and a refusal leaves no row behind',
    async () => {
      const free = freeFormFields(bodySchema)
      const body = (entity: Entity) => bodies(entity).map((b) => JSON.stringify(b ?? {}))
      const hostile = (entity: Entity): fc.Arbitrary<{ text: string; contentType?: string | null }> =>
        fc.oneof(
          // Valid JSON text, cut short or with one character changed.
          fc.tuple(body(entity), fc.nat()).map(([t, i]) => ({ text: t.slice(0, i % Math.max(1, t.length)) })),
          fc
            .tuple(
              body(entity),
              fc.nat(),
              fc.constantFrom('{', '}', '[', ']', '"', ',', ':', '\\', '\u0000', 'x', '\ud800'),
            )
            .map(([t, i, c]) => {
              const at = i % Math.max(1, t.length)
              return { text: t.slice(0, at) + c + t.slice(at + 1) }
            }),
          // Any JSON value, and strings and texts that are no JSON at all.
          fc.jsonValue({ maxDepth: 3 }).map((v) => ({ text: JSON.stringify(v) })),
          fc.constantFrom(...HOSTILE_STRINGS).map((s) => ({ text: s.slice(0, 2_000) })),
          fc
            .constantFrom(
              '',
              ' ',
              'null',
              '[]',
              '{}',
              '{"":{}}',
              '\ufeff{}',
              '{}{}',
              '{} x',
              '1e999',
              '{"__proto__":{"polluted":true}}',
              '{"constructor":{"prototype":{"polluted":true}}}',
            )
            .map((text) => ({ text })),
          // A valid body with a field made odd: a huge or tiny number, a duplicate key, a lone surrogate, a __proto__ key.
          fc
            .tuple(
              body(entity),
              fc.constantFrom(
                '1e999',
                '-1e999',
                '-0',
                '1e-400',
                '123456789012345678901234567890',
                '"\\ud800"',
                '"\\udfff\\ud800"',
                '{"__proto__":{"x":1}}',
                '"\\u0000"',
              ),
            )
            .map(([t, v]) => ({
              text: t.replace(/^\{/, `{"odd":${v},`),
            })),
          fc.tuple(body(entity)).map(([t]) => ({ text: t.replace(/^\{(.*)\}$/s, '{$1,$1}') })),
          // A free-form field (metadata, capabilities) nested deep.
          ...(free.length > 0
            ? [
                fc
                  .tuple(bodies(entity), fc.constantFrom(...free), fc.integer({ min: 1, max: 20_000 }), fc.boolean())
                  .map(([b, at, depth, arrays]) => {
                    const open = arrays ? '{"a":['.repeat(depth) : '{"a":'.repeat(depth)
                    const close = arrays ? ']}'.repeat(depth) : '}'.repeat(depth)
                    return {
                      text: JSON.stringify(setAt(b ?? {}, at, { nested: 'HERE' })).replace(
                        '"HERE"',
                        `${open}1${close}`,
                      ),
                    }
                  }),
              ]
            : []),
          // A valid body under another content type, or none.
          fc
            .tuple(
              body(entity),
              fc.constantFrom(
                null,
                'text/plain',
                'application/x-www-form-urlencoded',
                'multipart/form-data',
                'application/json; charset=latin1',
                'application/jsonx',
                '*/*',
              ),
            )
            .map(([text, contentType]) => ({
              text,
              contentType,
            })),
        )
      await fc.assert(
        fc.asyncProperty(
          target().chain((entity) => fc.tuple(fc.constant(entity), hostile(entity).map(shownBriefly))),
          async ([entity, { text, contentType }]) => {
            const ready = await prepared(op, entity)
            const what = `${JSON.stringify(contentType ?? 'application/json')} ${brief(JSON.stringify(text))}`
            const checked = await noRowLeftBehind(what, () =>
              sendBody(op, ready, text, contentType === undefined ? {} : { contentType }),
            )
            expect(checked.status, `${what}: ${checked.text.slice(0, 300)}`).toBeLessThan(500)
            expect(checked.problems, what).toEqual([])
          },
        ),
        fuzz(),
      )
    },
    fuzzTimeout(1, 200),
  )
})

describe('bodies: what the properties met, pinned', () => {
  const op = (id: string) => operations.find((o) => o.operationId === id)!
  const entity = () => entities[0]!

  it('lengths are counted in code points, as JSON Schema counts them: a server name of 200 astral characters is taken, 201 refused', async () => {
    const start = op('startServerRun')
    for (const [count, status] of [
      [200, 201],
      [201, 400],
    ] as const) {
      const checked = await sendBody(
        start,
        entity(),
        JSON.stringify({ type: 'hosted', server: { name: '😀'.repeat(count) } }),
      )
      expect(checked.status, `${count} × U+1F600: ${checked.text.slice(0, 200)}`).toBe(status)
    }
  })

  it('a body of 6 MiB: a 413, and no row left behind', async () => {
    for (const write of writes) {
      const ready = await prepared(write, entity())
      const body = JSON.stringify({
        ...(fc.sample(validBody(write, places.get(entity().SessionId)!), { seed: 1, numRuns: 1 })[0] ?? {}),
        padding: 'x'.repeat(6 * 1024 * 1024),
      })
      const checked = await noRowLeftBehind(write.operationId, () => sendBody(write, ready, body))
      expect(checked.status, write.operationId).toBe(413)
    }
  })

  // Found by the hostile-JSON property (README, BUG-7): metadata nested a few thousand deep (a
  // body of 30 KB) answers 500. JSON.parse and the schema take it; apps/api/src/store/new-rows.ts serialises the
  // metadata again (JSON.stringify) and runs out of stack. Expected: a 4xx (or the write).
  it('a free-form field nested 5,000 deep: not a 5xx', async () => {
    const create = op('createSession')
    const text = `{"metadata":{"a":${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}}}`
    const checked = await noRowLeftBehind('nested metadata', () => sendBody(create, entity(), text))
    expect(checked.status, checked.text.slice(0, 300)).toBeLessThan(500)
  })

  // The same, where it hurts: near the depth where the 500s begin, a run is written and
  // committed, the answer is a 500 all the same (the run is serialised again for the answer,
  // deeper), and from then on the run cannot be read: getServerRun, appending to it and listing
  // the session's events answer 500. (A retry with the Idempotency-Key writes a second run: a 500
  // is not kept.) Found by the hostile-JSON property as "refused with 500, but left rows behind".
  // Around that depth, every answer must be below 500, and a run written must read back.
  it('a run whose deployment metadata is nested near the depth that fails: refused with nothing written, or written and readable', async () => {
    const start = op('startServerRun')
    const get = op('getServerRun')
    const at = (depth: number) =>
      JSON.stringify({
        type: 'hosted',
        server: { name: 'deep' },
        server_deployment: { metadata: { nested: 'HERE' } },
      }).replace('"HERE"', `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`)
    const answers: string[] = []
    const attempt = async (depth: number) => {
      const checked = await noRowLeftBehind(`depth ${depth}`, () => sendBody(start, entity(), at(depth)))
      if (checked.status === 201) {
        const read = await send(get, pathOf(get, { ...entity(), ServerRunId: (checked.body as { id: string }).id }))
        answers.push(`${depth}: 201, read back ${read.status}`)
        return read.status === 200
      }
      answers.push(`${depth}: ${checked.status}`)
      return checked.status < 500
    }
    // The depth where answers turn from a 201 to anything else, by bisection, then each depth around it.
    let [low, high] = [1, 20_000]
    expect(await attempt(low)).toBe(true)
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2)
      const fine = await attempt(middle)
      if (fine && answers.at(-1)!.includes('201')) low = middle
      else high = middle
    }
    for (let depth = Math.max(1, low - 16); depth <= high + 16; depth++) await attempt(depth)
    expect(
      answers.filter((a) => /: 5\d\d|read back (?!200)/.test(a)),
      answers.join(', '),
    ).toEqual([])
  })

  // Found while holding created sessions to what was sent (README, BUG-9): a metadata key named
  // `__proto__` (JSON.parse makes it an own property, as JSON has no prototypes) was dropped on
  // the way in, by the copy that the generated route's `z.looseObject({})` makes. The spec's
  // Metadata now refuses such a key: a 400 naming it, and nothing written.
  it('metadata with a key named __proto__ is refused, naming the key', async () => {
    const create = op('createSession')
    const text = '{"metadata":{"__proto__":{"role":"admin"},"plain":1}}'
    const checked = await sendBody(create, entity(), text)
    expect(checked.status).toBe(400)
    expect((checked.body as { errors: { path: unknown[] }[] }).errors[0]!.path).toEqual(['metadata', '__proto__'])
  })
})

// Every id pattern of the spec generates (the rules above draw missing ids from them).
it('draws ids that name nothing from every id pattern of the spec', () => {
  for (const pattern of patterns.filter((p) => /^\^[a-z]+_/.test(p)))
    expect(fc.sample(validWire({ type: 'string', pattern }), { seed: 1, numRuns: 3 })).toHaveLength(3)
})
