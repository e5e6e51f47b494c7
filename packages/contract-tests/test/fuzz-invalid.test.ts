import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { base62, cursorOf, readCursor } from './support/cursor.js'
import { HOSTILE_STRINGS, invalidWire } from './support/derive.js'
import { fuzz, fuzzTimeout } from './support/fuzz.js'
import {
  byLocation,
  entities,
  errorOf,
  expectClientError,
  has,
  freshKeys,
  isDotSegment,
  issuedCursorsOf,
  noRowLeftBehind,
  optionsOf,
  pathAndQuery,
  prefixes,
  prepared,
  send,
  useFuzzWorld,
  validCursor,
  validRequest,
  validValue,
  world,
} from './support/fuzz-world.js'
import { formatQuery, operations, positionPattern } from './support/spec.js'
import { pathOf } from './support/world.js'

// Property-based fuzzing, the hostile side: invalid values derived from the spec's parameter
// schemas (out of range, wrong type, unknown enum values, empty, huge, unicode, control
// characters, injection strings), odd Authorization headers, raw path segments, malformed and
// forged cursors and raw query strings always get a 4xx in the error shape (or, for a forged
// cursor that stands for a position, a 200), never a 5xx and never a hang; a write so refused
// leaves no row behind. (Bodies: fuzz-bodies.test.ts.)

useFuzzWorld()

const ops = operations.map((op) => [op.operationId, op] as const)

describe.each(ops)('fuzz %s', (_, op) => {
  it(
    'one invalid parameter (out of range, wrong type, unknown enum, hostile text): a 4xx that names it',
    async () => {
      // One parameter, then one of its invalid values (arbitraries built once: they are costly).
      const bad = fc.oneof(
        ...op.parameters.map((p) =>
          invalidWire(p.schema, { location: p.in, prefixes })
            .filter((v) => !(p.in === 'path' && isDotSegment(v as string)))
            .map((v) => [p, v] as const),
        ),
      )
      await fc.assert(
        fc.asyncProperty(validRequest(op), bad, async (r, [p, value]) => {
          let path: string
          const entity = await prepared(op, r.entity)
          const options = optionsOf({ headers: freshKeys(r.headers), body: r.body })
          if (p.in === 'path') {
            path =
              pathOf(op, { ...entity, [p.schemaName!]: value as string }) +
              formatQuery({ ...r.unknown, ...r.query }, { indexed: r.indexed })
          } else if (p.in === 'query') {
            path = pathAndQuery(op, { ...r, entity }, { ...r.query, [p.name]: value })
          } else {
            path = pathAndQuery(op, { ...r, entity }, r.query)
            options.headers![p.name] = value as string
          }
          const what = `${p.in} ${p.name}=${JSON.stringify(value).slice(0, 100)}`
          const checked = await noRowLeftBehind(what, () => send(op, path, options))
          expectClientError(checked, what)
          // `..` is a path step of its own: it addresses another resource, not a bad id.
          const addressesAnother = p.in === 'path' && /^(\.|%2e){2}$/i.test(encodeURIComponent(value as string))
          if (!addressesAnother) {
            expect(checked.status, what).toBe(400)
            const error = errorOf(checked)
            if (error.code === 'invalid_data') {
              expect(
                error.errors?.map((e) => String(e.path[0]).toLowerCase()),
                what,
              ).toContain(p.name.toLowerCase())
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
      const latin1 = fc.string({
        unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c)),
        maxLength: 80,
      })
      const scheme = fc.constantFrom(
        'Bearer',
        'bearer',
        'BEARER',
        'Basic',
        'Token',
        'Bearer:',
        'Bearer=',
        'Bearer,',
        'Digest',
        '',
      )
      const separator = fc.constantFrom(' ', '  ', '\t', '', ':', '=', ',')
      const token = fc.oneof(
        latin1,
        fc.constantFrom(...HOSTILE_STRINGS.filter((s) => /^[\x20-\xff]*$/.test(s))),
        fc.constantFrom(
          publishable,
          revoked,
          'metorial_sk_',
          'metorial_pk_',
          `"${key}"`,
          `${key} ${key}`,
          `${key},${key}`,
          `${key}%00`,
          key.toUpperCase(),
        ),
        fc.tuple(fc.nat(), fc.constantFrom('', 'x', '!', ' x', 'é')).map(([i, c]) => {
          const at = i % key.length
          return key.slice(0, at) + c + key.slice(at + 1)
        }),
        fc.string({ unit: 'grapheme-ascii', minLength: 513, maxLength: 8_000 }),
      )
      const header = fc.oneof(
        fc.tuple(scheme, separator, token).map(([s, sep, t]) => `${s}${sep}${t}`),
        latin1,
      )
      // The valid forms of the real secret key (scheme in any case, spaces or tabs) are not odd.
      const accepted = (h: string) => new RegExp(`^[ \\t]*bearer[ \\t]+${key}[ \\t]*$`, 'i').test(h)
      await fc.assert(
        fc.asyncProperty(
          validRequest(op),
          header.filter((h) => !accepted(h)),
          async (r, authorization) => {
            const path = pathOf(op, await prepared(op, r.entity))
            const checked = await noRowLeftBehind(authorization.slice(0, 120), () =>
              send(op, path, optionsOf(r, { authorization })),
            )
            expectClientError(checked, JSON.stringify(authorization).slice(0, 120))
            expect([401, 403], JSON.stringify(authorization).slice(0, 120)).toContain(checked.status)
            if (checked.status === 403) expect(authorization.includes(publishable), authorization).toBe(true)
          },
        ),
        fuzz(0.5, 20),
      )
    },
    fuzzTimeout(0.5),
  )

  if (byLocation(op, 'path').length > 0)
    it(
      'hostile path segments (unicode, control characters, raw percent-encodings): a 4xx, never a 5xx',
      async () => {
        const segment = fc
          .oneof(
            fc.constantFrom(...HOSTILE_STRINGS).map(encodeURIComponent),
            fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).map(encodeURIComponent),
            fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 60 }).map(encodeURIComponent),
            fc.constantFrom(
              '%',
              '%ZZ',
              '%ff',
              '%C0%80',
              '%ED%A0%80',
              '%00',
              '%2F',
              '%2e%2e',
              'ses_%',
              'sev_%E2%82',
              ';',
              ';a=b',
              '*',
            ),
          )
          .filter((raw) => !isDotSegment(raw))
        await fc.assert(
          fc.asyncProperty(validRequest(op), fc.constantFrom(...byLocation(op, 'path')), segment, async (r, p, raw) => {
            // The raw segment goes into the path as it is, so that malformed encodings reach the server.
            const path = pathOf(op, { ...(await prepared(op, r.entity)), [p.schemaName!]: 'RAW' }).replace('RAW', raw)
            expectClientError(
              await noRowLeftBehind(raw.slice(0, 120), () =>
                send(op, path, optionsOf({ headers: freshKeys(r.headers), body: r.body })),
              ),
              `${p.name}: ${raw}`,
            )
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
        fc
          .tuple(
            fc.constantFrom('after', 'before', 'sideways', 'AFTER', ''),
            fc.constantFrom(...prefixes, ''),
            fc.stringMatching(/^[0-9a-z]{9}[0-9A-Za-z]{13}$/),
          )
          .map(([d, pre, rest]) => cursorOf([d, `${pre}${rest}`])),
        fc
          .tuple(fc.constantFrom(...issuedCursorsOf(op)), fc.nat(), fc.constantFrom('0', 'z', 'Z', 'A'))
          .map(([c, i, ch]) => {
            const at = 4 + (i % (c.length - 4))
            return c.slice(0, at) + ch + c.slice(at + 1)
          }),
        fc.constantFrom(...issuedCursorsOf(op)).map((c) => c.slice(0, -2)),
        fc.constantFrom(...issuedCursorsOf(op)).map((c) => `${c}00`),
        validCursor(op),
      )
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...entities), cursor, async (entity, text) => {
          const checked = await send(op, pathOf(op, entity) + formatQuery({ cursor: text }))
          const position = readCursor(text, positionPattern(op))
          if (position && text.length <= 204) {
            expect(
              checked.status,
              `${text} stands for ${JSON.stringify(position)}: ${checked.text.slice(0, 200)}`,
            ).toBe(200)
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

const withQuery = operations.filter((op) => byLocation(op, 'query').length > 0)
describe.each(withQuery.map((op) => [op.operationId, op] as const))('fuzz %s raw query strings', (_, op) => {
  it(
    'any query string (duplicated, indexed, half-encoded, malformed): never a 5xx, always a declared response',
    async () => {
      const names = byLocation(op, 'query').map((p) => p.name)
      const key = fc.oneof(
        fc.constantFrom(...names),
        fc
          .tuple(
            fc.constantFrom(...names),
            fc.constantFrom('[0]', '[1]', '[]', '[x]', '%5B0%5D', '[-1]', '[99999999999999999999]', '[0][0]', '.0'),
          )
          .map(([n, s]) => n + s),
        fc.constantFrom('', '%', '%ZZ', '[', ']', '&', '=', '__proto__', 'constructor'),
      )
      const value = fc.oneof(
        ...byLocation(op, 'query').map((p) => validValue(p, op).map((v) => encodeURIComponent([v].flat()[0] ?? ''))),
        fc
          .constantFrom(...HOSTILE_STRINGS)
          .map((s) => (s.length > 500 ? s.slice(0, 500) : s))
          .map(encodeURIComponent),
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
