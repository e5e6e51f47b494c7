import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { invalidBody, underBodyLimit } from './support/bodies.js'
import { decode, idPrefixes, invalidWire, validJson, validWire, type JsonPath } from './support/derive.js'
import { fuzz, fuzzTimeout } from './support/fuzz.js'
import { operations, spec, validator } from './support/spec.js'

// The generators of the fuzzing suites are derived from the spec's parameter and request body
// schemas; this holds them to the spec's own validator: what `validWire` and `validJson` make
// validates, what `invalidWire` and `invalidJson` make does not, and a body made invalid is
// invalid where the generator says. Without it a wrong generator would make the fuzzing prove
// nothing.

const prefixes = idPrefixes(spec)
const parameters = operations.flatMap((op) => op.parameters.map((p) => ({ op: op.operationId, ...p })))
const bodies = operations.filter((op) => op.requestBody).map((op) => [op.operationId, op] as const)

/** A JSON pointer, as the validator names places. */
const pointer = (path: JsonPath) => path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('')

describe('schema → arbitrary deriver', () => {
  it('finds the id prefixes of the spec', () => {
    expect(prefixes).toEqual(expect.arrayContaining(['ses_', 'sev_', 'srr_', 'srs_', 'cur_']))
  })

  it.each(parameters.map((p) => [`${p.op} ${p.in} ${p.name}`, p] as const))(
    '%s: valid values validate against the spec',
    (_, p) => {
      fc.assert(
        fc.property(validWire(p.schema, { location: p.in }), (wire) => {
          expect(validator.validate(p.schemaPointer, decode(p.schema, wire)), JSON.stringify(wire)).toEqual([])
        }),
        fuzz(0.5, 50),
      )
    },
    fuzzTimeout(0.5, 2),
  )

  it.each(parameters.map((p) => [`${p.op} ${p.in} ${p.name}`, p] as const))(
    '%s: invalid values fail the spec',
    (_, p) => {
      fc.assert(
        fc.property(invalidWire(p.schema, { location: p.in, prefixes }), (wire) => {
          expect(
            validator.validate(p.schemaPointer, decode(p.schema, wire)),
            JSON.stringify(wire).slice(0, 200),
          ).not.toEqual([])
        }),
        fuzz(0.5, 50),
      )
    },
    fuzzTimeout(0.5, 2),
  )

  it.each(bodies)(
    '%s body: valid bodies validate against the spec',
    (_, op) => {
      fc.assert(
        fc.property(validJson(op.requestBody!.schema).filter(underBodyLimit), (body) => {
          expect(validator.validate(op.requestBody!.schemaPointer, body), JSON.stringify(body).slice(0, 300)).toEqual(
            [],
          )
        }),
        fuzz(0.5, 50),
      )
    },
    fuzzTimeout(0.5, 20),
  )

  it.each(bodies)(
    '%s body: invalid bodies fail the spec where the generator says, and only there',
    (_, op) => {
      fc.assert(
        fc.property(invalidBody(op), ({ value, path, reported }) => {
          const errors = validator.validate(op.requestBody!.schemaPointer, value)
          const what = `${JSON.stringify(path)} in ${JSON.stringify(value).slice(0, 300)}`
          expect(errors, what).not.toEqual([])
          // Every error is at the field or inside it (a missing property is reported at its object).
          const at = pointer(reported)
          const parent = pointer(path.slice(0, -1))
          const placed = (error: string) => {
            const where = error.split(' ')[0] === '/' ? '' : error.split(' ')[0]!
            return where === at || where.startsWith(`${at}/`) || (where === parent && /required property/.test(error))
          }
          expect(
            errors.filter((e) => !placed(e)),
            what,
          ).toEqual([])
        }),
        fuzz(0.5, 50),
      )
    },
    fuzzTimeout(0.5, 20),
  )
})
