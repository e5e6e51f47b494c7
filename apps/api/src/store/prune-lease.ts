import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Kysely } from 'kysely'
import type { Database } from './db.js'

// One pruner at a time, whatever the number of processes over one database: a lease, a row of
// `leases` (migration 7) that says who prunes and until when. It is taken by an UPDATE that only
// matches a lease that is free (its time is past) or already the taker's, so two processes
// cannot both take it; the holder renews it before each step of its run, and gives it back when
// the run ends. A pruner that dies stops renewing: its lease runs out and the next process whose
// turn comes takes over. The same on SQLite and PostgreSQL (an advisory lock would need a
// session that a transaction-mode pooler does not keep).
//
// Times are the processes' clocks (the tests inject theirs): the clocks of the processes over one
// database must agree to well within TTL_MS, which event ids already ask of them.

/** How long a lease holds without being renewed: a dead pruner's work resumes within this. */
export const TTL_MS = 2 * 60_000

export class LeaseLostError extends Error {
  override name = 'LeaseLostError'
}

export interface LeaseOptions {
  /** Which job: one row of `leases`. Default: prune. */
  name?: string
  /** Who takes it. Default: this host, process and a random part. */
  holder?: string
  now?: () => Date
  ttlMs?: number
}

export class Lease {
  readonly name: string
  readonly holder: string
  readonly #db: Kysely<Database>
  readonly #now: () => Date
  readonly #ttlMs: number

  constructor(db: Kysely<Database>, options: LeaseOptions = {}) {
    this.#db = db
    this.name = options.name ?? 'prune'
    this.holder = options.holder ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
    this.#now = options.now ?? (() => new Date())
    this.#ttlMs = options.ttlMs ?? TTL_MS
  }

  /**
   * Takes the lease if it is free; true when this holder has it now. `unlessRanWithinMs`: not if
   * the job last finished more recently than that (a schedule that N processes keep, run once).
   */
  async take(options: { unlessRanWithinMs?: number } = {}): Promise<boolean> {
    const now = this.#now()
    let update = this.#db
      .updateTable('leases')
      .set({ holder: this.holder, expires_at: new Date(now.getTime() + this.#ttlMs).toISOString() })
      .where('name', '=', this.name)
      .where((eb) => eb.or([eb('expires_at', '<', now.toISOString()), eb('holder', '=', this.holder)]))
    if (options.unlessRanWithinMs !== undefined)
      update = update.where('last_run_at', '<=', new Date(now.getTime() - options.unlessRanWithinMs).toISOString())
    const result = await update.executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  /** Keeps the lease for another TTL; throws LeaseLostError when another holder took it meanwhile. */
  async renew(): Promise<void> {
    const result = await this.#db
      .updateTable('leases')
      .set({ expires_at: new Date(this.#now().getTime() + this.#ttlMs).toISOString() })
      .where('name', '=', this.name)
      .where('holder', '=', this.holder)
      .executeTakeFirst()
    if (Number(result.numUpdatedRows) === 0) throw new LeaseLostError(`the ${this.name} lease was taken over`)
  }

  /** Gives the lease back, free at once; `ran`: the job ran to its end (the schedule counts from now). */
  async give(options: { ran: boolean }): Promise<void> {
    const now = this.#now().toISOString()
    await this.#db
      .updateTable('leases')
      .set({ expires_at: new Date(0).toISOString(), ...(options.ran && { last_run_at: now }) })
      .where('name', '=', this.name)
      .where('holder', '=', this.holder)
      .execute()
  }

  /** The lease as the database has it. */
  async state(): Promise<{ holder: string; expiresAt: string; lastRunAt: string } | undefined> {
    const row = await this.#db.selectFrom('leases').selectAll().where('name', '=', this.name).executeTakeFirst()
    return row && { holder: row.holder, expiresAt: row.expires_at, lastRunAt: row.last_run_at }
  }
}
