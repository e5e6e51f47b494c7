import { userInfo } from 'node:os'
import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import { RateLimiterMemory, RateLimiterPostgres } from 'rate-limiter-flexible'
import type { Database } from './db.js'
import { reportingUnavailable } from './dialect.js'
import { PostgresFeed } from './feed.js'
import type { SqlReaderOptions } from './reader.js'
import { SqlStore } from './sql-store.js'
import { PostgresStreamSlots } from './stream-slots.js'

// PostgreSQL (node-postgres): the store when a deployment outgrows one machine. Several API
// processes share one database; each has a pool of its own.

/** The PostgreSQL connection pool of one API process, from the Config (config.ts), as openStore gives it. */
export interface PoolSettings {
  /** DATABASE_POOL_MAX: connections this process opens at most. */
  max: number
  /** DATABASE_POOL_TIMEOUT_MS: how long a request waits for a connection before it gets a 503. */
  acquireTimeoutMs: number
  /** DATABASE_IDLE_TIMEOUT_MS: an idle connection is closed after this long. */
  idleTimeoutMs: number
  /** DATABASE_STATEMENT_TIMEOUT_MS: the server cancels a statement that runs longer (0: never). */
  statementTimeoutMs: number
}

// node-postgres returns int8 (count(*), sums, sizes) as strings; PGlite returns numbers. The
// store wants numbers from both, and every int8 it reads is far below 2^53.
const INT8_OID = 20
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
}

/**
 * A URL without a user means the operating system's user, as for psql; node-postgres takes it
 * from $USER only, which a service manager or CI may not set. It reads PGUSER before this
 * default, so PGUSER still wins.
 */
export function defaultToOsUser(): void {
  if (!pg.defaults.user) pg.defaults.user = userInfo().username
}

export function openPostgres(url: string, settings: PoolSettings, applicationName: string): SqlStore {
  defaultToOsUser()
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    connectionTimeoutMillis: settings.acquireTimeoutMs,
    idleTimeoutMillis: settings.idleTimeoutMs,
    ...(settings.statementTimeoutMs > 0 && { statement_timeout: settings.statementTimeoutMs }),
    keepAlive: true,
    application_name: applicationName,
    types: pgTypes,
  })
  // A connection that the server or the network drops emits "error": on the pool when it is
  // idle, on the client when it is checked out. Unheard, either would end the process. The
  // query in flight fails on its own (and becomes a 503), and the pool replaces the connection
  // when it is next needed, so there is nothing to do here but not crash.
  pool.on('error', () => {})
  pool.on('connect', (client) => client.on('error', () => {}))
  const slots: PostgresStreamSlots[] = []
  const waits = new ConnectionWaits(pool)
  const db = new Kysely<Database>({ dialect: reportingUnavailable(new PostgresDialect({ pool: waits.pool })) })
  return new SqlStore({
    dialect: 'postgres',
    db,
    runsVersion: postgresRunsVersion(db),
    // One limit per key for all the processes over this database; a process that cannot reach
    // the table for a moment counts in memory meanwhile (the library's insurance limiter).
    rateLimiter: ({ points, durationSeconds }) =>
      new RateLimiterPostgres({
        storeClient: pool,
        tableName: 'rate_limits',
        tableCreated: true,
        points,
        duration: durationSeconds,
        keyPrefix: 'api_key',
        insuranceLimiter: new RateLimiterMemory({ points, duration: durationSeconds }),
      }),
    connectionWaitMs: () => waits.oldestMs(),
    // One cap per key for all the processes over this database (stream-slots.ts).
    streamSlots: (perKey) => {
      const made = new PostgresStreamSlots(
        { connectionString: url, application_name: `${applicationName} (streams)`, keepAlive: true },
        perKey,
      )
      slots.push(made)
      return made
    },
    onClose: async () => {
      await Promise.all(slots.map((s) => s.close()))
    },
    feed: new PostgresFeed({ connectionString: url, application_name: `${applicationName} (listen)`, keepAlive: true }),
  })
}

/**
 * The requests waiting for a connection of the pool, as Kysely asks it for them: how long the
 * oldest has waited is what load shedding reads (middleware/shed-load.ts). The pool's own count
 * of waiters says how many, not since when.
 */
class ConnectionWaits {
  /** Since when each waits, oldest first (a Set keeps the order things were added in). */
  readonly #since = new Set<{ at: number }>()
  readonly pool: Pick<pg.Pool, 'connect' | 'end'>

  constructor(pool: pg.Pool) {
    this.pool = {
      connect: (async () => {
        const wait = { at: performance.now() }
        this.#since.add(wait)
        try {
          return await pool.connect()
        } finally {
          this.#since.delete(wait)
        }
      }) as pg.Pool['connect'],
      end: () => pool.end(),
    }
  }

  oldestMs(): number {
    for (const wait of this.#since) return performance.now() - wait.at
    return 0
  }
}

/**
 * The runs' version on PostgreSQL: the count migration 5's triggers keep, read with each page of
 * ids (one round trip for a page), and on its own where there is no page (a single event).
 */
export function postgresRunsVersion(db: Kysely<Database>): SqlReaderOptions {
  return {
    versionWithPage: true,
    runsVersion: async () => {
      const row = await db.selectFrom('run_changes').select('n').where('id', '=', 1).executeTakeFirst()
      return row === undefined ? undefined : String(row.n)
    },
  }
}
