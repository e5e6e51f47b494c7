import { randomBytes } from 'node:crypto'
import { sql } from 'kysely'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createApp } from '../src/app.js'
import { seed, type SeedSummary } from '../src/seed.js'
import { openStore } from '../src/store/open.js'
import type { Config } from '../src/config.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { StoreUnavailableError } from '../src/store/types.js'
import { backend, killConnections, networkPostgres } from './backend.js'
import { silent, testSettings } from './helpers.js'
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js'

// The PostgreSQL store when the database misbehaves, caused for real: a database that goes
// away and comes back (a TCP proxy in front of it is stopped and started), connections that the
// database ends (pg_terminate_backend on a server; on PGlite its socket server drops them), a
// pool with no connection free, a statement that runs too long. Each must be a clean 503 that
// the store recovers from by itself.

const target = (await networkPostgres())!
const onServer = backend === 'postgres'
console.log(`postgres-faults: the store over a TCP proxy in front of ${target.kind}`)
if (!onServer) {
  console.warn(
    'postgres-faults: the statement-timeout test needs a PostgreSQL server (PGlite has no statement timer): ' +
      'TEST_DATABASE_URL=postgres://127.0.0.1:5432/test npx vitest run --project postgres test/postgres-faults.test.ts',
  )
}

describe('PostgreSQL faults, behind a TCP proxy', () => {
  let proxy: TcpProxy
  let summary: SeedSummary
  const stores: SqlStore[] = []

  /** A store over the proxy, in the test schema, with its own application_name to find its connections by. */
  async function open(settings: Partial<Config> = {}) {
    const name = `se_faults_${randomBytes(4).toString('hex')}`
    const url = new URL(target.url)
    url.host = `127.0.0.1:${proxy.port}`
    url.searchParams.set('application_name', name)
    const store = await openStore(url.toString(), { databasePoolTimeoutMs: 1_000, ...settings })
    stores.push(store)
    return { store, name, app: createApp({ store, logger: silent, config: { ...testSettings, keyCacheMs: 0 } }) }
  }

  const list = (app: ReturnType<typeof createApp>) =>
    app.request(`/sessions/${summary.instances[0]!.sessions[0]!.id}/events?limit=3`, {
      headers: { Authorization: `Bearer ${summary.instances[0]!.secret_key}` },
    })

  async function expect503(res: Response) {
    expect(res.status).toBe(503)
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(await res.json()).toMatchObject({ __typename: 'error', ok: false, status: 503 })
  }

  beforeAll(async () => {
    proxy = await startTcpProxy({ host: target.host, port: target.port })
    const { store } = await open()
    summary = await seed(store, { sessions: 1, events: 20 })
  })
  afterAll(async () => {
    for (const store of stores) await store.close().catch(() => {})
    await proxy?.close()
  })

  it('answers 503 while the database is down, /readyz says so, and recovers when it is back', async () => {
    const { app } = await open()
    expect((await list(app)).status).toBe(200)

    await proxy.down()
    await expect503(await list(app))
    const ready = await app.request('/readyz')
    expect(ready.status).toBe(503)
    expect(await ready.json()).toMatchObject({ status: 'unavailable', store: 'postgres' })

    await proxy.up()
    expect((await list(app)).status).toBe(200)
    expect((await app.request('/readyz')).status).toBe(200)
  })

  it('survives its connections being killed, idle or in the middle of a transaction', async () => {
    const { store, name, app } = await open({ databasePoolMax: 2 })
    expect((await list(app)).status).toBe(200)
    let killed!: () => void
    const afterKill = new Promise<void>((resolve) => (killed = resolve))
    let inside!: () => void
    const started = new Promise<void>((resolve) => (inside = resolve))
    // A connection checked out of the pool, in a transaction, when the database ends it.
    const inFlight = store.db
      .transaction()
      .execute(async (trx) => {
        await sql`select 1`.execute(trx)
        inside()
        await afterKill
        await sql`select 1`.execute(trx)
      })
      .catch((error: unknown) => error)
    await started
    expect(await killConnections(name)).toBeGreaterThanOrEqual(1)
    await new Promise((r) => setTimeout(r, 100))
    killed()
    expect(await inFlight).toBeInstanceOf(StoreUnavailableError)
    // The pool drops the dead connections and opens new ones: no restart, no crash, no 500.
    for (let i = 0; i < 3; i++) expect((await list(app)).status).toBe(200)
  })

  it('answers 503 when no connection frees up in time, and serves again once one does', async () => {
    const { store, app } = await open({ databasePoolMax: 1, databasePoolTimeoutMs: 300 })
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const holding = store.db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx)
      await held
    })
    await new Promise((r) => setTimeout(r, 50))
    const started = Date.now()
    await expect503(await list(app))
    expect(Date.now() - started).toBeLessThan(3_000)
    release()
    await holding
    expect((await list(app)).status).toBe(200)
  })

  it.runIf(onServer)(
    'cancels a statement past DATABASE_STATEMENT_TIMEOUT_MS as unavailable, not as a bug',
    async () => {
      const { store } = await open({ databaseStatementTimeoutMs: 200 })
      await expect(sql`select pg_sleep(2)`.execute(store.db)).rejects.toBeInstanceOf(StoreUnavailableError)
      // A wrong query stays a wrong query (a 500), not a 503.
      const wrong = await sql`select * from no_such_table`.execute(store.db).catch((e: unknown) => e)
      expect(wrong).not.toBeInstanceOf(StoreUnavailableError)
      expect((wrong as { code?: string }).code).toBe('42P01')
    },
  )
})

describe('the pool settings', () => {
  it('turn an unreachable database into StoreUnavailableError at once', async () => {
    const error = await openStore('postgres://127.0.0.1:1/nothing', { databasePoolTimeoutMs: 2_000 }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StoreUnavailableError)
    expect((error as Error).message).toMatch(/ECONNREFUSED|unavailable/)
  })
})
