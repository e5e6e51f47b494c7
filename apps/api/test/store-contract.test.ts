import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { newId } from '../src/ids.js'
import { migrate, migrations } from '../src/store/migrations.js'
import { openStore } from '../src/store/open.js'
import { hashSecret, type SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, openTestStore, schemaOf } from './backend.js'

// What every store must do, whatever the database under it: this file runs once per backend
// (SQLite, and PostgreSQL on a server or on PGlite). SQLite-only behaviour is in store.test.ts.

/** A session with one run, made through the store's own write path. */
async function sessionWithRun(store: SqlStore) {
  const { id: instanceId } = await store.createInstance({ name: 'i' })
  const { id: serverId } = await store.createServer({ name: 'S', description: null, type: 'custom' })
  const { id: versionId } = await store.createServerVersion({ serverId })
  const { id: deploymentId } = await store.createServerDeployment({ instanceId, serverId, name: null, description: null, metadata: { a: [1, 'b'] } })
  const { id: sessionId } = await store.createSession({ instanceId })
  const { id: serverSessionId } = await store.createServerSession({
    sessionId,
    serverDeploymentId: deploymentId,
    mcp: { object: 'mcp', version: '2025-03-26', connection_type: 'sse', client: null, server: null },
    clientMessageCount: 7,
    serverMessageCount: 5,
  })
  const { id: runId } = await store.createServerRun({ serverSessionId, serverVersionId: versionId, type: 'hosted' })
  return { instanceId, sessionId, serverSessionId, runId }
}

describe(`the ${backend} store`, () => {
  it(`speaks ${onPostgres ? 'PostgreSQL' : 'SQLite'}`, async () => {
    const store = await openTestStore()
    expect(store.dialect).toBe(onPostgres ? 'postgres' : 'sqlite')
    await store.ping()
    expect(await store.isEmpty()).toBe(true)
  })

  it('applies every migration once; migrating again changes nothing', async () => {
    const store = await openTestStore()
    expect(await migrate(store.db)).toBe(0)
    const versions = await store.db.selectFrom('schema_migrations').select('version').orderBy('version').execute()
    expect(versions.map((v) => v.version)).toEqual(migrations.map((m) => m.version))
    expect(typeof versions[0]!.version).toBe('number')
  })

  it('migrates once when several processes open one empty database at the same time', async () => {
    if (onPostgres) {
      // Five stores opening one empty schema at once, as five API processes starting together.
      const first = await openTestStore()
      const schema = `${await schemaOf(first)}_b`
      await sql.raw(`create schema "${schema}"`).execute(first.db)
      try {
        const stores = await Promise.all(Array.from({ length: 5 }, () => openTestStore({ schema })))
        expect(await stores[0]!.db.selectFrom('schema_migrations').select('version').execute()).toHaveLength(migrations.length)
        for (const store of stores) await store.close()
      } finally {
        await sql.raw(`drop schema "${schema}" cascade`).execute(first.db)
      }
    } else {
      // SQLite locks per process: five processes (the built store) opening one new file at once.
      const dir = mkdtempSync(join(tmpdir(), 'session-events-contract-'))
      try {
        const url = `sqlite:${join(dir, 'many.db')}`
        const open = new URL('../dist/store/open.js', import.meta.url).href
        const script = `const { openStore } = await import(${JSON.stringify(open)}); await (await openStore(${JSON.stringify(url)})).close()`
        const codes = await Promise.all(
          Array.from({ length: 5 }, () => {
            const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] })
            return new Promise<number | null>((resolve) => child.on('exit', resolve))
          }),
        )
        expect(codes).toEqual([0, 0, 0, 0, 0])
        const store = await openStore(url)
        expect(await store.db.selectFrom('schema_migrations').select('version').execute()).toHaveLength(migrations.length)
        await store.close()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  })

  it('stores keys only as hashes', async () => {
    const store = await openTestStore()
    const { id } = await store.createInstance({ name: 'i' })
    const key = await store.createApiKey({ instanceId: id, kind: 'secret' })
    const rows = await store.db.selectFrom('api_keys').selectAll().execute()
    expect(JSON.stringify(rows)).not.toContain(key.secret)
    expect((await store.findApiKey(hashSecret(key.secret)))?.id).toBe(key.id)
    expect(await store.findApiKey(hashSecret('metorial_sk_nope'))).toBeUndefined()
  })

  it('appends events in order, records errors, and shows runs as they are now', async () => {
    const store = await openTestStore()
    const { instanceId, sessionId, runId } = await sessionWithRun(store)
    expect(await store.firstSession(instanceId)).toBe(sessionId)
    expect(await store.sessionInstance(sessionId)).toBe(instanceId)
    const ids = await store.appendLogEvents(
      Array.from({ length: 1200 }, (_, i) => ({ serverRunId: runId, lines: [{ type: 'stdout' as const, line: `line ${i}` }] })),
    )
    expect(ids).toHaveLength(1200)
    expect([...ids].sort()).toEqual(ids)
    const error = await store.recordServerRunError({ serverRunId: runId, code: 'crashed', message: 'It crashed.', metadata: { exit_code: 1 } })

    const page = await store.listSessionEvents({ sessionId, limit: 2, order: 'desc' })
    expect(page.events.map((e) => e.id)).toEqual([error.eventId, ids.at(-1)])
    expect(page.events[0]).toMatchObject({ type: 'server_run_error', error_code: 'crashed', error_metadata_json: '{"exit_code":1}', log_lines_json: '[]' })
    const run = page.runs.get(runId)!
    expect(run.run.status).toBe('failed')
    expect(run.deployment.metadata_json).toBe('{"a":[1,"b"]}')
    // Integers come back as numbers on every driver (node-postgres would give int8 as strings).
    expect(run.serverSession.client_message_count).toBe(7)
    expect(run.serverSession.server_message_count).toBe(5)
    expect(page.hasMoreAfter).toBe(true)
    expect(page.hasMoreBefore).toBe(false)

    await store.updateServerRun(runId, { status: 'completed', stoppedAt: new Date('2030-01-01T00:00:00.000Z') })
    const one = await store.getSessionEvent(sessionId, ids[0]!)
    expect(one?.run?.run).toMatchObject({ status: 'completed', stopped_at: '2030-01-01T00:00:00.000Z' })
    expect(await store.getSessionEvent(sessionId, newId('sessionEvent'))).toBeUndefined()
    await expect(store.appendLogEvents([{ serverRunId: newId('serverRun'), lines: [] }])).rejects.toThrow(/no server run/)
    // The failed append wrote nothing.
    const { n } = await store.db.selectFrom('session_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
    expect(n).toBe(1201)
  })

  it('keeps every event to its own session, however often it was read before', async () => {
    const store = await openTestStore()
    const a = await sessionWithRun(store)
    const b = await sessionWithRun(store)
    const [aEvent] = await store.appendLogEvents([{ serverRunId: a.runId, lines: [{ type: 'stdout', line: 'a' }] }])
    const [bEvent] = await store.appendLogEvents([{ serverRunId: b.runId, lines: [{ type: 'stdout', line: 'b' }] }])
    // Read (and so remembered) through the first session, asked for through the second.
    expect((await store.listSessionEvents({ sessionId: a.sessionId, limit: 10, order: 'asc' })).events.map((e) => e.id)).toEqual([aEvent])
    expect((await store.getSessionEvent(a.sessionId, aEvent!))?.event.id).toBe(aEvent)
    expect(await store.getSessionEvent(b.sessionId, aEvent!)).toBeUndefined()
    expect((await store.listSessionEvents({ sessionId: b.sessionId, limit: 10, order: 'asc' })).events.map((e) => e.id)).toEqual([bEvent])
    expect(await store.getSessionEvent(a.sessionId, bEvent!)).toBeUndefined()
  })

  it('shows a run as it is now on every read, the events around it as they were written', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const ids = await store.appendLogEvents(Array.from({ length: 3 }, (_, i) => ({ serverRunId: runId, lines: [{ type: 'stdout' as const, line: `${i}` }] })))
    const first = await store.listSessionEvents({ sessionId, limit: 10, order: 'asc' })
    expect(first.runs.get(runId)?.run.status).toBe('active')
    await store.updateServerRun(runId, { status: 'completed', stoppedAt: new Date('2031-02-03T04:05:06.000Z') })
    const again = await store.listSessionEvents({ sessionId, limit: 10, order: 'asc' })
    expect(again.runs.get(runId)?.run).toMatchObject({ status: 'completed', stopped_at: '2031-02-03T04:05:06.000Z' })
    expect(again.events).toEqual(first.events)
    expect((await store.getSessionEvent(sessionId, ids[1]!))?.run?.run.status).toBe('completed')
    // New events show on the page that was read before they came.
    const [more] = await store.appendLogEvents([{ serverRunId: runId, lines: [] }])
    expect((await store.listSessionEvents({ sessionId, limit: 10, order: 'asc' })).events.map((e) => e.id)).toEqual([...ids, more])
  })

  it('keeps log lines exactly as written: unicode, quotes, backslashes, NUL, long lines', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const lines = [
      { type: 'stdout' as const, line: 'héllo wörld ✓ 日本語 🚀' },
      { type: 'stderr' as const, line: `quotes ' " and \\ backslash, tab\tand NUL \u0000 end` },
      { type: 'stdout' as const, line: 'x'.repeat(100_000) },
      { type: 'stdout' as const, line: '' },
    ]
    const [id] = await store.appendLogEvents([{ serverRunId: runId, lines }])
    const got = await store.getSessionEvent(sessionId, id!)
    expect(JSON.parse(got!.event.log_lines_json)).toEqual(lines)
  })

  it('orders ids byte-wise, as JavaScript compares them: mixed case, one millisecond', async () => {
    const store = await openTestStore()
    const { sessionId, runId, serverSessionId } = await sessionWithRun(store)
    // Ids of one millisecond differ only in their random part, where case decides the order:
    // byte-wise (and in JavaScript) "0" < "A" < "Z" < "a" < "z"; a linguistic collation says otherwise.
    const time = Date.UTC(2025, 6, 20).toString(36).padStart(9, '0')
    const suffixes = ['aaaaaaaaaaaaa', 'Aaaaaaaaaaaaa', 'Baaaaaaaaaaaa', 'baaaaaaaaaaaa', '0aaaaaaaaaaaa', 'Zzzzzzzzzzzzz', 'zzzzzzzzzzzzz', 'aAaaaaaaaaaaa', 'AAaaaaaaaaaaa']
    const ids = suffixes.map((s) => `sev_${time}${s}`)
    await store.db
      .insertInto('session_events')
      .values(
        ids.map((id) => ({
          id,
          session_id: sessionId,
          server_run_id: runId,
          server_session_id: serverSessionId,
          type: 'server_logs' as const,
          server_run_error_id: null,
          log_lines_json: '[]',
          created_at: '2025-07-20T00:00:00.000Z',
        })),
      )
      .execute()
    const jsOrder = [...ids].sort()
    expect(jsOrder.slice(0, 4)).toEqual([`sev_${time}0aaaaaaaaaaaa`, `sev_${time}AAaaaaaaaaaaa`, `sev_${time}Aaaaaaaaaaaaa`, `sev_${time}Baaaaaaaaaaaa`])

    for (const order of ['asc', 'desc'] as const) {
      const expected = order === 'asc' ? jsOrder : [...jsOrder].reverse()
      // Page by page with limit 2: every keyset step compares ids in SQL.
      const seen: string[] = []
      let position: { direction: 'after'; id: string } | undefined
      for (;;) {
        const page = await store.listSessionEvents({ sessionId, limit: 2, order, position })
        seen.push(...page.events.map((e) => e.id))
        if (!page.hasMoreAfter) break
        position = { direction: 'after', id: page.events.at(-1)!.id }
      }
      expect(seen).toEqual(expected)
      // And backwards from the end.
      const back = await store.listSessionEvents({ sessionId, limit: 3, order, position: { direction: 'before', id: expected.at(-1)! } })
      expect(back.events.map((e) => e.id)).toEqual(expected.slice(-4, -1))
    }
  })

  it('compares id columns byte-wise by declaration: COLLATE "C" on PostgreSQL, BINARY on SQLite', async () => {
    const store = await openTestStore()
    if (onPostgres) {
      const schema = await schemaOf(store)
      const { rows } = await sql<{ table_name: string; column_name: string; collation_name: string | null }>`
        select table_name, column_name, collation_name from information_schema.columns
        where table_schema = ${schema} and (column_name = 'id' or column_name like '%\_id') and data_type = 'text'`.execute(store.db)
      expect(rows.length).toBeGreaterThanOrEqual(25)
      for (const row of rows) expect(`${row.table_name}.${row.column_name} ${row.collation_name}`).toBe(`${row.table_name}.${row.column_name} C`)
    } else {
      // SQLite's default collation is BINARY; no table may declare another.
      const { rows } = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table'`.execute(store.db)
      expect(rows.length).toBeGreaterThanOrEqual(11)
      for (const row of rows) expect(row.sql).not.toMatch(/collate/i)
    }
  })
})
