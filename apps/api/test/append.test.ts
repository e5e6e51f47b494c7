import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SQLite from 'better-sqlite3'
import { sql } from 'kysely'
import { afterAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { newId, nextId } from '../src/ids.js'
import { claimedKey, KEEP_MS } from '../src/store/idempotency.js'
import { openStore } from '../src/store/open.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, openTestStore, schemaOf } from './backend.js'
import { keyedWriter, silent, testSettings } from './helpers.js'

// The API's writes with an Idempotency-Key, one transaction each: the key claimed, the write
// done and the answer kept in one commit, so that a failure anywhere leaves neither a key without
// its write nor a write without its key; an answer is a record of a few dozen bytes, shown again
// from what the store holds, by an app that has never seen the first request; answers go after
// 24 hours. On PostgreSQL, the append is one function (migration 6), held to ids.ts here.

const dir = mkdtempSync(join(tmpdir(), 'session-events-append-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A seeded store that can be opened again, as a restarted app would: a file on SQLite, a schema on PostgreSQL. */
async function reopenable(name: string) {
  if (backend === 'sqlite') {
    const url = `sqlite:${join(dir, `${name}.db`)}`
    return { first: await openStore(url), open: () => openStore(url) }
  }
  const first = await openTestStore()
  const schema = await schemaOf(first)
  return { first, open: () => openTestStore({ schema }) }
}

async function world(store: SqlStore) {
  const { a, app, post } = await keyedWriter(store)
  const sessionId = ((await (await post('/sessions', {})).json()) as { id: string }).id
  const started = await post(`/sessions/${sessionId}/server-runs`, { type: 'hosted', server: { name: 'append-test' } })
  const runId = ((await started.json()) as { id: string }).id
  const events = async () =>
    Number(
      (
        await store.db
          .selectFrom('session_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('session_id', '=', sessionId)
          .executeTakeFirstOrThrow()
      ).n,
    )
  const answers = async () =>
    Number(
      (
        await store.db
          .selectFrom('idempotency_answers')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )
  const appendLines = (lines: number, key?: string) =>
    post(
      `/sessions/${sessionId}/events`,
      {
        server_run_id: runId,
        log_lines: Array.from({ length: lines }, (_, i) => ({ type: 'stdout', line: `line ${i} ${'x'.repeat(900)}` })),
      },
      key,
    )
  return { a, app, post, sessionId, runId, events, answers, appendLines }
}

/** A table made to fail every insert into it, for real, inside the writing transaction. */
async function failInserts(
  store: SqlStore,
  table: 'session_events' | 'idempotency_answers',
): Promise<() => Promise<void>> {
  if (onPostgres) {
    await sql
      .raw(
        `create function fail_insert() returns trigger language plpgsql as $$ begin raise exception 'inserts fail here'; end $$`,
      )
      .execute(store.db)
    await sql
      .raw(`create trigger fail_insert before insert on ${table} for each row execute function fail_insert()`)
      .execute(store.db)
    return async () => {
      await sql.raw(`drop trigger fail_insert on ${table}`).execute(store.db)
      await sql.raw('drop function fail_insert()').execute(store.db)
    }
  }
  await sql
    .raw(`create trigger fail_insert before insert on ${table} begin select raise(abort, 'inserts fail here'); end`)
    .execute(store.db)
  return async () => {
    await sql.raw('drop trigger fail_insert').execute(store.db)
  }
}

describe(`an Idempotency-Key and its write, in one commit (${backend})`, () => {
  it('a write that fails leaves no key, and an answer that cannot be kept leaves no write: the retry runs once', async () => {
    const store = await openTestStore()
    const w = await world(store)
    for (const table of ['session_events', 'idempotency_answers'] as const) {
      const key = `fails-in-${table}`
      const [eventsBefore, answersBefore] = [await w.events(), await w.answers()]
      const restore = await failInserts(store, table)
      try {
        expect((await w.appendLines(3, key)).status, table).toBe(500)
      } finally {
        await restore()
      }
      expect([await w.events(), await w.answers()], table).toEqual([eventsBefore, answersBefore])
      const retried = await w.appendLines(3, key)
      expect(retried.status, table).toBe(201)
      expect(retried.headers.get('idempotent-replayed'), table).toBeNull()
      expect([await w.events(), await w.answers()], table).toEqual([eventsBefore + 1, answersBefore + 1])
    }
    // The same for a write of several statements (a run started with its server and deployment).
    const restore = await failInserts(store, 'idempotency_answers')
    const servers = async () => (await store.db.selectFrom('servers').select('id').execute()).length
    const serversBefore = await servers()
    try {
      const start = await w.post(
        `/sessions/${w.sessionId}/server-runs`,
        { type: 'hosted', server: { name: 'x' } },
        'run',
      )
      expect(start.status).toBe(500)
    } finally {
      await restore()
    }
    expect(await servers()).toBe(serversBefore)
  })

  it('a replay, by an app that never saw the first request, shows the same status and resource as the store holds it', async () => {
    const { first, open } = await reopenable('restart')
    const w = await world(first)
    const appended = await w.appendLines(2, 'across-a-restart')
    const started = await w.post(
      `/sessions/${w.sessionId}/server-runs`,
      { type: 'external', server: { name: 's' } },
      'run',
    )
    const session = await w.post('/sessions', { metadata: { a: 1 } }, 'session')
    const answers = [appended, started, session]
    const texts = await Promise.all(answers.map((r) => r.text()))
    await first.close()

    const store = await open()
    const app = createApp({ store, logger: silent, config: testSettings })
    const again = (path: string, body: unknown, key: string) =>
      app.request(path, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${w.a.secret_key}`,
          'content-type': 'application/json',
          'Idempotency-Key': key,
        },
        body: JSON.stringify(body),
      })
    const replays = [
      await again(
        `/sessions/${w.sessionId}/events`,
        {
          server_run_id: w.runId,
          log_lines: Array.from({ length: 2 }, (_, i) => ({ type: 'stdout', line: `line ${i} ${'x'.repeat(900)}` })),
        },
        'across-a-restart',
      ),
      await again(`/sessions/${w.sessionId}/server-runs`, { type: 'external', server: { name: 's' } }, 'run'),
      await again('/sessions', { metadata: { a: 1 } }, 'session'),
    ]
    for (const [i, replay] of replays.entries()) {
      expect(replay.status).toBe(answers[i]!.status)
      expect(replay.headers.get('idempotent-replayed')).toBe('true')
      expect(await replay.text()).toBe(texts[i])
    }
    // The event's run is shown as it is now, as a GET shows it: stopped since.
    const stopped = await again(`/sessions/${w.sessionId}/server-runs/${w.runId}/stop`, { status: 'completed' }, 'stop')
    expect(stopped.status).toBe(200)
    const replayed = await again(
      `/sessions/${w.sessionId}/events`,
      {
        server_run_id: w.runId,
        log_lines: Array.from({ length: 2 }, (_, i) => ({ type: 'stdout', line: `line ${i} ${'x'.repeat(900)}` })),
      },
      'across-a-restart',
    )
    const event = (await replayed.json()) as { id: string; server_run: { status: string } }
    expect([replayed.status, event.id, event.server_run.status]).toEqual([201, JSON.parse(texts[0]!).id, 'completed'])
    const got = await app.request(`/sessions/${w.sessionId}/events/${event.id}`, {
      headers: { Authorization: `Bearer ${w.a.secret_key}` },
    })
    expect(await got.json()).toEqual(event)
    await store.close()
  })

  it('keeps an answer as a record of a few dozen bytes, whatever the request wrote', async () => {
    const store = await openTestStore()
    const w = await world(store)
    const before = await w.answers()
    const appended = await w.appendLines(100, 'a-big-append') // 100 lines of 900 characters: 90 KB
    expect(appended.status).toBe(201)
    expect(await w.answers()).toBe(before + 1)
    const row = await store.db
      .selectFrom('idempotency_answers')
      .selectAll()
      .where(
        'key_hash',
        '=',
        claimedKey({ instanceId: w.a.id, key: 'a-big-append', fingerprint: '', status: 201 }, 0).keyHash,
      )
      .executeTakeFirstOrThrow()
    expect(row.resource_id).toBe(((await appended.json()) as { id: string }).id)
    expect([Number(row.status), row.refusal]).toEqual([201, null])
    // The key and the request, each as 16 bytes; the time as 8; the event's id.
    const bytes = row.key_hash.length + row.fingerprint.length + 8 + 2 + Buffer.byteLength(row.resource_id!)
    expect(bytes).toBeLessThanOrEqual(70)
  })

  it('removes answers 24 hours after they were made (expire), and a key whose answer is older runs again', async () => {
    const store = await openTestStore()
    const w = await world(store)
    expect((await w.appendLines(1, 'expiring')).status).toBe(201)
    expect((await w.appendLines(1, 'kept')).status).toBe(201)
    // Nothing is 24 hours old yet.
    expect(await store.idempotencyKeys.expire()).toBe(0)
    // One answer made 25 hours ago: the pruner's call removes it and no other.
    const expiring = claimedKey({ instanceId: w.a.id, key: 'expiring', fingerprint: '', status: 201 }, 0).keyHash
    await store.db
      .updateTable('idempotency_answers')
      .set({ created_ms: Date.now() - KEEP_MS - 3_600_000 })
      .where('key_hash', '=', expiring)
      .execute()
    const answers = await w.answers()
    expect(await store.idempotencyKeys.expire()).toBe(1)
    expect(await w.answers()).toBe(answers - 1)
    const events = await w.events()
    const again = await w.appendLines(1, 'expiring')
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([201, null])
    expect(await w.events()).toBe(events + 1)
    // `before` says up to when: everything made before now goes.
    expect(await store.idempotencyKeys.expire(new Date(Date.now() + 1))).toBe(answers)

    // An answer past its 24 hours that the pruner has not removed yet is gone all the same.
    expect((await w.appendLines(1, 'stale')).status).toBe(201)
    await store.db
      .updateTable('idempotency_answers')
      .set({ created_ms: Date.now() - KEEP_MS - 1 })
      .execute()
    const stale = await w.appendLines(1, 'stale')
    expect([stale.status, stale.headers.get('idempotent-replayed')]).toEqual([201, null])
  })
})

describe.runIf(onPostgres)(`the append function of migration 6 (${backend})`, () => {
  it('counts an id up as ids.ts does', async () => {
    const store = await openTestStore()
    const base = newId('sessionEvent', Date.UTC(2025, 0, 1))
    const cases = [
      base,
      `${base.slice(0, -1)}9`,
      `${base.slice(0, -1)}Z`,
      `${base.slice(0, -1)}z`,
      `${base.slice(0, -3)}zzz`,
    ]
    for (const id of cases) {
      const { rows } = await sql<{ next: string }>`select next_event_id(${id}) as next`.execute(store.db)
      expect(rows[0]!.next, id).toBe(nextId(id))
    }
  })

  // PGlite is one session: a second store's transaction would hold it for the first's append too.
  it.runIf(backend === 'postgres')(
    'tells a key held by a write in flight on another process, without waiting for it',
    async () => {
      const store = await openTestStore()
      const w = await world(store)
      const other = await openTestStore({ schema: await schemaOf(store) })
      const { lock } = claimedKey({ instanceId: w.a.id, key: 'held-elsewhere', fingerprint: '', status: 201 }, 0)
      await other.db.transaction().execute(async (trx) => {
        await sql`select pg_advisory_xact_lock(${lock}::bigint)`.execute(trx)
        const meanwhile = await w.appendLines(1, 'held-elsewhere')
        expect(meanwhile.status).toBe(409)
        expect(await meanwhile.json()).toMatchObject({ code: 'idempotency_key_in_use' })
        expect(meanwhile.headers.get('retry-after')).toBe('1')
      })
      expect((await w.appendLines(1, 'held-elsewhere')).status).toBe(201)
    },
  )
})

describe.runIf(backend === 'sqlite')('appends of one turn of the event loop: one commit (SQLite)', () => {
  it('share one transaction, each undone alone when it fails, answered in the order they came', async () => {
    const { first: store } = await reopenable('group-commit')
    const w = await world(store)
    const file = join(dir, 'group-commit.db')
    const other = new SQLite(file)
    try {
      /** The WAL's frames (pages written) since it was last emptied; `empty` empties it. */
      const frames = (empty = false) =>
        (other.pragma(`wal_checkpoint(${empty ? 'TRUNCATE' : 'PASSIVE'})`) as { log: number }[])[0]!.log
      const lines = (text: string) => [{ type: 'stdout' as const, line: text }]
      const append = (text: string, serverRunId = w.runId, key?: string) =>
        store.writer.appendEvent({
          sessionId: w.sessionId,
          serverRunId,
          lines: lines(text),
          ...(key !== undefined && {
            claim: { instanceId: w.a.id, key, fingerprint: `${text}-request`, status: 201 },
          }),
        })

      // Eight appends one after another, then eight in one turn: the turn's share pages.
      frames(true)
      for (let i = 0; i < 8; i++) await append(`after ${i}`)
      const oneByOne = frames()
      frames(true)
      await Promise.all(Array.from({ length: 8 }, (_, i) => append(`together ${i}`)))
      const together = frames()
      expect(together).toBeLessThan(oneByOne / 2)

      // In one turn: an append that fails in the database, one to a run the session has not, a
      // key's second use (its answer, from the same turn's first), and the others.
      await sql
        .raw(
          `create trigger fail_some before insert on session_events when new.log_lines_json like '%fail-me%' begin select raise(abort, 'inserts fail here'); end`,
        )
        .execute(store.db)
      const settled = await Promise.allSettled([
        append('one', w.runId, 'same-key'),
        append('fail-me'),
        append('three', 'srr_000000000000000000000'),
        append('one', w.runId, 'same-key'),
        append('five'),
      ])
      await sql.raw('drop trigger fail_some').execute(store.db)
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled'])
      const [firstKeyed, , , again, five] = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined))
      expect(firstKeyed!.replayed).toBe(false)
      expect(again!.replayed).toBe(true)
      expect(again!.event!.id).toBe(firstKeyed!.event!.id)
      expect(firstKeyed!.event!.id < five!.event!.id).toBe(true)
      const stored = await store.db
        .selectFrom('session_events')
        .select(['id', 'log_lines_json'])
        .where('session_id', '=', w.sessionId)
        .where('id', '>=', firstKeyed!.event!.id)
        .orderBy('id')
        .execute()
      expect(stored.map((e) => JSON.parse(e.log_lines_json)[0].line)).toEqual(['one', 'five'])
    } finally {
      other.close()
      await store.close()
    }
  })
})
