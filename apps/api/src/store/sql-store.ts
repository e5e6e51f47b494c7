import type { Kysely } from 'kysely'
import { SqlAdminWriter } from './admin-writer.js'
import { postgresAppend, type AppendOne } from './append.js'
import { SqlApiWriter } from './api-writer.js'
import type { Database } from './db.js'
import type { DialectName } from './dialect.js'
import { LocalFeed, type EventFeed } from './feed.js'
import { KeyOrder, SqlIdempotencyKeys } from './idempotency.js'
import { PreparedQueries, type FastRead } from './prepared.js'
import { SqlReader, type SqlReaderOptions } from './reader.js'
import { SqlSeedWriter } from './seed-writer.js'
import type { Store } from './types.js'

// The store over one database (SQLite or PostgreSQL, through Kysely): its reader, its writers by
// job, and what an operator asks of it. open.ts makes one for a DATABASE_URL.

export interface SqlStoreOptions {
  dialect: DialectName
  db: Kysely<Database>
  /** Called by close(), after Kysely is destroyed (for resources Kysely does not own). */
  onClose?: () => Promise<void> | void
  /** Runs reads synchronously, around Kysely's driver (embedded SQLite: sqlite.ts). */
  fastRead?: FastRead
  /** How the reader knows that runs changed (reader.ts); without it, runs are read every time. */
  runsVersion?: SqlReaderOptions
  /** Wake-ups of the live tail across processes (feed.ts); default: this process's writes only. */
  feed?: EventFeed
  /** A rate limiter that all processes over this database share (PostgreSQL). */
  rateLimiter?: Store['rateLimiter']
  /** The API's append in one commit (append.ts); PostgreSQL's function unless said (SQLite: sqlite.ts). */
  append?: AppendOne
  /** How long the oldest request waiting for a connection has waited (PostgreSQL's pool). */
  connectionWaitMs?: () => number
  /** A cap on streams per key that all processes over this database share (PostgreSQL). */
  streamSlots?: Store['streamSlots']
}

export class SqlStore implements Store {
  readonly dialect: DialectName
  readonly db: Kysely<Database>
  readonly reader: SqlReader
  readonly writer: SqlApiWriter
  readonly admin: SqlAdminWriter
  readonly seeding: SqlSeedWriter
  readonly idempotencyKeys: SqlIdempotencyKeys
  /** How the store keeps Idempotency-Keys: read once it is migrated (open.ts). */
  readonly keyOrder: KeyOrder
  readonly feed: EventFeed
  readonly rateLimiter: Store['rateLimiter']
  readonly connectionWaitMs: Store['connectionWaitMs']
  readonly streamSlots: Store['streamSlots']
  readonly #onClose: SqlStoreOptions['onClose']

  constructor(options: SqlStoreOptions) {
    this.dialect = options.dialect
    this.db = options.db
    this.#onClose = options.onClose
    this.reader = new SqlReader(options.db, new PreparedQueries(options.db, options.fastRead), {
      ...options.runsVersion,
      // PostgreSQL's filter indexes begin with the run or server session (migration 14).
      filterIndexesWithoutSession: options.dialect === 'postgres',
    })
    this.feed = options.feed ?? new LocalFeed()
    this.rateLimiter = options.rateLimiter
    this.connectionWaitMs = options.connectionWaitMs
    this.streamSlots = options.streamSlots
    this.keyOrder = new KeyOrder(options.db)
    this.writer = new SqlApiWriter(options.db, this.feed, options.append ?? postgresAppend(options.db), this.keyOrder)
    this.admin = new SqlAdminWriter(options.db)
    this.seeding = new SqlSeedWriter(options.db, this.feed)
    this.idempotencyKeys = new SqlIdempotencyKeys(options.db, this.keyOrder)
  }

  async ping(): Promise<void> {
    await this.db.selectFrom('schema_migrations').select('version').limit(1).execute()
  }

  async close(): Promise<void> {
    await this.feed.close()
    await this.db.destroy()
    await this.#onClose?.()
  }

  /** Whether nothing was ever written (no instance): the server seeds demo data then. */
  async isEmpty(): Promise<boolean> {
    return (await this.db.selectFrom('instances').select('id').limit(1).executeTakeFirst()) === undefined
  }

  /** The oldest session of an instance, for the demo's `curl` line. */
  async firstSession(instanceId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .select('id')
      .where('instance_id', '=', instanceId)
      .orderBy('id', 'asc')
      .limit(1)
      .executeTakeFirst()
    return row?.id
  }
}
