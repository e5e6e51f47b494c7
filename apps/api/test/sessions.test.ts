import { beforeAll, describe, expect, it } from 'vitest'
import { encodeCursor } from '../src/cursor.js'
import { fixture, type Fixture } from './helpers.js'

// listSessions: the key's instance's sessions, newest first, in Metorial's list shape, walked
// with `limit`, `after`/`before` and the cursors it gives, narrowed by `status`.

let f: Fixture
/** Instance A's sessions, newest first, straight from the database. */
let newestFirst: string[]

const body = async (res: Response) => (await res.json()) as any
const list = (query = '', key?: string | null) => f.get(`/sessions${query}`, key)
const idsOf = (page: { items: { id: string }[] }) => page.items.map((s) => s.id)

beforeAll(async () => {
  f = await fixture({ sessions: 5, events: 2 })
  newestFirst = await sessionIds(f.a.id)
})

async function sessionIds(instanceId: string, status?: 'active' | 'deleted'): Promise<string[]> {
  let q = f.store.db.selectFrom('sessions').select('id').where('instance_id', '=', instanceId)
  if (status) q = q.where('status', '=', status)
  return (await q.orderBy('id', 'desc').execute()).map((r) => r.id)
}

describe('listSessions', () => {
  it("answers the instance's sessions, newest first, in Metorial's list shape", async () => {
    const res = await list()
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const page = await body(res)
    expect(page.__typename).toBe('list')
    expect(idsOf(page)).toEqual(newestFirst)
    expect(page.items[0]).toMatchObject({ object: 'session', status: 'active', metadata: expect.any(Object) })
    expect(page.pagination).toEqual({
      has_more_before: false,
      has_more_after: false,
      next_cursor: null,
      previous_cursor: null,
    })
    // Nothing of the other instance.
    const others = new Set(f.b.sessions.map((s) => s.id))
    expect(idsOf(page).some((id) => others.has(id))).toBe(false)
  })

  it('walks every page with next_cursor and back with previous_cursor', async () => {
    const forward: string[] = []
    let query = '?limit=2'
    const cursors: (string | null)[] = []
    for (;;) {
      const page = await body(await list(query))
      forward.push(...idsOf(page))
      cursors.push(page.pagination.previous_cursor)
      if (!page.pagination.has_more_after) break
      query = `?limit=2&cursor=${page.pagination.next_cursor}`
    }
    expect(forward).toEqual(newestFirst)
    expect(cursors[0]).toBeNull()

    const last = await body(await list(`?limit=2&after=${newestFirst.at(-3)}`))
    expect(idsOf(last)).toEqual(newestFirst.slice(-2))
    expect(last.pagination).toMatchObject({ has_more_before: true, has_more_after: false, next_cursor: null })
    const back = await body(await list(`?limit=2&cursor=${last.pagination.previous_cursor}`))
    expect(idsOf(back)).toEqual(newestFirst.slice(-4, -2))
    expect(back.pagination).toMatchObject({ has_more_before: true, has_more_after: true })
  })

  it('takes after and before as session ids: after walks to older sessions, before to newer ones', async () => {
    const after = await body(await list(`?limit=2&after=${newestFirst[0]}`))
    expect(idsOf(after)).toEqual(newestFirst.slice(1, 3))
    expect(after.pagination.has_more_before).toBe(true)
    const before = await body(await list(`?limit=10&before=${newestFirst.at(-1)}`))
    expect(idsOf(before)).toEqual(newestFirst.slice(0, -1))
    expect(before.pagination).toMatchObject({ has_more_before: false, has_more_after: true })
    const none = await body(await list(`?before=${newestFirst[0]}`))
    expect(none.items).toEqual([])
    expect(none.pagination).toMatchObject({ has_more_before: false, has_more_after: true })
    // An empty page still leads back to the sessions.
    const again = await body(await list(`?cursor=${none.pagination.next_cursor}`))
    expect(idsOf(again)).toEqual(newestFirst)
  })

  it('shows a session created a moment ago first (a page is never kept)', async () => {
    await body(await list())
    const created = await f.app.request('/sessions', {
      method: 'POST',
      headers: { Authorization: `Bearer ${f.a.secret_key}` },
    })
    expect(created.status).toBe(201)
    const session = await body(created)
    const page = await body(await list('?limit=1'))
    expect(idsOf(page)).toEqual([session.id])
    newestFirst = await sessionIds(f.a.id)
  })

  it('filters by status, one value, repeated keys or indexed keys', async () => {
    const gone = newestFirst[1]!
    await f.store.db.updateTable('sessions').set({ status: 'deleted' }).where('id', '=', gone).execute()
    const active = await sessionIds(f.a.id, 'active')
    expect(idsOf(await body(await list('?status=active')))).toEqual(active)
    expect(idsOf(await body(await list('?status=deleted')))).toEqual([gone])
    expect(idsOf(await body(await list('?status=active&status=deleted')))).toEqual(newestFirst)
    expect(idsOf(await body(await list('?status[0]=deleted')))).toEqual([gone])
    const paged = await body(await list('?status=active&limit=1'))
    expect(idsOf(paged)).toEqual(active.slice(0, 1))
    const next = await body(await list(`?status=active&limit=10&cursor=${paged.pagination.next_cursor}`))
    expect(idsOf(next)).toEqual(active.slice(1))
  })

  it('refuses what it cannot take with a 400 in the API error shape', async () => {
    const cases: [string, string][] = [
      ['?limit=0', 'invalid_data'],
      ['?limit=101', 'invalid_data'],
      ['?status=gone', 'invalid_data'],
      ['?after=sev_0m5q3k2x1Tz8KqPw3vXyA9', 'invalid_data'],
      [`?after=${newestFirst[0]}&before=${newestFirst[1]}`, 'bad_request'],
      [`?cursor=${encodeCursor({ direction: 'after', id: newestFirst[0]! })}&after=${newestFirst[0]}`, 'bad_request'],
      // A cursor of another list (of events) is not one of this list's.
      [`?cursor=${encodeCursor({ direction: 'after', id: 'sev_0m5q3k2x1Tz8KqPw3vXyA9' })}`, 'bad_request'],
      ['?cursor=cur_abc', 'bad_request'],
    ]
    for (const [query, code] of cases) {
      const res = await list(query)
      expect(res.status, query).toBe(400)
      expect(await body(res), query).toMatchObject({ __typename: 'error', ok: false, status: 400, code })
    }
  })

  it('401s without a key and 403s a publishable key', async () => {
    expect((await list('', null)).status).toBe(401)
    const res = await list('', f.a.publishable_key)
    expect(res.status).toBe(403)
    expect(await body(res)).toMatchObject({ code: 'forbidden' })
  })
})
