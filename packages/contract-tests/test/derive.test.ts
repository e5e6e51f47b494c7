import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decode, idPrefixes, invalidWire, validWire } from './support/derive.js'
import { fuzz, fuzzTimeout } from './support/fuzz.js'
import { operations, spec, validator } from './support/spec.js'

// The generators of the fuzzing suite are derived from the spec's parameter schemas; this holds
// them to the spec's own validator: what `validWire` makes validates, what `invalidWire` makes
// does not. Without it a wrong generator would make the fuzzing prove nothing.

const prefixes = idPrefixes(spec)
const parameters = operations.flatMap((op) => op.parameters.map((p) => ({ op: op.operationId, ...p })))

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
          expect(validator.validate(p.schemaPointer, decode(p.schema, wire)), JSON.stringify(wire).slice(0, 200)).not.toEqual([])
        }),
        fuzz(0.5, 50),
      )
    },
    fuzzTimeout(0.5, 2),
  )
})
