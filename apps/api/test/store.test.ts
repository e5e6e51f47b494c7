import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ServerRun } from '@session-events/server-stubs'
import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { idTime, isSessionEventId, newId, nextId } from '../src/ids.js'
import { seed } from '../src/seed.js'
import { hashSecret } from '../src/api-keys.js'
import { CachingReader } from '../src/cached-reader.js'
import type { JsonReader } from '../src/json-reader.js'
import { migrate, migrations } from '../src/store/migrations.js'
import { defaultConfig, parseDatabaseUrl } from '../src/config.js'
import { openStore } from '../src/store/open.js'
import { MAX_SHAPES, PreparedQueries } from '../src/store/prepared.js'
import type { ListEventsQuery } from '../src/store/types.js'
import { asJson, readEvent, readPage } from './store-reads.js'

const dir = mkdtempSync(join(tmpdir(), 'session-events-store-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/**
 * Two connections to one new SQLite file, as two processes would have, and a seeded session.
 * The reading one reads through a CachingReader (the one place runs are kept), and counts the
 * runs it asks its store for.
 */
async function twoConnections(file: string) {
  const url = `sqlite:${join(dir, file)}`
  const readerStore = await openStore(url)
  const writer = await openStore(url)
  const summary = await seed(writer, { sessions: 1, events: 5 })
  const asked = { runs: 0 }
  const inner = asJson(readerStore.reader)
  const counting: JsonReader = {
    findApiKey: (hash) => inner.findApiKey(hash),
    sessionInstance: (id) => inner.sessionInstance(id),
    listSessions: (query) => inner.listSessions(query),
    listEventIds: (query) => inner.listEventIds(query),
    sessionEvents: (sessionId, ids) => inner.sessionEvents(sessionId, ids),
    serverRuns: (ids) => {
      asked.runs += ids.length
      return inner.serverRuns(ids)
    },
    runsVersion: () => inner.runsVersion(),
  }
  const reader = new CachingReader(counting, defaultConfig())
  const close = async () => {
    await writer.close()
    await readerStore.close()
  }
  return { reader, asked, writer, sessionId: summary.instances[0]!.sessions[0]!.id, close }
}

describe('ids', () => {
  it('are <prefix>_<9 base-36 time><13 base-62 random> and sort by creation time', () => {
    const a = newId('sessionEvent', Date.UTC(2025, 6, 20))
    const b = newId('sessionEvent', Date.UTC(2025, 6, 20) + 1)
    expect(a).toMatch(/^sev_[0-9a-z]{9}[0-9A-Za-z]{13}$/)
    expect(a < b).toBe(true)
    expect(idTime(a).toISOString()).toBe('2025-07-20T00:00:00.000Z')
    expect(isSessionEventId(a)).toBe(true)
    expect(isSessionEventId(newId('session', Date.UTC(2025, 6, 20)))).toBe(false)
  })

  // Ids made in one millisecond no longer keep the order they were made in by themselves (ids.ts
  // keeps no state): the writer orders a session's events, each id above the last with nextId
  // (its order is tested in store-contract.test.ts, on every store).
  it('nextId: the smallest id above, of the same kind and time (the random part counted up by one)', () => {
    const time = Date.UTC(2025, 6, 20).toString(36).padStart(9, '0')
    const id = (random: string) => `sev_${time}${random}`
    expect(nextId(id('0000000000000'))).toBe(id('0000000000001'))
    // Base 62 in byte order: 9, then A…Z, then a…z.
    expect(nextId(id('0000000000009'))).toBe(id('000000000000A'))
    expect(nextId(id('000000000000Z'))).toBe(id('000000000000a'))
    // Carries.
    expect(nextId(id('000000000000z'))).toBe(id('0000000000010'))
    expect(nextId(id('aBzzzzzzzzzzz'))).toBe(id('aC00000000000'))
    expect(() => nextId(id('zzzzzzzzzzzzz'))).toThrow(/no id after/)

    const ids = [newId('sessionEvent', Date.UTC(2025, 6, 20))]
    for (let i = 1; i < 1000; i++) ids.push(nextId(ids.at(-1)!))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(1000)
    for (const made of ids) {
      expect(isSessionEventId(made)).toBe(true)
      expect(idTime(made).toISOString()).toBe('2025-07-20T00:00:00.000Z')
    }
    // The kind stays.
    expect(nextId(newId('serverRun'))).toMatch(/^srr_/)
  })
})

describe('DATABASE_URL', () => {
  it('chooses the store', () => {
    expect(parseDatabaseUrl(undefined)).toMatchObject({
      kind: 'sqlite',
      path: expect.stringMatching(/data\/session-events\.db$/),
    })
    expect(parseDatabaseUrl('sqlite::memory:')).toEqual({ kind: 'sqlite', path: ':memory:' })
    expect(parseDatabaseUrl('sqlite:/tmp/x.db')).toEqual({ kind: 'sqlite', path: '/tmp/x.db' })
    expect(parseDatabaseUrl('postgres://u@h:5432/db')).toEqual({ kind: 'postgres', url: 'postgres://u@h:5432/db' })
    expect(() => parseDatabaseUrl('mysql://x')).toThrow(/sqlite: or postgres:/)
    expect(() => parseDatabaseUrl('sqlite:')).toThrow(/needs a path/)
  })
})

describe('the SQLite store', () => {
  it('applies its migrations once, and again on reopen changes nothing', async () => {
    const url = `sqlite:${join(dir, 'migrate.db')}`
    const store = await openStore(url)
    expect(await migrate(store.db)).toBe(0)
    const versions = await store.db.selectFrom('schema_migrations').select('version').execute()
    expect(versions.map((v) => Number(v.version))).toEqual(migrations.map((m) => m.version))
    await store.close()
    const again = await openStore(url)
    expect(await again.isEmpty()).toBe(true)
    await again.close()
  })

  it('keeps what was written across a reopen (WAL on disk)', async () => {
    const url = `sqlite:${join(dir, 'persist.db')}`
    const store = await openStore(url)
    const summary = await seed(store, { sessions: 1, events: 10 })
    await store.close()
    const reopened = await openStore(url)
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const page = await readPage(asJson(reopened.reader), { sessionId, limit: 100, order: 'asc' })
    expect(page.events).toHaveLength(summary.instances[0]!.sessions[0]!.events)
    const mode = await reopened.db.selectFrom('schema_migrations').select('version').execute()
    expect(mode.length).toBe(migrations.length)
    await reopened.close()
  })

  it('sees what another connection wrote to the same file: run changes and new events', async () => {
    const { reader, asked, writer, sessionId, close } = await twoConnections('two-connections.db')
    const before = await readPage(reader, { sessionId, limit: 100, order: 'asc' })
    const [runId] = [...before.runs.keys()]
    const status = before.runs.get(runId!)?.status === 'failed' ? 'completed' : 'failed'
    // Read twice: the second time from what the caching reader keeps (no run asked for).
    const runsAsked = asked.runs
    expect(runsAsked).toBeGreaterThan(0)
    expect((await readPage(reader, { sessionId, limit: 100, order: 'asc' })).runs.get(runId!)).toEqual(
      before.runs.get(runId!),
    )
    expect(asked.runs).toBe(runsAsked)

    await writer.seeding.updateServerRun(runId!, { status, stoppedAt: new Date('2032-01-01T00:00:00.000Z') })
    const [added] = await writer.seeding.appendLogEvents([
      { serverRunId: runId!, lines: [{ type: 'stderr', line: 'late' }] },
    ])
    const after = await readPage(reader, { sessionId, limit: 100, order: 'asc' })
    expect(after.runs.get(runId!)).toMatchObject({ status, stopped_at: '2032-01-01T00:00:00.000Z' })
    expect(after.events.map((e) => e.id)).toEqual([...before.events.map((e) => e.id), added])
    expect(
      (await readEvent(reader, sessionId, before.events.find((e) => e.server_run?.id === runId)!.id))?.server_run
        ?.status,
    ).toBe(status)
    await close()
  })

  it('shows at once what another connection writes to anything a run shows', async () => {
    const { reader, asked, writer, sessionId, close } = await twoConnections('run-tables.db')
    const { ids } = await reader.listEventIds({ sessionId, limit: 1, order: 'asc' })
    const shown = async () => (await readEvent(reader, sessionId, ids[0]!))!.server_run!
    const before = await shown()

    // Each write is plain SQL through the other connection, after the reader has read (and kept) the run.
    const changes: {
      table: string
      column: string
      id: string
      value: string | number
      read: (r: ServerRun) => unknown
    }[] = [
      { table: 'server_runs', column: 'status', id: before.id, value: 'failed', read: (r) => r.status },
      {
        table: 'server_sessions',
        column: 'client_message_count',
        id: before.server_session.id,
        value: 999,
        read: (r) => r.server_session.usage.total_productive_client_message_count,
      },
      {
        table: 'server_deployments',
        column: 'name',
        id: before.server_deployment.id,
        value: 'renamed deployment',
        read: (r) => r.server_deployment.name,
      },
      { table: 'servers', column: 'name', id: before.server.id, value: 'renamed server', read: (r) => r.server.name },
    ]
    for (const { table, column, id, value, read } of changes) {
      const runsAsked = asked.runs
      expect(read(await shown())).not.toBe(value)
      // That read was the kept run's.
      expect(asked.runs).toBe(runsAsked)
      await sql`update ${sql.table(table)} set ${sql.ref(column)} = ${value} where id = ${id}`.execute(writer.db)
      expect(read(await shown()), table).toBe(value)
    }
    await close()
  })

  it('counts changes to what runs show, not new events or runs (the runs it keeps last while sessions are written)', async () => {
    const store = await openStore('sqlite::memory:')
    const summary = await seed(store, { sessions: 1, events: 5 })
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const count = async () => Number((await store.db.selectFrom('run_changes').select('n').executeTakeFirstOrThrow()).n)
    const { runs } = await readPage(asJson(store.reader), { sessionId, limit: 5, order: 'asc' })
    const runId = [...runs.keys()][0]!
    expect(store.reader.runsVersion()).toBe(String(await count()))

    const start = await count()
    await store.seeding.appendLogEvents([{ serverRunId: runId, lines: [{ type: 'stdout', line: 'one more' }] }])
    const firstId = (await store.reader.listEventIds({ sessionId, limit: 1, order: 'asc' })).ids[0]!
    const run = (await readEvent(asJson(store.reader), sessionId, firstId))!.server_run!
    await store.seeding.createServerRun({
      serverSessionId: run.server_session.id,
      serverVersionId: run.server_version_id,
      type: 'hosted',
    })
    expect(await count()).toBe(start)
    await store.seeding.updateServerRun(runId, { status: 'completed' })
    expect(await count()).toBe(start + 1)
    expect(store.reader.runsVersion()).toBe(String(start + 1))
    await store.seeding.recordServerRunError({ serverRunId: runId, code: 'boom', message: 'it failed' })
    expect(await count()).toBeGreaterThan(start + 1)
    await store.close()
  })

  it('keeps a bounded number of query shapes compiled, however many requests ask for', async () => {
    const store = await openStore('sqlite::memory:')
    const { id } = await store.admin.createInstance({ name: 'shapes' })
    const prepared = new PreparedQueries(store.db)
    const run = (shape: string) =>
      prepared.execute<{ id: string }>(shape, { id }, (bind) =>
        store.db.selectFrom('instances').select('id').where('id', '=', bind<string>('id')),
      )
    for (let i = 0; i < MAX_SHAPES + 500; i++) expect(await run(`shape ${i}`)).toEqual([{ id }])
    expect(prepared.size).toBe(MAX_SHAPES)
    // A shape dropped long ago is compiled again.
    expect(await run('shape 0')).toEqual([{ id }])
    await store.close()
  })

  it('stores keys only as hashes', async () => {
    const store = await openStore('sqlite::memory:')
    const { id } = await store.admin.createInstance({ name: 'i' })
    const key = await store.admin.createApiKey({ instanceId: id, kind: 'secret' })
    expect(key.secret).toMatch(/^metorial_sk_[0-9A-Za-z]{40}$/)
    const rows = await store.db.selectFrom('api_keys').selectAll().execute()
    expect(JSON.stringify(rows)).not.toContain(key.secret)
    expect((await store.reader.findApiKey(hashSecret(key.secret)))?.id).toBe(key.id)
    await store.close()
  })

  it('appends events in order, records errors, and shows runs as they are now', async () => {
    const store = await openStore('sqlite::memory:')
    const { seeding: writer, admin } = store
    const reader = asJson(store.reader)
    const { id: instanceId } = await admin.createInstance({ name: 'i' })
    const { id: serverId } = await writer.createServer({ name: 'S', description: null, type: 'custom' })
    const { id: versionId } = await writer.createServerVersion({ serverId })
    const { id: deploymentId } = await writer.createServerDeployment({
      instanceId,
      serverId,
      name: null,
      description: null,
    })
    const { id: sessionId } = await writer.createSession({ instanceId })
    const { id: serverSessionId } = await writer.createServerSession({
      sessionId,
      serverDeploymentId: deploymentId,
      mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'sse', client: null, server: null },
    })
    const { id: runId } = await writer.createServerRun({ serverSessionId, serverVersionId: versionId, type: 'hosted' })
    const ids = await writer.appendLogEvents(
      Array.from({ length: 1200 }, (_, i) => ({
        serverRunId: runId,
        lines: [{ type: 'stdout' as const, line: `line ${i}` }],
      })),
    )
    expect(ids).toHaveLength(1200)
    expect([...ids].sort()).toEqual(ids)
    const error = await writer.recordServerRunError({ serverRunId: runId, code: 'crashed', message: 'It crashed.' })

    const page = await readPage(reader, { sessionId, limit: 2, order: 'desc' })
    expect(page.events.map((e) => e.id)).toEqual([error.eventId, ids.at(-1)])
    expect(page.events[0]).toMatchObject({
      type: 'server_run_error',
      server_run_error: { code: 'crashed' },
      log_lines: [],
    })
    expect(page.runs.get(runId)?.status).toBe('failed')
    expect(page.runs.size).toBe(1)
    expect(page.hasMoreAfter).toBe(true)

    await writer.updateServerRun(runId, { status: 'completed' })
    expect((await readEvent(reader, sessionId, ids[0]!))?.server_run?.status).toBe('completed')
    expect(await readEvent(reader, sessionId, newId('sessionEvent'))).toBeUndefined()
    await expect(writer.appendLogEvents([{ serverRunId: newId('serverRun'), lines: [] }])).rejects.toThrow(
      /no server run/,
    )
    await store.close()
  })

  it('lists with an index, never a scan of the events table (EXPLAIN QUERY PLAN)', async () => {
    const store = await openStore('sqlite::memory:')
    const summary = await seed(store, { sessions: 1, events: 50 })
    const sessionId = summary.instances[0]!.sessions[0]!.id
    const plans: string[] = []
    for (const filter of [
      '',
      " AND type IN ('server_logs')",
      " AND server_run_id IN ('srr_x')",
      " AND server_session_id IN ('srs_x')",
    ]) {
      const rows = await sql
        .raw<{ detail: string }>(
          `EXPLAIN QUERY PLAN SELECT id FROM session_events WHERE session_id = '${sessionId}'${filter} AND id > 'sev_0' ORDER BY id LIMIT 21`,
        )
        .execute(store.db)
      plans.push(rows.rows.map((r) => r.detail).join(' | '))
    }
    for (const plan of plans) {
      expect(plan).toMatch(/USING (COVERING )?INDEX session_events_/)
      expect(plan).not.toMatch(/SCAN session_events(?! USING)/)
    }
    await store.close()
  })

  it('writes LIMIT into the SQL of a listing: SQLite prepares a statement with a bound LIMIT again on every run', async () => {
    // SQLite reads a bound LIMIT while planning, so new bindings (better-sqlite3 binds on every
    // run) make it parse and plan the statement again: about as costly as the page query itself.
    const store = await openStore('sqlite::memory:')
    const base: ListEventsQuery = { sessionId: 'ses_x', limit: 20, order: 'asc' }
    const queries: ListEventsQuery[] = [
      base,
      { ...base, order: 'desc', limit: 1 },
      { ...base, position: { direction: 'after', id: 'sev_x' }, types: ['server_logs'] },
      {
        ...base,
        limit: 100,
        position: { direction: 'before', id: 'sev_x' },
        serverRunIds: ['srr_x', 'srr_y'],
        serverSessionIds: ['srs_x'],
      },
    ]
    for (const query of queries) {
      const [page, probe] = store.reader.compileListEventIds(query)
      expect(page!.sql).toMatch(new RegExp(`limit ${query.limit + 1}$`))
      expect(page!.parameters).not.toContain(query.limit + 1)
      if (query.position) {
        expect(probe!.sql).toMatch(/limit 1$/)
        expect(probe!.parameters).not.toContain(1)
      }
    }
    await store.close()
  })
})
