import { describe, expect, it } from 'vitest'
import { createSpecValidator } from '../index.js'

const validator = createSpecValidator()
const { spec } = validator
const validate = (pointer: string, value: unknown) => validator.validate(pointer, value)

type Case = { where: string; pointer: string; value: unknown }

/** Resolves a local `$ref` (`#/components/…`) to the object it points at. */
function deref<T>(node: T): T {
  const ref = (node as { $ref?: string })?.$ref
  if (!ref) return node
  return ref
    .slice(2)
    .split('/')
    .reduce((at: any, key) => at[key], spec) as T
}

/** Every example of the spec, paired with the schema it must satisfy. */
function collectExamples(): Case[] {
  const cases: Case[] = []
  const fromMedia = (where: string, media: any, pointer: string) => {
    for (const [name, example] of Object.entries<any>(media.examples ?? {})) {
      cases.push({ where: `${where} example "${name}"`, pointer, value: deref(example).value })
    }
    if ('example' in media) cases.push({ where: `${where} example`, pointer, value: media.example })
  }
  const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1')
  for (const [path, item] of Object.entries<any>(spec.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      for (const [type, media] of Object.entries<any>(op.requestBody?.content ?? {})) {
        const pointer =
          media.schema.$ref ?? `#/paths/${escape(path)}/${method}/requestBody/content/${escape(type)}/schema`
        fromMedia(`${method.toUpperCase()} ${path} request`, media, pointer)
      }
      for (const [status, resp] of Object.entries<any>(op.responses ?? {})) {
        const response = deref(resp)
        for (const [type, media] of Object.entries<any>(response.content ?? {})) {
          const pointer =
            media.schema.$ref ?? `#/paths/${escape(path)}/${method}/responses/${status}/content/${escape(type)}/schema`
          fromMedia(`${method.toUpperCase()} ${path} ${status}`, media, pointer)
        }
      }
    }
  }
  for (const [name, schema] of Object.entries<any>(spec.components.schemas)) {
    for (const [i, value] of (schema.examples ?? []).entries()) {
      cases.push({ where: `schema ${name} examples[${i}]`, pointer: `#/components/schemas/${name}`, value })
    }
  }
  return cases
}

const cases = collectExamples()

describe('every example in the spec validates against its schema', () => {
  it('finds the examples (a page, both kinds of event, every status, every request body)', () => {
    expect(cases.length).toBeGreaterThanOrEqual(40)
    const statuses = new Set(cases.map((c) => c.where.split(' ')[2]))
    for (const s of ['200', '201', '400', '401', '403', '404', '409', '413', '422', '429', '500', '503'])
      expect(statuses).toContain(s)
    for (const [path, item] of Object.entries<any>(spec.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        if (op.requestBody)
          expect(cases.map((c) => c.where)).toContainEqual(
            expect.stringMatching(`^${method.toUpperCase()} ${path} request example`),
          )
      }
    }
  })

  it.each(cases.map((c) => [c.where, c] as const))('%s', (_where, c) => {
    expect(validate(c.pointer, c.value)).toEqual([])
  })

  it('rejects a value that breaks its schema, so the check can fail', () => {
    const event = cases.find((c) => c.pointer === '#/components/schemas/SessionEvent')!.value as any
    expect(validate('#/components/schemas/SessionEvent', { ...event, type: 'nope' })).not.toEqual([])
    expect(validate('#/components/schemas/SessionEvent', { ...event, created_at: 'yesterday' })).not.toEqual([])
    expect(validate('#/components/schemas/SessionEvent', { ...event, id: 'sev_short' })).not.toEqual([])
  })

  it('holds the write bodies to their limits', () => {
    const line = (text: string) => ({ type: 'stdout', line: text })
    const append = (log_lines: unknown[]) =>
      validate('#/components/schemas/SessionEventCreate', { server_run_id: 'srr_0m5q3k1f8Ab3Cd4Ef5Gh6I', log_lines })
    expect(append([line('x'.repeat(65_536))])).toEqual([])
    expect(append([line('x'.repeat(65_537))])).not.toEqual([])
    expect(append([])).not.toEqual([])
    expect(append(Array.from({ length: 1001 }, () => line('x')))).not.toEqual([])
    expect(validate('#/components/schemas/ServerRunStart', { type: 'hosted' })).not.toEqual([])
    expect(validate('#/components/schemas/ServerRunStop', { status: 'active' })).not.toEqual([])
    expect(validate('#/components/schemas/SessionCreate', {})).toEqual([])
  })
})

describe("the stream's example holds to its messages (x-sse-events) and its keep-alive (x-sse-keep-alive)", () => {
  const media = spec.paths['/sessions/{sessionId}/events/stream'].get.responses['200'].content['text/event-stream']
  const events: Record<string, { name: string; data?: { $ref: string } }> = media['x-sse-events']
  const byName = new Map(Object.values(events).map((e) => [e.name, e]))
  const examples = Object.entries<any>(media.examples)

  it('names each message once, and gives a data schema that exists', () => {
    expect(byName.size).toBe(Object.keys(events).length)
    for (const e of byName.values()) if (e.data) expect(deref(e.data)).toBeDefined()
  })

  it.each(examples)(
    'example "%s": every message is one of them, its data valid; every one of them is shown',
    (_name, example) => {
      const shown = new Set<string>()
      for (const block of (example.value as string).split('\n\n')) {
        if (block.startsWith(':')) expect(block.trimEnd()).toBe(media['x-sse-keep-alive'].line)
        const event = /^event: (.*)$/m.exec(block)?.[1]
        if (event === undefined) continue // retry:, a comment
        const described = byName.get(event)
        expect(described, `event: ${event}`).toBeDefined()
        shown.add(event)
        const data = /^data:(?: (.*))?$/m.exec(block)?.[1]
        if (described!.data) expect(validate(described!.data.$ref, JSON.parse(data!))).toEqual([])
        else expect(data ?? '').toBe('')
      }
      expect([...shown].sort()).toEqual([...byName.keys()].sort())
    },
  )
})
