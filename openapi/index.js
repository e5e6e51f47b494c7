// Reads openapi/session-events.yaml and checks values against its schemas. Used by the tests
// that hold the examples, the API and the client to the spec.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { parse } from 'yaml'

export const specPath = fileURLToPath(new URL('./session-events.yaml', import.meta.url))

/** The spec as a plain object, YAML aliases resolved (what /openapi.json serves). */
export function loadSpec() {
  return parse(readFileSync(specPath, 'utf8'), { maxAliasCount: -1 })
}

const SPEC_ID = 'https://session-events.local/openapi.json'

/**
 * A validator over the spec's own JSON Schemas (draft 2020-12, formats checked).
 * `validate(pointer, value)` checks `value` against the schema at `pointer`, such as
 * `#/components/schemas/SessionEvent`, and returns the errors (empty when it is valid).
 */
export function createSpecValidator(spec = loadSpec()) {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true })
  addFormats.default(ajv)
  ajv.addSchema({ ...spec, $id: SPEC_ID })
  const cache = new Map()
  return {
    spec,
    validate(pointer, value) {
      let check = cache.get(pointer)
      if (!check) {
        check = ajv.compile({ $ref: `${SPEC_ID}${pointer}` })
        cache.set(pointer, check)
      }
      return check(value) ? [] : (check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`)
    },
  }
}
