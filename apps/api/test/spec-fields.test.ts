import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { beforeAll, describe, expect, it } from 'vitest'
import { fixture, type Fixture } from './helpers.js'

// Every field the spec gives an object reaches the responses that carry it. The mappings in
// src/serialize.ts are typed by the generated types, so a new required field fails the build;
// this test fails for an optional one too (or one the bytes would lose), by walking real
// responses beside the spec's schemas: at every object with `properties`, the response has
// exactly those keys.

type Schema = Record<string, any>
const spec = JSON.parse(
  readFileSync(createRequire(import.meta.url).resolve('@session-events/openapi/session-events.json'), 'utf8'),
)
const resolve = (schema: Schema): Schema =>
  schema.$ref ? resolve(spec.components.schemas[schema.$ref.split('/').at(-1)]) : schema

/**
 * Where the response's keys differ from its schema's properties, as `path: missing/extra`.
 * `absentMayBe`: schemas whose optional properties an object may leave out (a log line's time,
 * level and trace: only OTLP's lines have them), walked once more where they must all be there.
 */
function differences(value: unknown, raw: Schema, path = '$', absentMayBe: ReadonlySet<string> = new Set()): string[] {
  const lenient = raw.$ref !== undefined && absentMayBe.has(raw.$ref.split('/').at(-1))
  const schema = resolve(raw)
  if (value === null) return []
  const options = schema.oneOf ?? schema.anyOf
  if (options) {
    // The option whose own properties fit best (nullable objects are `oneOf: [X, null]`).
    const tries = (options as Schema[])
      .filter((o) => resolve(o).type !== 'null')
      .map((o) => differences(value, o, path, absentMayBe))
    return tries.sort((x, y) => x.length - y.length)[0] ?? []
  }
  if (Array.isArray(value))
    return schema.items ? value.flatMap((item, i) => differences(item, schema.items, `${path}[${i}]`, absentMayBe)) : []
  if (typeof value !== 'object' || !schema.properties) return []
  const expected = Object.keys(schema.properties).sort()
  const actual = Object.keys(value as object).sort()
  const out: string[] = []
  const missing = expected.filter((k) => !actual.includes(k) && !(lenient && !schema.required?.includes(k)))
  const extra = actual.filter((k) => !expected.includes(k))
  if (missing.length || extra.length)
    out.push(`${path}: missing ${missing.join(',') || '-'}; extra ${extra.join(',') || '-'}`)
  for (const key of expected)
    if (key in (value as object))
      out.push(
        ...differences((value as Record<string, unknown>)[key], schema.properties[key], `${path}.${key}`, absentMayBe),
      )
  return out
}

let f: Fixture
beforeAll(async () => {
  f = await fixture({ sessions: 1, events: 10 })
})

const schemaOf = (name: string) => ({ $ref: `#/components/schemas/${name}` })
/** A log line's optional fields (time, level, trace) are there only on lines that have them: OTLP's. */
const LINES: ReadonlySet<string> = new Set(['LogLine'])

describe('the responses carry every field of the spec', () => {
  it('a page of events of both types, one event, a run, a session', async () => {
    const sessionId = f.a.sessions[0]!.id
    const page: any = await (await f.get(`/sessions/${sessionId}/events?limit=100`)).json()
    expect(page.items.some((e: { type: string }) => e.type === 'server_run_error')).toBe(true)
    expect(differences(page, schemaOf('SessionEventList'), '$', LINES)).toEqual([])
    const event: any = await (await f.get(`/sessions/${sessionId}/events/${page.items[0].id}`)).json()
    expect(differences(event, schemaOf('SessionEvent'), '$', LINES)).toEqual([])
    const run: any = await (await f.get(`/sessions/${sessionId}/server-runs/${event.server_run.id}`)).json()
    expect(differences(run, schemaOf('ServerRun'))).toEqual([])
    const session: any = await (
      await f.app.request('/sessions', { method: 'POST', headers: { Authorization: `Bearer ${f.a.secret_key}` } })
    ).json()
    expect(differences(session, schemaOf('Session'))).toEqual([])
  })

  it('a log line with everything a line may have: one written through OTLP with a time, a level and a trace', async () => {
    const exported = await f.app.request('/v1/logs', {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.instance.id', value: { stringValue: 'spec-fields' } }] },
            scopeLogs: [
              {
                logRecords: [
                  {
                    timeUnixNano: '1735689600000000000',
                    severityText: 'INFO',
                    body: { stringValue: 'traced' },
                    traceId: '5b8efff798038103d269b633813fc60c',
                    spanId: 'eee19b7ec3c1b174',
                  },
                ],
              },
            ],
          },
        ],
      }),
    })
    expect(exported.status).toBe(200)
    const [session] = await f.store.db
      .selectFrom('sessions')
      .select('id')
      .where('metadata_json', '=', JSON.stringify({ 'service.instance.id': 'spec-fields' }))
      .execute()
    const page: any = await (await f.get(`/sessions/${session!.id}/events`)).json()
    expect(differences(page, schemaOf('SessionEventList'))).toEqual([])
  })

  it('and the walk itself notices a field the spec has and a response lacks', () => {
    const withExtraField = {
      ...spec.components.schemas.ServerPreview,
      properties: { ...spec.components.schemas.ServerPreview.properties, icon_url: { type: 'string' } },
    }
    const preview = {
      object: 'server#preview',
      id: 'srv_x',
      name: 'n',
      description: null,
      type: 'public',
      created_at: 'a',
      updated_at: 'b',
    }
    expect(differences(preview, withExtraField)).toEqual(['$: missing icon_url; extra -'])
  })
})
