// The migration runner: the migrations in order, and migrate(), which applies those not yet applied.
import { type Kysely } from 'kysely'
import type { Database } from './db.js'
import { dialectOf, inMigrationTransaction } from './dialect.js'
import { ensureEventPartitions } from './retention-partitions.js'
import { errorEventsIndexMigrations } from './migrations/error-events-index.js'
import { eventsPrimaryKeyMigrations } from './migrations/events-primary-key.js'
import { filterIndexesMigrations } from './migrations/filter-indexes.js'
import { idempotencyAppendMigrations } from './migrations/idempotency-append.js'
import { idempotencyOrderMigrations } from './migrations/idempotency-order.js'
import { initialSchemaMigrations } from './migrations/initial-schema.js'
import type { Migration } from './migrations/migration.js'
import { notifyAfterCommitMigrations } from './migrations/notify-after-commit.js'
import { retentionMigrations } from './migrations/retention.js'

// Versioned migrations, applied in order at start, in one transaction, and recorded in
// schema_migrations. Written once with Kysely's schema builder, so they run on SQLite and
// PostgreSQL alike; what must differ comes from dialect.ts. Never edit a migration that has
// shipped: add the next one.

export type { Migration }

export const migrations: Migration[] = [
  ...initialSchemaMigrations,
  ...idempotencyAppendMigrations,
  ...retentionMigrations,
  ...notifyAfterCommitMigrations,
  ...idempotencyOrderMigrations,
  ...errorEventsIndexMigrations,
  ...eventsPrimaryKeyMigrations,
  ...filterIndexesMigrations,
]

/**
 * Applies the migrations the database has not seen yet, in order; returns how many ran. They run
 * in one transaction, so a failure leaves the schema as it was, and API processes that start
 * together migrate one after the other (see inMigrationTransaction); one that cannot run in a
 * transaction (SQLite's VACUUM) runs on its own, once those before it have committed. Then, on
 * PostgreSQL, the partitions of the days ahead are made (retention-partitions.ts), whatever
 * process starts, so that writes find them. `upTo`: no migration past this version (for tests
 * of a migration).
 */
export async function migrate(db: Kysely<Database>, options: { upTo?: number } = {}): Promise<number> {
  const dialect = dialectOf(db)
  let ran = 0
  for (;;) {
    const outside = await inMigrationTransaction(db, async (trx) => {
      await trx.schema
        .createTable('schema_migrations')
        .ifNotExists()
        .addColumn('version', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('applied_at', 'text', (c) => c.notNull())
        .execute()
      const applied = new Set(
        (await trx.selectFrom('schema_migrations').select('version').execute()).map((r) => Number(r.version)),
      )
      for (const migration of migrations) {
        if (applied.has(migration.version) || migration.version > (options.upTo ?? Infinity)) continue
        if (migration.outsideTransaction) return migration
        await migration.up(trx, dialect)
        await trx
          .insertInto('schema_migrations')
          .values({ version: migration.version, name: migration.name, applied_at: new Date().toISOString() })
          .execute()
        ran += 1
      }
      return undefined
    })
    if (!outside) break
    await outside.up(db, dialect)
    // Another process starting at the same time may have run it too: it is written to be run twice.
    await db
      .insertInto('schema_migrations')
      .values({ version: outside.version, name: outside.name, applied_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('version').doNothing())
      .execute()
    ran += 1
  }
  if (dialect === 'postgres') await ensureEventPartitions(db, { now: new Date() })
  return ran
}
