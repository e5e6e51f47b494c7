// The shape of one migration: its version, its name, and what it does to the schema.
import type { Kysely } from 'kysely'
import type { DialectName } from '../dialect.js'

export interface Migration {
  version: number
  name: string
  /** Runs on its own once the migrations before it have committed, for what a transaction refuses (VACUUM). */
  outsideTransaction?: boolean
  up(db: Kysely<any>, dialect: DialectName): Promise<void>
}
