import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { idTime, newId } from '../src/ids.js'
import { defaultConfig } from '../src/config.js'
import { CachingReader } from '../src/cached-reader.js'
import { hashSecret, SECRET_KEY_SCOPES } from '../src/api-keys.js'
import type { JsonReader } from '../src/json-reader.js'
import { migrate, migrations } from '../src/store/migrations.js'
import { openStore } from '../src/store/open.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, openTestStore, schemaOf } from './backend.js'
import { asJson, readEvent, readPage, sessionWithRun } from './store-reads.js'

// What every store must do, whatever the database under it: this file runs once per backend
// (SQLite, and PostgreSQL on a server or on PGlite). SQLite-only behaviour is in store.test.ts.

/** The store's own reader (as JSON), and a caching reader around it (what the API reads through). */
const readersOf = (store: SqlStore): [string, JsonReader][] => [
  ['the store reader', asJson(store.reader)],
  ['a caching reader', new CachingReader(asJson(store.reader), defaultConfig())],
]

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
        expect(await stores[0]!.db.selectFrom('schema_migrations').select('version').execute()).toHaveLength(
          migrations.length,
        )
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
            const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
              stdio: ['ignore', 'ignore', 'inherit'],
            })
            return new Promise<number | null>((resolve) => child.on('exit', resolve))
          }),
        )
        expect(codes).toEqual([0, 0, 0, 0, 0])
        const store = await openStore(url)
        expect(await store.db.selectFrom('schema_migrations').select('version').execute()).toHaveLength(
          migrations.length,
        )
        await store.close()
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
  })

  it('stores keys only as hashes', async () => {
    const store = await openTestStore()
    const { id } = await store.admin.createInstance({ name: 'i' })
    const key = await store.admin.createApiKey({ instanceId: id, kind: 'secret' })
    const rows = await store.db.selectFrom('api_keys').selectAll().execute()
    expect(JSON.stringify(rows)).not.toContain(key.secret)
    const found = await store.reader.findApiKey(hashSecret(key.secret))
    expect(found).toMatchObject({
      id: key.id,
      instance_id: id,
      kind: 'secret',
      scopes: SECRET_KEY_SCOPES,
      revoked_at: null,
    })
    expect(await store.reader.findApiKey(hashSecret('metorial_sk_nope'))).toBeUndefined()
    const publishable = await store.admin.createApiKey({ instanceId: id, kind: 'publishable' })
    expect((await store.reader.findApiKey(hashSecret(publishable.secret)))?.scopes).toBe('')
  })

  it('revokes a key by its secret, once', async () => {
    const store = await openTestStore()
    const { id } = await store.admin.createInstance({ name: 'i' })
    const key = await store.admin.createApiKey({ instanceId: id, kind: 'secret' })
    const other = await store.admin.createApiKey({ instanceId: id, kind: 'secret' })
    const at = new Date('2030-05-06T07:08:09.000Z')
    expect(await store.admin.revokeApiKey(key.secret, at)).toBe(true)
    expect((await store.reader.findApiKey(hashSecret(key.secret)))?.revoked_at).toBe(at.toISOString())
    // Revoked before: nothing to revoke, and the first revocation stays.
    expect(await store.admin.revokeApiKey(key.secret)).toBe(false)
    expect((await store.reader.findApiKey(hashSecret(key.secret)))?.revoked_at).toBe(at.toISOString())
    expect(await store.admin.revokeApiKey('metorial_sk_nope')).toBe(false)
    // Only that key.
    expect((await store.reader.findApiKey(hashSecret(other.secret)))?.revoked_at).toBeNull()
  })

  it('appends events in order, records errors, and shows runs as they are now', async () => {
    const store = await openTestStore()
    const { seeding } = store
    const reader = asJson(store.reader)
    const { instanceId, sessionId, runId } = await sessionWithRun(store)
    expect(await store.firstSession(instanceId)).toBe(sessionId)
    expect(await reader.sessionInstance(sessionId)).toBe(instanceId)
    expect(await reader.sessionInstance(newId('session'))).toBeUndefined()
    const ids = await seeding.appendLogEvents(
      Array.from({ length: 1200 }, (_, i) => ({
        serverRunId: runId,
        lines: [{ type: 'stdout' as const, line: `line ${i}` }],
      })),
    )
    expect(ids).toHaveLength(1200)
    expect([...ids].sort()).toEqual(ids)
    const error = await seeding.recordServerRunError({
      serverRunId: runId,
      code: 'crashed',
      message: 'It crashed.',
      metadata: { exit_code: 1 },
    })

    const page = await readPage(reader, { sessionId, limit: 2, order: 'desc' })
    expect(page.events.map((e) => e.id)).toEqual([error.eventId, ids.at(-1)])
    expect(page.events[0]).toMatchObject({
      type: 'server_run_error',
      server_run_error: {
        id: error.id,
        code: 'crashed',
        message: 'It crashed.',
        metadata: { exit_code: 1 },
        server_run: { id: runId, status: 'failed' },
      },
      log_lines: [],
    })
    expect(page.events[1]).toMatchObject({
      type: 'server_logs',
      server_run_error: null,
      log_lines: [{ type: 'stdout', line: 'line 1199' }],
    })
    const run = page.runs.get(runId)!
    expect(run.status).toBe('failed')
    expect(run.server_deployment.metadata).toEqual({ a: [1, 'b'] })
    // Integers come back as numbers on every driver (node-postgres would give int8 as strings).
    expect(run.server_session.usage).toEqual({
      total_productive_message_count: 12,
      total_productive_client_message_count: 7,
      total_productive_server_message_count: 5,
    })
    expect(page.hasMoreAfter).toBe(true)
    expect(page.hasMoreBefore).toBe(false)

    await seeding.updateServerRun(runId, { status: 'completed', stoppedAt: new Date('2030-01-01T00:00:00.000Z') })
    const one = await readEvent(reader, sessionId, ids[0]!)
    expect(one?.server_run).toMatchObject({ status: 'completed', stopped_at: '2030-01-01T00:00:00.000Z' })
    expect(await readEvent(reader, sessionId, newId('sessionEvent'))).toBeUndefined()
    await expect(seeding.appendLogEvents([{ serverRunId: newId('serverRun'), lines: [] }])).rejects.toThrow(
      /no server run/,
    )
    // The failed append wrote nothing.
    const { n } = await store.db
      .selectFrom('session_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    expect(n).toBe(1201)
  })

  it('keeps every event to its own session, however often it was read before', async () => {
    const store = await openTestStore()
    const a = await sessionWithRun(store)
    const b = await sessionWithRun(store)
    const [aEvent] = await store.seeding.appendLogEvents([
      { serverRunId: a.runId, lines: [{ type: 'stdout', line: 'a' }] },
    ])
    const [bEvent] = await store.seeding.appendLogEvents([
      { serverRunId: b.runId, lines: [{ type: 'stdout', line: 'b' }] },
    ])
    for (const [name, reader] of readersOf(store)) {
      // Read (and so, by a caching reader, kept) through the first session, asked for through the second.
      expect(
        (await readPage(reader, { sessionId: a.sessionId, limit: 10, order: 'asc' })).events.map((e) => e.id),
        name,
      ).toEqual([aEvent])
      expect((await readEvent(reader, a.sessionId, aEvent!))?.id, name).toBe(aEvent)
      expect(await readEvent(reader, b.sessionId, aEvent!), name).toBeUndefined()
      expect(
        (await reader.sessionEvents(b.sessionId, [aEvent!, bEvent!])).map((e) => e.id),
        name,
      ).toEqual([bEvent])
      expect(
        (await readPage(reader, { sessionId: b.sessionId, limit: 10, order: 'asc' })).events.map((e) => e.id),
        name,
      ).toEqual([bEvent])
      expect(await readEvent(reader, a.sessionId, bEvent!), name).toBeUndefined()
    }
  })

  for (const [name, readerOf] of [
    ['the store reader', (store: SqlStore): JsonReader => asJson(store.reader)],
    ['a caching reader', (store: SqlStore): JsonReader => new CachingReader(asJson(store.reader), defaultConfig())],
  ] as const) {
    it(`shows a run as it is now on every read, the events around it as they were written (${name})`, async () => {
      const store = await openTestStore()
      const reader = readerOf(store)
      const { sessionId, runId } = await sessionWithRun(store)
      const ids = await store.seeding.appendLogEvents(
        Array.from({ length: 3 }, (_, i) => ({
          serverRunId: runId,
          lines: [{ type: 'stdout' as const, line: `${i}` }],
        })),
      )
      const first = await readPage(reader, { sessionId, limit: 10, order: 'asc' })
      expect(first.runs.get(runId)?.status).toBe('active')
      expect(first.events.map((e) => e.server_run?.status)).toEqual(['active', 'active', 'active'])
      await store.seeding.updateServerRun(runId, {
        status: 'completed',
        stoppedAt: new Date('2031-02-03T04:05:06.000Z'),
      })
      const again = await readPage(reader, { sessionId, limit: 10, order: 'asc' })
      expect(again.runs.get(runId)).toMatchObject({ status: 'completed', stopped_at: '2031-02-03T04:05:06.000Z' })
      // The events as written, byte for byte; only the run they show has changed.
      expect(again.json).toEqual(first.json)
      expect(again.events.map(({ server_run: _run, ...event }) => event)).toEqual(
        first.events.map(({ server_run: _run, ...event }) => event),
      )
      expect(again.events.map((e) => e.server_run?.status)).toEqual(['completed', 'completed', 'completed'])
      expect((await readEvent(reader, sessionId, ids[1]!))?.server_run?.status).toBe('completed')
      // New events show on the page that was read before they came.
      const [more] = await store.seeding.appendLogEvents([{ serverRunId: runId, lines: [] }])
      expect((await readPage(reader, { sessionId, limit: 10, order: 'asc' })).events.map((e) => e.id)).toEqual([
        ...ids,
        more,
      ])
    })
  }

  it("hands out a session's event ids in the order its events are written, whatever their time", async () => {
    const store = await openTestStore()
    const { writer, seeding } = store
    const { sessionId, runId } = await sessionWithRun(store)
    const line = (text: string) => [{ type: 'stdout' as const, line: text }]
    // A thousand events of one millisecond in one append: the clock gives them one time, the
    // writer their order.
    const at = new Date()
    const batch = await seeding.appendLogEvents(
      Array.from({ length: 1000 }, (_, i) => ({ serverRunId: runId, lines: line(`${i}`), at })),
    )
    expect([...batch].sort()).toEqual(batch)
    expect(new Set(batch).size).toBe(1000)
    for (const id of batch) expect(idTime(id).getTime()).toBe(at.getTime())
    // One at a time in that millisecond: each above the one before.
    const single: string[] = []
    for (let i = 0; i < 20; i++)
      single.push(...(await seeding.appendLogEvents([{ serverRunId: runId, lines: line(`single ${i}`), at }])))
    expect([batch.at(-1)!, ...single].sort()).toEqual([batch.at(-1)!, ...single])
    // Written with a time in the past (a backfill): above every id before it, not among them,
    // and with the time it was given as its created_at. The same for the API's appendEvent and
    // for an error event.
    const past = new Date(at.getTime() - 3_600_000)
    const [late] = await seeding.appendLogEvents([{ serverRunId: runId, lines: line('late'), at: past }])
    expect(late! > single.at(-1)!).toBe(true)
    expect((await readEvent(asJson(store.reader), sessionId, late!))?.created_at).toBe(past.toISOString())
    const appended = await writer.appendEvent({ sessionId, serverRunId: runId, lines: line('appended'), at: past })
    expect(appended.event.id > late!).toBe(true)
    expect(appended.event.created_at).toBe(past.toISOString())
    const error = await seeding.recordServerRunError({
      serverRunId: runId,
      code: 'crashed',
      message: 'It crashed.',
      at: past,
    })
    expect(error.eventId > appended.event.id).toBe(true)

    // The listing: in the order written.
    const { ids } = await store.reader.listEventIds({ sessionId, limit: 2000, order: 'asc' })
    expect(ids).toEqual([...batch, ...single, late, appended.event.id, error.eventId])
  })

  it('gives events written to one session at the same time ids of their own, each above the last committed', async () => {
    const store = await openTestStore()
    const { writer, seeding } = store
    const { sessionId, runId } = await sessionWithRun(store)
    const [first] = await seeding.appendLogEvents([{ serverRunId: runId, lines: [] }])
    // From the past, so that every id is the last one counted up by one (nextId): two writers
    // that did not wait for each other (the session's lock) would make the same one.
    const past = new Date(Date.now() - 3_600_000)
    const written = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        i % 2 === 0
          ? writer
              .appendEvent({
                sessionId,
                serverRunId: runId,
                lines: [{ type: 'stdout', line: `together ${i}` }],
                at: past,
              })
              .then((r) => r.event.id)
          : seeding
              .appendLogEvents([{ serverRunId: runId, lines: [{ type: 'stdout', line: `together ${i}` }], at: past }])
              .then(([id]) => id!),
      ),
    )
    expect(new Set(written).size).toBe(10)
    for (const id of written) expect(id > first!).toBe(true)
    const { ids } = await store.reader.listEventIds({ sessionId, limit: 100, order: 'asc' })
    expect(ids).toEqual([first, ...[...written].sort()])
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
    const [id] = await store.seeding.appendLogEvents([{ serverRunId: runId, lines }])
    const got = await readEvent(asJson(store.reader), sessionId, id!)
    expect(got!.log_lines).toEqual(lines)
    // And as the API appends them.
    const appended = await store.writer.appendEvent({ sessionId, serverRunId: runId, lines })
    expect((await readEvent(asJson(store.reader), sessionId, appended.event.id))!.log_lines).toEqual(lines)
  })

  it('orders ids byte-wise, as JavaScript compares them: mixed case, one millisecond', async () => {
    const store = await openTestStore()
    const { sessionId, runId, serverSessionId } = await sessionWithRun(store)
    // Ids of one millisecond differ only in their random part, where case decides the order:
    // byte-wise (and in JavaScript) "0" < "A" < "Z" < "a" < "z"; a linguistic collation says otherwise.
    const time = Date.UTC(2025, 6, 20).toString(36).padStart(9, '0')
    const suffixes = [
      'aaaaaaaaaaaaa',
      'Aaaaaaaaaaaaa',
      'Baaaaaaaaaaaa',
      'baaaaaaaaaaaa',
      '0aaaaaaaaaaaa',
      'Zzzzzzzzzzzzz',
      'zzzzzzzzzzzzz',
      'aAaaaaaaaaaaa',
      'AAaaaaaaaaaaa',
    ]
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
    expect(jsOrder.slice(0, 4)).toEqual([
      `sev_${time}0aaaaaaaaaaaa`,
      `sev_${time}AAaaaaaaaaaaa`,
      `sev_${time}Aaaaaaaaaaaaa`,
      `sev_${time}Baaaaaaaaaaaa`,
    ])

    for (const order of ['asc', 'desc'] as const) {
      const expected = order === 'asc' ? jsOrder : [...jsOrder].reverse()
      // Page by page with limit 2: every keyset step compares ids in SQL.
      const seen: string[] = []
      let position: { direction: 'after'; id: string } | undefined
      for (;;) {
        const page = await store.reader.listEventIds({ sessionId, limit: 2, order, position })
        seen.push(...page.ids)
        if (!page.hasMoreAfter) break
        position = { direction: 'after', id: page.ids.at(-1)! }
      }
      expect(seen).toEqual(expected)
      // And backwards from the end.
      const back = await store.reader.listEventIds({
        sessionId,
        limit: 3,
        order,
        position: { direction: 'before', id: expected.at(-1)! },
      })
      expect(back.ids).toEqual(expected.slice(-4, -1))
      // The events come back in the order asked for, too.
      expect((await store.reader.sessionEvents(sessionId, expected)).map((e) => e.event.id)).toEqual(expected)
    }
  })

  it('compares id columns byte-wise by declaration: COLLATE "C" on PostgreSQL, BINARY on SQLite', async () => {
    const store = await openTestStore()
    if (onPostgres) {
      const schema = await schemaOf(store)
      const { rows } = await sql<{ table_name: string; column_name: string; collation_name: string | null }>`
        select table_name, column_name, collation_name from information_schema.columns
        where table_schema = ${schema} and (column_name = 'id' or column_name like '%\_id') and data_type = 'text'`.execute(
        store.db,
      )
      expect(rows.length).toBeGreaterThanOrEqual(25)
      for (const row of rows)
        expect(`${row.table_name}.${row.column_name} ${row.collation_name}`).toBe(
          `${row.table_name}.${row.column_name} C`,
        )
    } else {
      // SQLite's default collation is BINARY; no table may declare another.
      const { rows } = await sql<{ sql: string }>`select sql from sqlite_master where type = 'table'`.execute(store.db)
      expect(rows.length).toBeGreaterThanOrEqual(11)
      for (const row of rows) expect(row.sql).not.toMatch(/collate/i)
    }
  })
})
