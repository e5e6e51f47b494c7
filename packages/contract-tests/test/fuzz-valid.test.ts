import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fuzz, fuzzTimeout } from './support/fuzz.js'
import {
  byLocation,
  entities,
  expectClientError,
  has,
  pathAndQuery,
  secret,
  send,
  useFuzzWorld,
  validRequest,
  validValue,
} from './support/fuzz-world.js'
import { formatQuery, operations } from './support/spec.js'
import { pathOf } from './support/world.js'

// Property-based fuzzing, the valid side: requests whose values come from generators derived
// from the spec's parameter schemas always get a 2xx whose headers and body conform, whatever
// the encoding of their arrays; what the spec forbids in combination gets a 400. FUZZ_RUNS sets
// the runs of each property (200 by default), FUZZ_SEED the seed (README).

useFuzzWorld()

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
