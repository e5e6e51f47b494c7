import { seed, type SeedSummary } from '@session-events/api'
import type { components } from '@session-events/client'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validWire } from './support/derive.js'
import { fuzz, fuzzTimeout } from './support/fuzz.js'
import { checkResponse, formatQuery, operation, operations, validator, type WireValue } from './support/spec.js'
import { inProcess, overHttp, type Transport } from './support/transport.js'
import { createWorld, pathOf, sessionRuns, type World } from './support/world.js'

// Pagination under writes: while a writer appends events to a session, a full walk through its
// pages, following next_cursor in either order (and back again with previous_cursor), returns
// every event that existed when the walk began exactly once, in order. Events written during the
// walk may or may not appear, but never twice. Writes are dated now, ahead of the clock, and in
// the past (late ingestion), through the store's writer and, over HTTP, through the API.
//
// Events dated in the past used to be backfilled among the existing ones (their ids came from
// their time). The writer now gives each new event of a session an id above the session's last
// one, under the session's lock, in commit order (apps/api/src/store/event-log.ts): an event dated
// in the past lands at the end like any other, and no event can appear behind a walk's position
// any more. The case of events backfilled among the existing ones is gone with it; what the
// walks prove is the same, and past-dated writes stay in the mix as writes at the end.

type SessionEventList = components['schemas']['SessionEventList']
type ServerRunStart = components['schemas']['ServerRunStart']
type SessionEventCreate = components['schemas']['SessionEventCreate']

// The operation the spec pages: the one with a cursor, an order and a limit.
const list = operations.find((op) =>
  ['cursor', 'order', 'limit'].every((n) => op.parameters.some((p) => p.in === 'query' && p.name === n)),
)!
const parameter = (name: string) => list.parameters.find((p) => p.in === 'query' && p.name === name)!

let world: World

/** The first and the last event id there can be: `before` one of them is the end of the list. */
const LOWEST_EVENT_ID = `sev_${'0'.repeat(22)}`
const HIGHEST_EVENT_ID = `sev_${'z'.repeat(22)}`

beforeAll(async () => {
  world = await createWorld({ sessions: 1, events: 1 })
})

afterAll(async () => {
  await world?.store.close()
})

interface Tenant {
  key: string
  sessionId: string
  runs: { id: string; server_session_id: string }[]
  /** The span of time the seeded events cover. */
  from: number
  to: number
}

/** A tenant of its own for each run: one instance, one session with `events` events. */
async function tenant(events: number): Promise<Tenant> {
  const to = Date.now()
  const summary: SeedSummary = await seed(world.store, { instances: 1, sessions: 1, events, now: new Date(to) })
  const instance = summary.instances[0]!
  const sessionId = instance.sessions[0]!.id
  return {
    key: instance.secret_key,
    sessionId,
    runs: await sessionRuns(world.store, sessionId),
    from: to - (events + 20) * 250,
    to,
  }
}

async function idsOf(t: Tenant, filter: Record<string, WireValue | undefined>): Promise<string[]> {
  let q = world.store.db.selectFrom('session_events').select('id').where('session_id', '=', t.sessionId)
  const types = [filter.type ?? []].flat() as ('server_logs' | 'server_run_error')[]
  const runs = [filter.server_run_id ?? []].flat()
  if (types.length > 0) q = q.where('type', 'in', types)
  if (runs.length > 0) q = q.where('server_run_id', 'in', runs)
  return (await q.orderBy('id').execute()).map((r) => r.id)
}

interface Batch {
  count: number
  /** When the new events are dated: now, in the past (they land at the end all the same), or ahead of the clock. */
  when: 'now' | 'past' | 'future'
  /** Also end a run with an error (a server_run_error event), or change a run. */
  also: 'nothing' | 'error' | 'run-update'
  pick: number
}

const batch: fc.Arbitrary<Batch> = fc.record({
  count: fc.integer({ min: 0, max: 6 }),
  when: fc.constantFrom('now', 'past', 'future'),
  also: fc.constantFrom('nothing', 'nothing', 'error', 'run-update'),
  pick: fc.nat(),
})

/** Writes one batch; returns nothing, the walk finds out from the database what exists. */
async function write(t: Tenant, b: Batch): Promise<void> {
  const run = t.runs[b.pick % t.runs.length]!
  const at = (i: number) => {
    if (b.when === 'now') return new Date()
    if (b.when === 'future') return new Date(Date.now() + 60_000 + i)
    return new Date(t.from + ((b.pick * 7919 + i * 104_729) % Math.max(1, t.to - t.from)))
  }
  if (b.count > 0) {
    await world.store.seeding.appendLogEvents(
      Array.from({ length: b.count }, (_, i) => ({
        serverRunId: run.id,
        lines: [{ type: 'stdout' as const, line: `written during the walk ${i}` }],
        at: at(i),
      })),
    )
  }
  if (b.also === 'error')
    await world.store.seeding.recordServerRunError({
      serverRunId: run.id,
      code: 'process_exited',
      message: 'exited during the walk',
      at: at(b.count),
    })
  if (b.also === 'run-update')
    await world.store.seeding.updateServerRun(run.id, { status: 'completed', stoppedAt: new Date() })
}

async function page(
  transport: Transport,
  app: World['app'],
  t: Tenant,
  query: Record<string, WireValue | undefined>,
): Promise<SessionEventList> {
  const res = await transport.send(app, pathOf(list, { SessionId: t.sessionId }) + formatQuery(query), { key: t.key })
  const checked = await checkResponse(list, res)
  expect(checked.problems).toEqual([])
  expect(checked.status, checked.text.slice(0, 300)).toBe(200)
  return checked.body as SessionEventList
}

interface Walk {
  /** Item ids in the order the walk met them, page after page. */
  seen: string[]
  pages: SessionEventList[]
}

/**
 * Follows `next` (or `previous`) cursors from `first` until none is given, writing the next
 * batch after each page while batches last (a writer that never stops would be chased forever).
 */
async function walk(
  transport: Transport,
  app: World['app'],
  t: Tenant,
  query: Record<string, WireValue | undefined>,
  direction: 'next' | 'previous',
  writes: Batch[],
  first?: SessionEventList,
): Promise<Walk> {
  const pages: SessionEventList[] = []
  let current = first ?? (await page(transport, app, t, query))
  for (;;) {
    pages.push(current)
    const next = writes[pages.length - 1]
    if (next) await write(t, next)
    const cursor = direction === 'next' ? current.pagination.next_cursor : current.pagination.previous_cursor
    if (!cursor) break
    expect(pages.length, 'a walk that does not end').toBeLessThan(2_000)
    current = await page(transport, app, t, { ...query, cursor, after: undefined, before: undefined })
  }
  // Going back, pages come last first: the walk met them in the opposite order.
  const ordered = direction === 'next' ? pages : [...pages].reverse()
  return { seen: ordered.flatMap((p) => p.items.map((e) => e.id)), pages }
}

function expectComplete(walked: Walk, before: string[], after: string[], order: string, what: string) {
  const seen = walked.seen
  const duplicates = seen.filter((id, i) => seen.indexOf(id) !== i)
  expect(duplicates, `${what}: events met twice`).toEqual([])
  const seenSet = new Set(seen)
  expect(
    before.filter((id) => !seenSet.has(id)),
    `${what}: events that existed when the walk began but were not met`,
  ).toEqual([])
  const existing = new Set(after)
  expect(
    seen.filter((id) => !existing.has(id)),
    `${what}: events that do not exist`,
  ).toEqual([])
  const sorted = [...seen].sort()
  expect(seen, `${what}: not in ${order} order`).toEqual(order === 'desc' ? sorted.reverse() : sorted)
}

describe('pagination under writes', () => {
  const orderValues = validWire(parameter('order').schema) as fc.Arbitrary<string>
  const limitSchema = parameter('limit').schema
  // Small pages make long walks: the spec's lower bound up to a few items, and now and then any valid limit.
  const limit = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: limitSchema.minimum, max: limitSchema.minimum + 6 }).map(String) },
    { weight: 1, arbitrary: validWire(limitSchema) as fc.Arbitrary<string> },
  )
  const typeSchema = parameter('type').schema

  it('knows the ends of the list as valid event ids', () => {
    for (const id of [LOWEST_EVENT_ID, HIGHEST_EVENT_ID])
      expect(validator.validate(parameter('before').schemaPointer, id)).toEqual([])
  })

  it(
    'a walk in either order, and back again, meets every event that existed when it began exactly once',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 60 }),
          limit,
          orderValues,
          fc.option(validWire(typeSchema), { nil: undefined, freq: 3 }),
          fc.boolean(),
          fc.array(batch, { minLength: 1, maxLength: 12 }),
          async (events, pageSize, order, type, byRun, writes) => {
            const t = await tenant(events)
            const filter: Record<string, WireValue | undefined> = {
              type,
              server_run_id: byRun ? [t.runs[0]!.id] : undefined,
            }
            const query = { ...filter, limit: pageSize, order }
            const before = await idsOf(t, filter)
            const forward = await walk(inProcess, world.app, t, query, 'next', writes)
            expectComplete(forward, before, await idsOf(t, filter), order, `${order} walk, limit ${pageSize}`)
            expect(forward.pages.at(-1)!.pagination.has_more_after).toBe(false)

            // Back from the end, following previous_cursor, writes still going on.
            const atStart = await idsOf(t, filter)
            const end = await page(inProcess, world.app, t, {
              ...query,
              before: order === 'desc' ? LOWEST_EVENT_ID : HIGHEST_EVENT_ID,
            })
            const backward = await walk(inProcess, world.app, t, query, 'previous', writes, end)
            expectComplete(backward, atStart, await idsOf(t, filter), order, `${order} walk back, limit ${pageSize}`)
          },
        ),
        fuzz(0.1, 20),
      )
    },
    fuzzTimeout(0.1, 400),
  )

  it('a walk over HTTP while writers append concurrently (the store’s and the API’s) meets every event that existed exactly once, in both orders', async () => {
    const http = overHttp()
    const post = async (
      operationId: string,
      entities: object,
      body: ServerRunStart | SessionEventCreate,
      t: Tenant,
    ) => {
      const op = operation(operationId)
      const checked = await checkResponse(
        op,
        await http.send(world.app, pathOf(op, entities), { method: op.method, key: t.key, body: JSON.stringify(body) }),
      )
      expect(checked.problems).toEqual([])
      expect(checked.status, checked.text.slice(0, 300)).toBe(201)
      return checked.body as { id: string }
    }
    try {
      for (const order of ['asc', 'desc']) {
        const t = await tenant(200)
        // A run of its own for the API's writer: the store's writer ends some of the seeded ones.
        const run = await post(
          'startServerRun',
          { SessionId: t.sessionId },
          { type: 'external', server: { name: 'walk-writer' } },
          t,
        )
        const before = await idsOf(t, {})
        let writing = true
        let written = 0
        const writer = (async () => {
          // A bounded writer: one that outpaces the walk forever would be chased forever.
          for (let i = 0; writing && i < 100; i++) {
            if (i % 2 === 0) {
              await write(t, {
                count: 3,
                when: i % 3 === 0 ? 'past' : 'now',
                also: i % 10 === 0 ? 'error' : 'nothing',
                pick: i,
              })
              written += 3
            } else {
              await post(
                'createSessionEvent',
                { SessionId: t.sessionId },
                { server_run_id: run.id, log_lines: [{ type: 'stdout', line: `appended during the walk ${i}` }] },
                t,
              )
              written += 1
            }
            await new Promise((resolve) => setImmediate(resolve))
          }
        })()
        const walked = await walk(http, world.app, t, { limit: '9', order }, 'next', [])
        writing = false
        await writer
        expect(written, 'the writers wrote during the walk').toBeGreaterThan(0)
        expectComplete(walked, before, await idsOf(t, {}), order, `${order} walk over HTTP`)
      }
    } finally {
      await http.close()
    }
  })
})
