import type { Kysely } from 'kysely'
import type { Database } from './db.js'
import type { DialectName } from './dialect.js'

// The store a prune works on: what each of its steps (prune.ts, prune-events.ts,
// prune-sessions.ts) needs of it.

/** What a prune needs of the store. */
export interface PrunableStore {
  readonly dialect: DialectName
  readonly db: Kysely<Database>
  readonly idempotencyKeys: { expire(before: Date): Promise<number> }
}
