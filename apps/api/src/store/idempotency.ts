import type { Kysely } from 'kysely'
import type { Database } from './db.js'

// The answers to requests sent with an Idempotency-Key (the IETF draft's semantics; the
// middleware is middleware/idempotency.ts). A key is taken by inserting its row, so two
// requests with one key, on any number of processes, cannot both run: the second finds the row.

/** How long an answer is kept for replaying: a day, as Stripe keeps them. */
export const KEEP_MS = 24 * 60 * 60 * 1000
/**
 * How long a request may hold its key before another with the same key takes it over: a process
 * that died mid-request leaves its key held, and the client's retries must get through.
 */
export const HOLD_MS = 60 * 1000

export type Claim =
  /** The key is this request's now: run it, then complete() or release(). */
  | { kind: 'claimed' }
  /** The first request with this key was answered: send its answer again. */
  | { kind: 'answered'; status: number; body: string }
  /** Another request with this key is running. */
  | { kind: 'in_flight' }
  /** The key was used with another request (another method, path or body). */
  | { kind: 'mismatch' }

export class IdempotencyKeys {
  readonly #db: Kysely<Database>

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async claim(instanceId: string, key: string, fingerprint: string, now = new Date()): Promise<Claim> {
    const at = now.toISOString()
    for (let attempt = 0; attempt < 3; attempt++) {
      const inserted = await this.#db
        .insertInto('idempotency_keys')
        .values({ instance_id: instanceId, key, fingerprint, status: null, body: null, created_at: at, locked_at: at })
        .onConflict((oc) => oc.columns(['instance_id', 'key']).doNothing())
        .executeTakeFirst()
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return { kind: 'claimed' }
      const row = await this.#db
        .selectFrom('idempotency_keys')
        .selectAll()
        .where('instance_id', '=', instanceId)
        .where('key', '=', key)
        .executeTakeFirst()
      if (!row) continue // released in between: try again
      if (Date.parse(row.created_at) < now.getTime() - KEEP_MS) {
        // Kept long enough: the key is free again.
        await this.#db
          .deleteFrom('idempotency_keys')
          .where('instance_id', '=', instanceId)
          .where('key', '=', key)
          .where('created_at', '=', row.created_at)
          .execute()
        continue
      }
      if (row.fingerprint !== fingerprint) return { kind: 'mismatch' }
      if (row.status !== null && row.body !== null) return { kind: 'answered', status: row.status, body: row.body }
      if (Date.parse(row.locked_at) >= now.getTime() - HOLD_MS) return { kind: 'in_flight' }
      // Held too long by a request that will not answer: take it over, unless another did first.
      const taken = await this.#db
        .updateTable('idempotency_keys')
        .set({ locked_at: at })
        .where('instance_id', '=', instanceId)
        .where('key', '=', key)
        .where('locked_at', '=', row.locked_at)
        .where('status', 'is', null)
        .executeTakeFirst()
      return Number(taken.numUpdatedRows) > 0 ? { kind: 'claimed' } : { kind: 'in_flight' }
    }
    return { kind: 'in_flight' }
  }

  /** Keeps the answer of a claimed key, for replaying. */
  async complete(instanceId: string, key: string, status: number, body: string): Promise<void> {
    await this.#db
      .updateTable('idempotency_keys')
      .set({ status, body })
      .where('instance_id', '=', instanceId)
      .where('key', '=', key)
      .execute()
  }

  /** Frees a claimed key without an answer (the request failed on the server's side: a retry may run it). */
  async release(instanceId: string, key: string): Promise<void> {
    await this.#db
      .deleteFrom('idempotency_keys')
      .where('instance_id', '=', instanceId)
      .where('key', '=', key)
      .where('status', 'is', null)
      .execute()
  }

  /** Forgets answers kept longer than KEEP_MS; returns how many. */
  async expire(now = new Date()): Promise<number> {
    const result = await this.#db
      .deleteFrom('idempotency_keys')
      .where('created_at', '<', new Date(now.getTime() - KEEP_MS).toISOString())
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
