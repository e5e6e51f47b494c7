import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import fc from 'fast-check'
import type { Parameter, Schema, WireValue } from './spec.js'

// Generators derived from a parameter's schema, not written per parameter: `valid` yields wire
// values the schema accepts and `invalid` wire values it refuses. Every value is the text that
// goes on the wire (a string, or several for an exploded array), because that is what a client
// sends; `decode` reads it back as the schema's type, the way the spec's `form` and `simple`
// styles define, so that a test can ask the spec's own validator whether a value is valid.

/** Strings that have broken parsers, queries and logs before; used wherever a schema refuses them. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-Infinity',
  '-1',
  '0',
  '1.5',
  '1e309',
  '9'.repeat(400),
  '[]',
  '{}',
  'true',
  '[object Object]',
  "' OR '1'='1",
  "'; DROP TABLE session_events; --",
  '" OR ""="',
  "1'); SELECT pg_sleep(10); --",
  "') UNION SELECT secret_hash FROM api_keys --",
  '<script>alert(1)</script>',
  '${jndi:ldap://example.com/a}',
  '{{7*7}}',
  '%00',
  '%',
  '%ZZ',
  '\u0000',
  '\u0007',
  '\u001b[31mred',
  '\r\nSet-Cookie: a=b',
  '../../../../etc/passwd',
  '..',
  '.',
  '/',
  '\\',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  '😀',
  '𝕊𝕖𝕤𝕤𝕚𝕠𝕟',
  'ses_🙂',
  '\u202edesrever',
  'e\u0301',
  '\ufeffses_',
  'ＳＥＳ',
  'ſ',
  'İ',
  'a'.repeat(10_000),
]

export interface DeriveOptions {
  /** Where the value goes: header values must survive HTTP unchanged (visible ASCII, no edge spaces). */
  location?: Parameter['in']
  /** Values known to exist, by the pattern they match: valid values mix them in. */
  pools?: Record<string, readonly string[]>
}

/** Whether an HTTP header carries `value` exactly as it is (header values are trimmed and must be bytes). */
export const headerSafe = (value: string) => /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value)

const typesOf = (schema: Schema): string[] => [schema.type].flat().filter((t): t is string => typeof t === 'string')

/** A wire value read as the schema's type: integers and booleans only in their canonical form. */
export function decode(schema: Schema, wire: WireValue): unknown {
  if (Array.isArray(wire))
    return typesOf(schema).includes('array') ? wire.map((w) => decode(schema.items ?? {}, w)) : wire
  const types = typesOf(schema)
  if (types.includes('array')) return [decode(schema.items ?? {}, wire)]
  if (types.includes('integer') && /^-?(0|[1-9]\d*)$/.test(wire)) return Number(wire)
  if (types.includes('number') && /^-?(0|[1-9]\d*)(\.\d+)?$/.test(wire)) return Number(wire)
  if (types.includes('boolean') && (wire === 'true' || wire === 'false')) return wire === 'true'
  return wire
}

function integerBounds(schema: Schema): { min: number; max: number } {
  let min = typeof schema.minimum === 'number' ? schema.minimum : -(2 ** 31)
  let max = typeof schema.maximum === 'number' ? schema.maximum : 2 ** 31 - 1
  if (typeof schema.exclusiveMinimum === 'number') min = Math.max(min, schema.exclusiveMinimum + 1)
  if (typeof schema.exclusiveMaximum === 'number') max = Math.min(max, schema.exclusiveMaximum - 1)
  return { min, max }
}

/**
 * Whether JavaScript's Number() reads `text` as an integer in range. Such text is not the
 * spec's integer (`0x10`, `1e1`, ` 5`, `+5`, `5.0`) but the server accepts it (known finding
 * BUG-2, test/known-findings.test.ts), so invalid integers leave it out until that is settled.
 */
function readsAsInteger(schema: Schema, text: string): boolean {
  const { min, max } = integerBounds(schema)
  const n = Number(text)
  return Number.isInteger(n) && n >= min && n <= max
}

function stringUnit(options: DeriveOptions) {
  return options.location === 'header'
    ? fc.constantFrom(...Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) => String.fromCharCode(0x20 + i)))
    : 'grapheme'
}

const matchingArbitraries = new Map<string, fc.Arbitrary<string>>()
/**
 * Strings that match a pattern, one arbitrary per pattern: building one costs milliseconds (it
 * tries fast-check's edge-case strings against every part of the pattern), drawing from it does not.
 */
function matching(pattern: string): fc.Arbitrary<string> {
  let arbitrary = matchingArbitraries.get(pattern)
  if (!arbitrary) matchingArbitraries.set(pattern, (arbitrary = fc.stringMatching(new RegExp(pattern))))
  return arbitrary
}

/** Wire values that the schema accepts. */
export function validWire(schema: Schema, options: DeriveOptions = {}): fc.Arbitrary<WireValue> {
  if (schema.const !== undefined) return fc.constant(String(schema.const))
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum.map(String))
  const types = typesOf(schema)
  if (types.includes('array')) {
    const item = validWire(schema.items ?? {}, options) as fc.Arbitrary<string>
    return fc.array(item, { minLength: schema.minItems ?? 0, maxLength: schema.maxItems ?? 10 })
  }
  if (types.includes('integer')) {
    const { min, max } = integerBounds(schema)
    return fc.integer({ min, max }).map(String)
  }
  if (types.includes('boolean')) return fc.constantFrom('true', 'false')
  if (types.includes('string') || types.length === 0) {
    const minLength = schema.minLength ?? 0
    const maxLength = schema.maxLength
    let arbitrary: fc.Arbitrary<string>
    if (typeof schema.pattern === 'string') {
      arbitrary = matching(schema.pattern)
      const pool = options.pools?.[schema.pattern]
      if (pool && pool.length > 0) arbitrary = fc.oneof(arbitrary, fc.constantFrom(...pool))
      arbitrary = arbitrary.filter((s) => s.length >= minLength && (maxLength === undefined || s.length <= maxLength))
    } else {
      arbitrary = fc.string({ unit: stringUnit(options), minLength, maxLength: maxLength ?? 64 })
    }
    return options.location === 'header' ? arbitrary.filter(headerSafe) : arbitrary
  }
  throw new Error(`no generator for schema ${JSON.stringify(schema)}`)
}

/** Every prefix of an id pattern in the spec (`ses_`, `sev_`, `srr_`…), to forge ids of the wrong kind. */
export function idPrefixes(spec: unknown): string[] {
  const found = new Set<string>()
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk)
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'pattern' && typeof value === 'string') {
          const m = /^\^([a-z]+_)/.exec(value)
          if (m) found.add(m[1]!)
        } else walk(value)
      }
    }
  }
  walk(spec)
  return [...found].sort()
}

const STRAY_CHARACTERS = [
  '!',
  '-',
  '_',
  ' ',
  '/',
  '.',
  '%',
  '+',
  '=',
  '&',
  '#',
  '?',
  '\u0000',
  '\n',
  'é',
  '€',
  'Ａ',
  '😀',
]

/** A valid string with one small change: a character more or less, a stray one, another prefix, another case. */
function nearMisses(valid: fc.Arbitrary<string>, prefixes: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    valid.map((s) => s.slice(0, -1)),
    fc.tuple(valid, fc.constantFrom('a', 'Z', '0', '_')).map(([s, c]) => s + c),
    fc.tuple(valid, fc.nat(), fc.constantFrom(...STRAY_CHARACTERS)).map(([s, i, c]) => {
      const at = s.length === 0 ? 0 : i % s.length
      return s.slice(0, at) + c + s.slice(at + 1)
    }),
    valid.map((s) => s.toUpperCase()),
    valid.map((s) => ` ${s}`),
    ...(prefixes.length > 0
      ? [fc.tuple(valid, fc.constantFrom(...prefixes)).map(([s, p]) => s.replace(/^[a-z]+_/, p))]
      : []),
  )
}

/** Wire values that the schema refuses. */
export function invalidWire(
  schema: Schema,
  options: DeriveOptions & { prefixes?: readonly string[] } = {},
): fc.Arbitrary<WireValue> {
  const header = options.location === 'header'
  const transportable = (s: string) => !header || headerSafe(s)
  const lenient = (s: string) => typesOf(schema).includes('integer') && readsAsInteger(schema, s)
  const refused = (s: string) => transportable(s) && !validatesAs(schema, s) && !lenient(s)
  const hostile = HOSTILE_STRINGS.filter(refused)
  const anyText = fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
    { weight: 3, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 40 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1_000, maxLength: 5_000 }) },
  )
  const types = typesOf(schema)

  if (types.includes('array')) {
    const items = schema.items ?? {}
    const validItem = validWire(items, options) as fc.Arbitrary<string>
    const invalidItem = invalidWire(items, options) as fc.Arbitrary<string>
    const maxItems: number | undefined = schema.maxItems
    const choices: fc.Arbitrary<string[]>[] = [
      // One bad item among good ones.
      fc
        .tuple(fc.array(validItem, { maxLength: Math.max(0, (maxItems ?? 5) - 1) }), invalidItem, fc.nat())
        .map(([good, bad, i]) => {
          const at = i % (good.length + 1)
          return [...good.slice(0, at), bad, ...good.slice(at)]
        }),
    ]
    if (maxItems !== undefined) choices.push(fc.array(validItem, { minLength: maxItems + 1, maxLength: maxItems + 5 }))
    return fc.oneof(...choices)
  }

  const choices: fc.Arbitrary<string>[] = []
  if (hostile.length > 0) choices.push(fc.constantFrom(...hostile))
  if (Array.isArray(schema.enum) || schema.const !== undefined) {
    const allowed = (schema.enum ?? [schema.const]).map(String) as string[]
    choices.push(
      fc
        .tuple(fc.constantFrom(...allowed), fc.nat(4))
        .map(([v, i]) => [v.toUpperCase(), `${v} `, `${v}x`, v.slice(1), `${v},${v}`][i]!),
      anyText,
    )
  } else if (types.includes('integer')) {
    const { min, max } = integerBounds(schema)
    if (min > Number.MIN_SAFE_INTEGER)
      choices.push(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }).map(String))
    if (max < Number.MAX_SAFE_INTEGER)
      choices.push(fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }).map(String))
    choices.push(
      fc.bigInt({ min: 10n ** 20n, max: 10n ** 60n }).map(String),
      fc.tuple(fc.integer({ min, max }), fc.integer({ min: 1, max: 999 })).map(([n, f]) => `${n}.${f}`),
      anyText,
    )
  } else if (types.includes('string') || types.length === 0) {
    if (typeof schema.pattern === 'string') {
      choices.push(
        nearMisses(validWire(schema, { ...options, pools: {} }) as fc.Arbitrary<string>, options.prefixes ?? []),
        anyText,
      )
    }
    if (typeof schema.maxLength === 'number') {
      choices.push(
        fc.string({ unit: stringUnit(options), minLength: schema.maxLength + 1, maxLength: schema.maxLength + 64 }),
      )
    }
    if (typeof schema.minLength === 'number' && schema.minLength > 0) {
      choices.push(fc.string({ unit: stringUnit(options), maxLength: schema.minLength - 1 }))
    }
  }
  if (choices.length === 0) throw new Error(`no invalid values for schema ${JSON.stringify(schema)}`)
  return fc.oneof(...choices).filter(refused)
}

/**
 * Whether one wire string is valid for a (non-array) schema, in the spec's strict sense; checked
 * here without ajv so that generators stay cheap. The deriver's own test holds it to the spec's
 * validator.
 */
export function validatesAs(schema: Schema, wire: string): boolean {
  const value = decode(schema, wire)
  if (schema.const !== undefined) return value === schema.const
  if (Array.isArray(schema.enum)) return schema.enum.includes(value)
  const types = typesOf(schema)
  if (types.includes('integer')) {
    if (typeof value !== 'number') return false
    const { min, max } = integerBounds(schema)
    return Number.isInteger(value) && value >= min && value <= max
  }
  if (types.includes('string') || types.length === 0) {
    if (typeof value !== 'string') return false
    // oxlint-disable-next-line typescript/no-misused-spread -- JSON Schema counts code points
    const length = [...value].length
    if (typeof schema.minLength === 'number' && length < schema.minLength) return false
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) return false
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) return false
    return true
  }
  return true
}

// ---- request bodies ----
//
// JSON bodies derived from a request body's schema, the way the parameters' values are derived
// above: `validJson` makes values the schema accepts, `invalidJson` a valid value with exactly
// one field made invalid, and says which field (its path), so that a test can ask the server to
// name it. Lengths are counted in code points, as JSON Schema counts them.

/** A place in a JSON value: property names and array indices. */
export type JsonPath = (string | number)[]

export interface InvalidJson {
  value: unknown
  /** The field that was made invalid ([] for the whole body). */
  path: JsonPath
  /**
   * Where a validator reports it: the field itself, or the nearest `oneOf` around it (a value
   * that none of the choices takes is reported at the choice, not inside one of them).
   */
  reported: JsonPath
}

export interface JsonDeriveOptions {
  /** Values known to exist, by the pattern they match: valid strings of that pattern mix them in. */
  pools?: Record<string, readonly string[]>
  /** Leave the bounds of strings and arrays out (the items of an array at its longest: all at once would be huge). */
  usualOnly?: boolean
}

// The suite's own compiled copies of inlined subschemas, to tell valid from invalid while
// generating (the spec's validator knows schemas by their place in the spec, not inline).
const ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: true })
addFormats.default(ajv)
const compiled = new WeakMap<Schema, ValidateFunction>()

/** Whether a JSON value is valid for an (inlined) schema, by ajv. */
export function jsonValidates(schema: Schema, value: unknown): boolean {
  let validate = compiled.get(schema)
  if (!validate) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  return validate(value) as boolean
}

// oxlint-disable-next-line typescript/no-misused-spread -- JSON Schema counts code points
const codePoints = (s: string) => [...s].length

/** The longest string or array a generator makes on most runs; the bounds themselves come now and then. */
const USUAL_STRING = 40
const USUAL_ITEMS = 4

/**
 * Any code point but a surrogate, the alphabet of fast-check's `unit: 'binary'`. Not that unit
 * itself: the first string built on it maps all 1.1 million code points back to their indexes
 * (to shrink its built-in edge cases), 0.7 s of CPU that was most of a fuzz test's time, and ten
 * times that on a loaded machine.
 */
const codePoint = fc
  .integer({ min: 0, max: 0x10ffff - 0x800 })
  .map((n) => String.fromCodePoint(n < 0xd800 ? n : n + 0x800))

/** A string of exactly `n` code points, any of them (a short run of them repeated, for long strings). */
function stringOfLength(n: number): fc.Arbitrary<string> {
  if (n <= 64) return fc.string({ unit: codePoint, minLength: n, maxLength: n })
  return fc.string({ unit: codePoint, minLength: 1, maxLength: 16 }).map((run) => {
    // oxlint-disable-next-line typescript/no-misused-spread -- code points, as JSON Schema counts them
    const points = [...run]
    return Array.from({ length: n }, (_, i) => points[i % points.length]).join('')
  })
}

function validString(schema: Schema, options: JsonDeriveOptions): fc.Arbitrary<string> {
  if (typeof schema.pattern === 'string')
    return validWire(schema, { pools: options.pools ?? {} }) as fc.Arbitrary<string>
  const min: number = schema.minLength ?? 0
  const max: number | undefined = schema.maxLength
  const usual = fc
    .string({ unit: 'grapheme', maxLength: Math.min(max ?? USUAL_STRING, Math.max(min, USUAL_STRING)) })
    .filter((s) => codePoints(s) >= min && (max === undefined || codePoints(s) <= max))
  if (options.usualOnly) return usual
  const bounds = [stringOfLength(min), ...(max === undefined ? [] : [stringOfLength(max)])]
  return fc.oneof({ weight: 8, arbitrary: usual }, ...bounds.map((arbitrary) => ({ weight: 1, arbitrary })))
}

/** Whether a key named `__proto__` is anywhere in a value: the spec's Metadata refuses one. */
function hasProtoKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasProtoKey)
  if (value === null || typeof value !== 'object') return false
  return Object.keys(value).some((key) => key === '__proto__' || hasProtoKey((value as Record<string, unknown>)[key]))
}
/** Any JSON value a request body may hold (the spec's Metadata says: no key named `__proto__`). */
const anyJson = () => fc.jsonValue({ maxDepth: 2 }).filter((value) => !hasProtoKey(value))

/** A free-form object (`additionalProperties: true`, no properties): any keys, any JSON values. */
const freeForm = () =>
  fc.dictionary(
    fc.string({ unit: 'grapheme', maxLength: 12 }).filter((key) => key !== '__proto__'),
    anyJson(),
    { maxKeys: 4 },
  )

/** JSON values that the (inlined) schema accepts. */
export function validJson(schema: Schema, options: JsonDeriveOptions = {}): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const)
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum)
  const choices = schema.oneOf ?? schema.anyOf
  if (Array.isArray(choices)) return fc.oneof(...choices.map((s: Schema) => validJson(s, options)))
  const types = typesOf(schema)
  if (types.length > 1) return fc.oneof(...types.map((type) => validJson({ ...schema, type }, options)))
  const type = types[0] ?? (schema.properties ? 'object' : undefined)
  switch (type) {
    case undefined:
      return anyJson()
    case 'null':
      return fc.constant(null)
    case 'boolean':
      return fc.boolean()
    case 'integer': {
      const { min, max } = integerBounds(schema)
      return fc.integer({ min, max })
    }
    case 'number':
      return fc.double({ noNaN: true, noDefaultInfinity: true, min: schema.minimum, max: schema.maximum })
    case 'string':
      return validString(schema, options)
    case 'array': {
      const item = validJson(schema.items ?? {}, options)
      const min: number = schema.minItems ?? 0
      const max: number | undefined = schema.maxItems
      const usual = fc.array(item, { minLength: min, maxLength: Math.min(max ?? Infinity, min + USUAL_ITEMS) })
      if (options.usualOnly || max === undefined || max <= min + USUAL_ITEMS) return usual
      const usualItem = validJson(schema.items ?? {}, { ...options, usualOnly: true })
      return fc.oneof(
        { weight: 12, arbitrary: usual },
        { weight: 1, arbitrary: fc.array(usualItem, { minLength: max, maxLength: max }) },
      )
    }
    case 'object': {
      const properties = Object.entries((schema.properties ?? {}) as Record<string, Schema>)
      if (properties.length === 0) return schema.additionalProperties === false ? fc.constant({}) : freeForm()
      const required = new Set<string>(schema.required ?? [])
      return fc.record(Object.fromEntries(properties.map(([name, s]) => [name, validJson(s, options)])), {
        requiredKeys: properties.map(([name]) => name).filter((name) => required.has(name)),
      })
    }
    default:
      throw new Error(`no generator for schema ${JSON.stringify(schema).slice(0, 200)}`)
  }
}

/** Values of every JSON type, for the wrong-type values of a schema. */
const ANY_TYPE: readonly unknown[] = [null, true, false, 0, -1, 1.5, 1e300, '', 'x', [], ['x'], {}, { x: 1 }]

/** Values that the schema refuses where they stand (its type, bounds, pattern or enum), not inside them. */
function refusedHere(schema: Schema, options: { prefixes?: readonly string[] }): fc.Arbitrary<unknown> {
  const choices: fc.Arbitrary<unknown>[] = [fc.constantFrom(...ANY_TYPE)]
  const types = typesOf(schema)
  if (Array.isArray(schema.enum) || schema.const !== undefined) {
    const allowed = (schema.enum ?? [schema.const]).filter((v: unknown) => typeof v === 'string') as string[]
    if (allowed.length > 0) {
      choices.push(
        fc
          .tuple(fc.constantFrom(...allowed), fc.nat(4))
          .map(([v, i]) => [v.toUpperCase(), `${v} `, `${v}x`, v.slice(1), `${v},${v}`][i]!),
      )
    }
  }
  if (types.includes('string')) {
    choices.push(fc.constantFrom(...HOSTILE_STRINGS))
    if (typeof schema.pattern === 'string')
      choices.push(nearMisses(validWire(schema, { pools: {} }) as fc.Arbitrary<string>, options.prefixes ?? []))
    if (typeof schema.maxLength === 'number')
      choices.push(
        stringOfLength(schema.maxLength + 1),
        fc.integer({ min: 2, max: 64 }).chain((n) => stringOfLength(schema.maxLength + n)),
      )
    if (typeof schema.minLength === 'number' && schema.minLength > 0) choices.push(stringOfLength(schema.minLength - 1))
  }
  if (types.includes('array')) {
    const item = validJson(schema.items ?? {})
    if (typeof schema.maxItems === 'number')
      choices.push(fc.array(item, { minLength: schema.maxItems + 1, maxLength: schema.maxItems + 3 }))
    if (typeof schema.minItems === 'number' && schema.minItems > 0)
      choices.push(fc.array(item, { maxLength: schema.minItems - 1 }))
  }
  if (types.includes('integer')) {
    const { min, max } = integerBounds(schema)
    choices.push(fc.constantFrom(min - 1, max + 1, min + 0.5))
  }
  return fc.oneof(...choices).filter((v) => !jsonValidates(schema, v))
}

/**
 * A value valid for the schema but for exactly one field (at any depth: a property, an array
 * item, a choice of a `oneOf`), or with one required property left out; with where that is.
 */
export function invalidJson(
  schema: Schema,
  options: JsonDeriveOptions & { prefixes?: readonly string[] } = {},
): fc.Arbitrary<InvalidJson> {
  return invalidAt(schema, [], [], options, 0)
}

function invalidAt(
  schema: Schema,
  path: JsonPath,
  reported: JsonPath,
  options: JsonDeriveOptions & { prefixes?: readonly string[] },
  depth: number,
): fc.Arbitrary<InvalidJson> {
  const here = refusedHere(schema, options).map((value) => ({
    value,
    path,
    reported: reported.length > 0 ? reported : path,
  }))
  const deeper: fc.Arbitrary<InvalidJson>[] = []
  if (depth < 8) {
    const choices = schema.oneOf ?? schema.anyOf
    if (Array.isArray(choices)) {
      // Inside a choice that takes objects or arrays: invalid there, and so for every choice.
      for (const choice of choices as Schema[]) {
        if (typesOf(choice).some((t) => t === 'object' || t === 'array') || choice.properties) {
          deeper.push(
            invalidAt(choice, path, reported.length > 0 ? reported : path, options, depth + 1).filter(
              (i) => !jsonValidates(schema, i.value),
            ),
          )
        }
      }
    }
    const properties = Object.entries((schema.properties ?? {}) as Record<string, Schema>)
    if (properties.length > 0) {
      const valid = validJson(schema, options) as fc.Arbitrary<Record<string, unknown>>
      for (const [name, s] of properties) {
        deeper.push(
          fc
            .tuple(valid, invalidAt(s, [...path, name], reported, options, depth + 1))
            .map(([object, bad]) => ({ ...bad, value: { ...object, [name]: bad.value } })),
        )
      }
      for (const name of (schema.required ?? []) as string[]) {
        deeper.push(
          valid.map((object) => {
            const { [name]: _, ...rest } = object
            return { value: rest, path: [...path, name], reported: reported.length > 0 ? reported : [...path, name] }
          }),
        )
      }
    }
    if (typesOf(schema).includes('array') && schema.items) {
      const min = Math.max(1, schema.minItems ?? 0)
      const max = Math.min(schema.maxItems ?? USUAL_ITEMS, min + USUAL_ITEMS)
      const valid = fc.array(validJson(schema.items, options), { minLength: min - 1, maxLength: max - 1 })
      deeper.push(
        fc.tuple(valid, fc.nat()).chain(([items, i]) => {
          const at = i % (items.length + 1)
          return invalidAt(schema.items, [...path, at], reported, options, depth + 1).map((bad) => ({
            ...bad,
            value: [...items.slice(0, at), bad.value, ...items.slice(at)],
          }))
        }),
      )
    }
  }
  return deeper.length === 0
    ? here
    : fc.oneof({ weight: 1, arbitrary: here }, ...deeper.map((arbitrary) => ({ weight: 2, arbitrary })))
}
