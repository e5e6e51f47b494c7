import { beforeAll, describe, expect, it } from 'vitest'
import { eventIds, fixture, sessionRuns, type Fixture } from './helpers.js'

// Walks whole sessions page by page, in both orders, with every filter, and checks the walk
// against the database: every event exactly once, in order, with the flags right at both ends.

let f: Fixture
let sessionId: string
let runs: Awaited<ReturnType<typeof sessionRuns>>

beforeAll(async () => {
  f = await fixture({ sessions: 2, events: 137 })
  sessionId = f.a.sessions[1]!.id
  runs = await sessionRuns(f.store, sessionId)
})

interface Page {
  items: { id: string; type: string; server_run: { id: string; server_session: { id: string } } }[]
  pagination: {
    has_more_before: boolean
    has_more_after: boolean
    next_cursor: string | null
    previous_cursor: string | null
  }
}

async function page(query: string): Promise<Page> {
  const res = await f.get(`/sessions/${sessionId}/events?${query}`)
  expect(res.status, query).toBe(200)
  return (await res.json()) as Page
}

/** Follows next_cursor from the first page to the last, checking the flags on the way. */
async function walk(filter: string, order: 'asc' | 'desc', limit: number) {
  const seen: string[] = []
  let query = `${filter}&order=${order}&limit=${limit}`
  let first = true
  for (let guard = 0; guard < 1000; guard++) {
    const p = await page(query)
    expect(p.items.length).toBeLessThanOrEqual(limit)
    expect(p.pagination.has_more_before).toBe(!first)
    expect(p.pagination.previous_cursor === null).toBe(first)
    seen.push(...p.items.map((i) => i.id))
    if (!p.pagination.has_more_after) {
      expect(p.pagination.next_cursor).toBeNull()
      return seen
    }
    expect(p.items).toHaveLength(limit)
    query = `${filter}&order=${order}&limit=${limit}&cursor=${p.pagination.next_cursor}`
    first = false
  }
  throw new Error('the walk did not end')
}

/** Follows previous_cursor from the last page back to the first. */
async function walkBack(filter: string, order: 'asc' | 'desc', limit: number, expected: string[]) {
  const pages: string[][] = []
  // The last page: `before` nothing is not a thing, so start after the last-but-`limit` item.
  const startAfter = expected.at(-limit - 1)
  let query = `${filter}&order=${order}&limit=${limit}${startAfter ? `&after=${startAfter}` : ''}`
  for (let guard = 0; guard < 1000; guard++) {
    const p = await page(query)
    pages.unshift(p.items.map((i) => i.id))
    if (!p.pagination.has_more_before) {
      expect(p.pagination.previous_cursor).toBeNull()
      return pages.flat()
    }
    expect(p.pagination.has_more_after || pages.length === 1).toBe(true)
    query = `${filter}&order=${order}&limit=${limit}&cursor=${p.pagination.previous_cursor}`
  }
  throw new Error('the walk did not end')
}

/** The fixture's runs that the filters name (known once the fixture is made). */
const picked = () => ({
  failedRun: runs.find((r) => r.status === 'failed')!.id,
  twoRuns: runs.slice(0, 2).map((r) => r.id),
  serverSession: runs[0]!.server_session_id,
})

/** The filters by name: each its query and the filters of the events it should meet. */
const FILTERS: Record<string, () => { query: string; expected: Parameters<typeof eventIds>[2] }> = {
  'no filter': () => ({ query: '', expected: {} }),
  'type=server_logs': () => ({ query: 'type=server_logs', expected: { type: ['server_logs'] } }),
  'type=server_run_error': () => ({ query: 'type=server_run_error', expected: { type: ['server_run_error'] } }),
  'one server_run_id': () => {
    const { failedRun } = picked()
    return { query: `server_run_id=${failedRun}`, expected: { serverRunIds: [failedRun] } }
  },
  'two server_run_id, repeated keys': () => {
    const { twoRuns } = picked()
    return { query: twoRuns.map((id) => `server_run_id=${id}`).join('&'), expected: { serverRunIds: twoRuns } }
  },
  'two server_run_id, indexed keys (Metorial SDK)': () => {
    const { twoRuns } = picked()
    return { query: twoRuns.map((id, i) => `server_run_id[${i}]=${id}`).join('&'), expected: { serverRunIds: twoRuns } }
  },
  'indexed keys, URL-encoded brackets': () => {
    const { twoRuns } = picked()
    return {
      query: twoRuns.map((id, i) => `server_run_id%5B${i}%5D=${id}`).join('&'),
      expected: { serverRunIds: twoRuns },
    }
  },
  server_session_id: () => {
    const { serverSession } = picked()
    return { query: `server_session_id=${serverSession}`, expected: { serverSessionIds: [serverSession] } }
  },
  'type and server_run_id together': () => {
    const { failedRun } = picked()
    return {
      query: `type=server_logs&server_run_id=${failedRun}`,
      expected: { type: ['server_logs'], serverRunIds: [failedRun] },
    }
  },
}
const filters = () => Object.entries(FILTERS).map(([name, make]) => ({ name, ...make() }))

describe('pagination walks', () => {
  it('the fixture has several runs, an error event and more than one page', async () => {
    expect(runs.length).toBeGreaterThanOrEqual(3)
    expect((await eventIds(f.store, sessionId)).length).toBeGreaterThan(137)
  })

  for (const order of ['asc', 'desc'] as const) {
    // One test a filter: a walk at limit 1 is a request an event, and nine of them in one test
    // took up to 21 s of its 30 in `npm run stress` on PostgreSQL.
    for (const limit of [1, 7, 20, 100]) {
      it.for(Object.keys(FILTERS))(`forward, ${order}, limit ${limit}, %s: each event once, in order`, async (name) => {
        const filter = { name, ...FILTERS[name]!() }
        const expected = await eventIds(f.store, sessionId, filter.expected)
        if (order === 'desc') expected.reverse()
        expect(expected.length, filter.name).toBeGreaterThan(0)
        expect(await walk(filter.query, order, limit), `${filter.name}`).toEqual(expected)
      })
    }
    it(`backward with previous_cursor, ${order}: each event once, in order`, async () => {
      for (const filter of filters()) {
        const expected = await eventIds(f.store, sessionId, filter.expected)
        if (order === 'desc') expected.reverse()
        expect(await walkBack(filter.query, order, 9, expected), filter.name).toEqual(expected)
      }
    })
  }

  it('after and before position the page in the requested order', async () => {
    const all = await eventIds(f.store, sessionId)
    const mid = all[50]!
    const after = await page(`after=${mid}&limit=3`)
    expect(after.items.map((i) => i.id)).toEqual(all.slice(51, 54))
    expect(after.pagination).toMatchObject({ has_more_before: true, has_more_after: true })
    const before = await page(`before=${mid}&limit=3`)
    expect(before.items.map((i) => i.id)).toEqual(all.slice(47, 50))
    const afterDesc = await page(`after=${mid}&limit=3&order=desc`)
    expect(afterDesc.items.map((i) => i.id)).toEqual([all[49], all[48], all[47]])
    const beforeDesc = await page(`before=${mid}&limit=3&order=desc`)
    expect(beforeDesc.items.map((i) => i.id)).toEqual([all[53], all[52], all[51]])
  })

  it('sets the flags right at both ends', async () => {
    const all = await eventIds(f.store, sessionId)
    const firstPage = await page('limit=5')
    expect(firstPage.pagination).toMatchObject({ has_more_before: false, has_more_after: true, previous_cursor: null })
    const lastPage = await page(`after=${all.at(-6)}&limit=5`)
    expect(lastPage.items).toHaveLength(5)
    expect(lastPage.pagination).toMatchObject({ has_more_before: true, has_more_after: false, next_cursor: null })
    const pastTheEnd = await page(`after=${all.at(-1)}`)
    expect(pastTheEnd.items).toEqual([])
    expect(pastTheEnd.pagination).toMatchObject({ has_more_before: true, has_more_after: false })
    const beforeTheStart = await page(`before=${all[0]}`)
    expect(beforeTheStart.items).toEqual([])
    expect(beforeTheStart.pagination).toMatchObject({ has_more_before: false, has_more_after: true })
    const whole = await page('limit=100&type=server_run_error')
    expect(whole.pagination).toMatchObject({
      has_more_before: false,
      has_more_after: false,
      next_cursor: null,
      previous_cursor: null,
    })
  })

  it('a page of a session with no events is empty with both flags false', async () => {
    const { id } = await f.store.writer.createSession({ instanceId: f.a.id })
    const res = await f.get(`/sessions/${id}/events`)
    expect(await res.json()).toEqual({
      __typename: 'list',
      items: [],
      pagination: { has_more_before: false, has_more_after: false, next_cursor: null, previous_cursor: null },
    })
  })

  it('never shows another session’s events, even through a cursor made from them', async () => {
    const [foreign] = await eventIds(f.store, f.a.sessions[0]!.id)
    const p = await page(`after=${foreign}&limit=100`)
    for (const item of p.items) expect(item.id).not.toBe(foreign)
    const own = new Set(await eventIds(f.store, sessionId))
    for (const item of p.items) expect(own.has(item.id)).toBe(true)
  })
})
