import { CompiledQuery, sql } from 'kysely'
import { beforeAll, describe, expect, it } from 'vitest'
import type { SqlStore } from '../src/store/sql-store.js'
import type { ListEventsQuery } from '../src/store/types.js'
import { backend, openTestStore } from './backend.js'

// Listing must stay a keyset scan over an index however large the events table grows. With
// 100,000 events loaded and the statistics up to date, every query that a listing runs (listEventIds)
// (each filter, both orders, from the start and from a position either way) is EXPLAINed on
// PostgreSQL, and the plan must reach session_events through an index, never a Seq Scan.
// session_events is partitioned by range of id, a day a partition (migration 8): the events are
// spread over the first partition (a table from before migration 8) and three days, and a listing
// must read the partitions in order (an ordered Append, no Merge Append), only those on its side
// of its position.

const EVENTS = 100_000
const SESSIONS = 40
/** The first partition's (ten days ago: it holds everything before today) and three days from today. */
const DAYS = [-10, 0, 1, 2]
const DAY_MS = 86_400_000

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  /** EXPLAIN ANALYZE: how many times the node ran (0: never). */
  'Actual Loops'?: number
  Plans?: PlanNode[]
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)]
}

let store: SqlStore
let big: { sessionId: string; runIds: string[]; serverSessionIds: string[]; middle: string }
let small: typeof big

async function sessionShape(sessionId: string): Promise<typeof big> {
  const runs = await store.db
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .select(['r.id', 'r.server_session_id'])
    .where('ss.session_id', '=', sessionId)
    .orderBy('r.id')
    .execute()
  const { n } = await store.db
    .selectFrom('session_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('session_id', '=', sessionId)
    .executeTakeFirstOrThrow()
  const middle = await store.db
    .selectFrom('session_events')
    .select('id')
    .where('session_id', '=', sessionId)
    .orderBy('id')
    .offset(Math.floor(Number(n) / 2))
    .limit(1)
    .executeTakeFirstOrThrow()
  return {
    sessionId,
    runIds: runs.map((r) => r.id),
    serverSessionIds: [...new Set(runs.map((r) => r.server_session_id))],
    middle: middle.id,
  }
}

beforeAll(async () => {
  store = await openTestStore()
  const started = Date.now()
  // The shape through the store: sessions with two server sessions of two runs each, and a
  // failed run per session (a server_run_error event).
  const { id: instanceId } = await store.admin.createInstance({ name: 'plans' })
  const { id: serverId } = await store.seeding.createServer({ name: 'S', description: null, type: 'public' })
  const { id: versionId } = await store.seeding.createServerVersion({ serverId })
  const { id: deploymentId } = await store.seeding.createServerDeployment({
    instanceId,
    serverId,
    name: null,
    description: null,
  })
  const sessionIds: string[] = []
  for (let s = 0; s < SESSIONS; s++) {
    const { id: sessionId } = await store.writer.createSession({ instanceId })
    sessionIds.push(sessionId)
    for (let k = 0; k < 2; k++) {
      const { id: serverSessionId } = await store.seeding.createServerSession({
        sessionId,
        serverDeploymentId: deploymentId,
        mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'streamable_http', client: null, server: null },
      })
      for (let r = 0; r < 2; r++)
        await store.seeding.createServerRun({ serverSessionId, serverVersionId: versionId, type: 'hosted' })
    }
  }
  // The events in one statement: half of them in the first session, the rest spread over all,
  // ids in creation order as the real ones are (same length, time first), in four partitions: the
  // first one and three days from today's, which every start makes ahead (retention-partitions.ts).
  const shaped = Date.now()
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS
  const times = DAYS.map((d) => today + d * DAY_MS + 3_600_000)
  const days = times.map((t) => t.toString(36).padStart(9, '0'))
  const isoTimes = times.map((t) => new Date(t).toISOString())
  const logLines = JSON.stringify([
    { type: 'stdout', line: 'tools/call search_issues {"query":"is:open label:bug","per_page":20}' },
    { type: 'stderr', line: 'warn: slow response from upstream (2.4 s)' },
  ])
  await sql`
    insert into session_events (id, session_id, server_run_id, server_session_id, type, server_run_error_id, log_lines_json, created_at)
    select 'sev_' || (${days}::text[])[1 + g * ${DAYS.length} / ${EVENTS}] || lpad(to_hex(g), 7, '0') || substr(md5(g::text), 1, 6),
           runs.session_ids[pick.k], runs.ids[pick.k], runs.server_session_ids[pick.k], 'server_logs', null, ${logLines},
           (${isoTimes}::text[])[1 + g * ${DAYS.length} / ${EVENTS}]
    from (
      select array_agg(r.id order by r.id) as ids, array_agg(r.server_session_id order by r.id) as server_session_ids,
             array_agg(ss.session_id order by r.id) as session_ids, count(*)::int as n
      from server_runs r join server_sessions ss on ss.id = r.server_session_id
    ) as runs
    cross join generate_series(0, ${EVENTS - 1}) as g
    cross join lateral (select 1 + case when g % 2 = 0 then (g / 2) % 4 else g % runs.n end as k) as pick`.execute(
    store.db,
  )
  const inserted = Date.now()
  for (const sessionId of sessionIds) {
    const [run] = await store.db
      .selectFrom('server_runs as r')
      .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
      .select('r.id')
      .where('ss.session_id', '=', sessionId)
      .limit(1)
      .execute()
    await store.seeding.recordServerRunError({ serverRunId: run!.id, code: 'process_exited', message: 'It exited.' })
  }
  await sql`analyze`.execute(store.db)

  big = await sessionShape(sessionIds[0]!)
  small = await sessionShape(sessionIds[SESSIONS - 1]!)
  const { rows } = await sql<{ events: number; table: number; indexes: number; total: number }>`
    select (select count(*) from session_events)::int as events,
           sum(pg_table_size(relid)) as table,
           sum(pg_indexes_size(relid)) as indexes,
           sum(pg_total_relation_size(relid)) as total
      from pg_partition_tree('session_events') where isleaf`.execute(store.db)
  const m = rows[0]!
  console.log(
    `query-plans (${backend}): ${m.events} events loaded and analysed in ${Date.now() - started} ms ` +
      `(sessions and runs ${shaped - started} ms, ${EVENTS} events in one INSERT ${inserted - shaped} ms); session_events: ` +
      `${Math.round(Number(m.table) / m.events)} B/event in the table (with TOAST), ${Math.round(Number(m.indexes) / m.events)} B/event in its 5 indexes, ` +
      `${Math.round(Number(m.total) / m.events)} B/event in all`,
  )
})

const filters = (s: typeof big): { name: string; filter: Partial<ListEventsQuery> }[] => [
  { name: 'no filter', filter: {} },
  { name: 'type=server_logs', filter: { types: ['server_logs'] } },
  { name: 'type=server_run_error', filter: { types: ['server_run_error'] } },
  { name: 'one server_run_id', filter: { serverRunIds: [s.runIds[1]!] } },
  { name: 'two server_run_id', filter: { serverRunIds: s.runIds.slice(0, 2) } },
  { name: 'one server_session_id', filter: { serverSessionIds: [s.serverSessionIds[0]!] } },
  { name: 'two server_session_id', filter: { serverSessionIds: s.serverSessionIds.slice(0, 2) } },
]

/** The indexes of the partitions under a partitioned index. */
async function leavesOf(index: string): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select relid::regclass::text as name from pg_partition_tree(${index}::regclass) where isleaf`.execute(store.db)
  return rows.map((r) => r.name)
}

async function plansOf(query: ListEventsQuery): Promise<PlanNode[]> {
  const plans: PlanNode[] = []
  for (const compiled of store.reader.compileListEventIds(query)) {
    const result = await store.db.executeQuery<{ 'QUERY PLAN': [{ Plan: PlanNode }] | string }>(
      CompiledQuery.raw(`explain (format json) ${compiled.sql}`, [...compiled.parameters]),
    )
    const raw = result.rows[0]!['QUERY PLAN']
    plans.push((typeof raw === 'string' ? JSON.parse(raw) : raw)[0].Plan)
  }
  return plans
}

describe(`listing over ${EVENTS.toLocaleString('en')} events on PostgreSQL (${backend}): EXPLAIN`, () => {
  for (const [size, pick] of [
    ['the big session (half the table)', () => big],
    ['a small session', () => small],
  ] as const) {
    it(`${size}: every filter, both orders, every position — an index, never a Seq Scan on session_events`, async () => {
      const s = pick()
      const used = new Set<string>()
      let checked = 0
      for (const { name, filter } of filters(s)) {
        for (const order of ['asc', 'desc'] as const) {
          for (const position of [
            undefined,
            { direction: 'after' as const, id: s.middle },
            { direction: 'before' as const, id: s.middle },
          ]) {
            const label = `${name}, ${order}, ${position ? `${position.direction} the middle` : 'from the start'}`
            for (const plan of await plansOf({ sessionId: s.sessionId, limit: 20, order, position, ...filter })) {
              const events = nodes(plan).filter((n) => n['Relation Name']?.startsWith('session_events_p'))
              expect(events.length, label).toBeGreaterThan(0)
              for (const node of events) {
                expect(node['Node Type'], `${label}: ${JSON.stringify(plan)}`).toMatch(
                  /^(Index Scan|Index Only Scan|Bitmap Heap Scan)$/,
                )
              }
              // The partitions one after the other, in the order of the scan: never merged.
              expect(
                nodes(plan).map((n) => n['Node Type']),
                label,
              ).not.toContain('Merge Append')
              for (const node of nodes(plan)) if (node['Index Name']) used.add(node['Index Name'])
              checked += 1
            }
          }
        }
      }
      expect(checked).toBeGreaterThanOrEqual(filters(s).length * 2 * 3)
      // A page from a position reads only the partitions on its side of it: the others are
      // pruned when the query is planned.
      const { rows } = await sql<{ partition: string }>`
        select tableoid::regclass::text as partition from session_events where id = ${s.middle}`.execute(store.db)
      const middle = rows[0]!.partition
      for (const [order, direction, side] of [
        ['asc', 'after', 1],
        ['desc', 'before', 1],
        ['asc', 'before', -1],
        ['desc', 'after', -1],
      ] as const) {
        const [page] = await plansOf({
          sessionId: s.sessionId,
          limit: 20,
          order,
          position: { direction, id: s.middle },
        })
        const read = nodes(page!).flatMap((n) => n['Relation Name'] ?? [])
        expect(read, `${order} ${direction}`).toContain(middle)
        for (const partition of read.filter((r) => r.startsWith('session_events_p')))
          expect(Math.sign(partition.localeCompare(middle, 'en')), `${order} ${direction}: ${partition}`).not.toBe(
            -side,
          )
      }
      // The listing indexes are the ones at work, not only the primary key.
      expect([...used].some((i) => i.startsWith('session_events_'))).toBe(true)
      // The error events come from session_events_type, which holds them alone (migration 12).
      const errorIndexes = await leavesOf('session_events_type')
      for (const order of ['asc', 'desc'] as const) {
        const [page] = await plansOf({ sessionId: s.sessionId, limit: 20, order, types: ['server_run_error'] })
        const read = nodes(page!).flatMap((n) => n['Index Name'] ?? [])
        expect(read.length, order).toBeGreaterThan(0)
        for (const index of read) expect(errorIndexes, `${order}: ${index}`).toContain(index)
      }
    })
  }

  it('session_events_type holds the error events alone: a few pages, not an entry for each of 100,000 events', async () => {
    const { rows } = await sql<{ bytes: string; entries: number }>`
      select (select sum(pg_relation_size(relid)) from pg_partition_tree('session_events_type') where isleaf) as bytes,
             (select count(*)::int from session_events where type <> 'server_logs') as entries`.execute(store.db)
    const { bytes, entries } = rows[0]!
    expect(entries).toBe(SESSIONS)
    // Each partition's index is its metapage and one leaf: 16 KB, whatever the table holds.
    const partitions = (await leavesOf('session_events_type')).length
    expect(Number(bytes)).toBeLessThanOrEqual(partitions * 16 * 1024)
  })

  it("a filter naming another session's run or server session reads none of its events (migration 14)", async () => {
    // The filter indexes begin with the run or server session: the small session filtered by the
    // big session's run would otherwise read that run's events one by one to pass over them all.
    for (const filter of [
      { serverRunIds: [big.runIds[0]!] },
      { serverSessionIds: [big.serverSessionIds[0]!] },
    ] satisfies Partial<ListEventsQuery>[]) {
      const [compiled] = store.reader.compileListEventIds({
        sessionId: small.sessionId,
        limit: 20,
        order: 'asc',
        ...filter,
      })
      const result = await store.db.executeQuery<{ 'QUERY PLAN': [{ Plan: PlanNode }] | string }>(
        CompiledQuery.raw(`explain (analyze, format json) ${compiled!.sql}`, [...compiled!.parameters]),
      )
      const raw = result.rows[0]!['QUERY PLAN']
      const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw)[0].Plan as PlanNode
      const scans = nodes(plan).filter((n) => n['Relation Name']?.startsWith('session_events_p'))
      const label = `${JSON.stringify(filter)}: ${JSON.stringify(plan)}`
      expect(scans.length, label).toBeGreaterThan(0)
      for (const scan of scans) expect(scan['Actual Loops'], label).toBe(0)
      expect(
        (await store.reader.listEventIds({ sessionId: small.sessionId, limit: 20, order: 'asc', ...filter })).ids,
      ).toEqual([])
    }
  })

  it('pages through the big session with a filter as fast as from its start (a keyset, not an offset)', async () => {
    // A page read as the list handler reads it: its ids, their events, the runs they show.
    const readPage = async (query: ListEventsQuery) => {
      const { ids } = await store.reader.listEventIds(query)
      const events = await store.reader.sessionEvents(query.sessionId, ids)
      expect(events).toHaveLength(query.limit)
      await store.reader.serverRuns([...new Set(events.flatMap((e) => e.event.server_run_id ?? []))])
    }
    const time = async (query: ListEventsQuery) => {
      const t = performance.now()
      for (let i = 0; i < 20; i++) await readPage(query)
      return (performance.now() - t) / 20
    }
    const first = await time({ sessionId: big.sessionId, limit: 50, order: 'asc', serverRunIds: [big.runIds[0]!] })
    const deep = await time({
      sessionId: big.sessionId,
      limit: 50,
      order: 'asc',
      serverRunIds: [big.runIds[0]!],
      position: { direction: 'after', id: big.middle },
    })
    console.log(
      `query-plans (${backend}): a page of 50 from the start ${first.toFixed(2)} ms, from the middle of ${EVENTS / 2} events ${deep.toFixed(2)} ms`,
    )
    expect(deep).toBeLessThan(first * 5 + 5)
  })
})
