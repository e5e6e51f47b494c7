// Migration 11: the answers of Idempotency-Keys that tell their time, kept in time order.
import type { Migration } from './migration.js'

/** A day: an answer made before the upgrade lives a day at most (store/idempotency.ts's KEEP_MS). */
const DAY_MS = 24 * 60 * 60 * 1000

export const idempotencyOrderMigrations: Migration[] = [
  {
    version: 11,
    name: 'Idempotency-Key answers of keys that tell their time (UUIDv7, OTLP) kept in time order',
    // From now on such a key's answer is kept under its time and 80 bits of its hash, not 128 bits
    // of the hash (store/idempotency.ts). An answer made before, under the hash, must still be
    // found by a retry of its request: a key that tells a time before `since_ms` is still kept by
    // its hash alone. A store that never held an instance has no answer: time order from the
    // start. Otherwise a day from now, past every answer made before the upgrade (one lives a
    // day) and every process still on the old code during a rolling upgrade, unless a client's
    // clock runs more than a day ahead.
    async up(db) {
      await db.schema
        .createTable('idempotency_key_order')
        .addColumn('since_ms', 'bigint', (c) => c.notNull())
        .execute()
      const used = await db.selectFrom('instances').select('id').limit(1).executeTakeFirst()
      await db
        .insertInto('idempotency_key_order')
        .values({ since_ms: used === undefined ? 0 : Date.now() + DAY_MS })
        .execute()
    },
  },
]
