import pg from 'pg'
import { asStoreError } from './dialect.js'

// The cap on the streams an API key holds open at once (STREAMS_PER_KEY), across every process
// over one PostgreSQL database, as the rate limit is. A stream holds a slot: one of the key's
// `perKey` advisory locks (the key's hash, the slot's number), taken with pg_try_advisory_lock on
// one connection of this process and let go when the stream ends. The database keeps the count:
// no table, and a process that dies lets go of its slots with its connection. What it costs: a
// lock in the server's lock table per stream open, which holds max_locks_per_transaction ×
// (max_connections + max_prepared_transactions) locks in all (6,400 by default): a deployment
// that holds more streams than that open at once raises max_locks_per_transaction.

/** How many streams each API key holds at once, against a cap: this process's (follow.ts) or every process's (here). */
export interface StreamCap {
  readonly perKey: number
  /** Takes a slot for the key; false when it holds `perKey` already. */
  take(keyId: string): boolean | Promise<boolean>
  give(keyId: string): void
}

/** Slots tried by one query, at most. */
const SLOTS_PER_QUERY = 64

export class PostgresStreamSlots implements StreamCap {
  readonly #config: pg.ClientConfig
  /** The slots this process holds, per key. */
  readonly #held = new Map<string, Set<number>>()
  #client: Promise<pg.Client> | undefined
  /** One lock query at a time: a slot is marked held before the next query chooses among the rest. */
  #queue: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor(
    config: pg.ClientConfig,
    readonly perKey: number,
  ) {
    this.#config = config
  }

  take(keyId: string): Promise<boolean> {
    return this.#serially(async () => {
      const held = this.#held.get(keyId) ?? new Set<number>()
      if (held.size >= this.perKey) return false
      const client = await this.#connected()
      // The slots this process does not hold (a lock taken twice by one connection is held
      // twice), in order, a batch at a time: the query locks the first one no other process
      // holds, and tries no further (the scan's filter runs row by row under the LIMIT). Asking
      // for every slot and passing over this process's own in SQL compared each with all of
      // them: a thousand takes in a row for one key took 370 ms that way, 289 this way.
      for (let next = 0; next < this.perKey; ) {
        const batch: number[] = []
        for (; next < this.perKey && batch.length < SLOTS_PER_QUERY; next++) if (!held.has(next)) batch.push(next)
        if (batch.length === 0) break
        const { rows } = await client.query<{ slot: number }>(
          `select slot from unnest($2::int[]) slot
            where pg_try_advisory_lock(hashtext(current_schema() || ':streams:' || $1), slot)
            limit 1`,
          [keyId, batch],
        )
        const slot = rows[0]?.slot
        if (slot !== undefined) {
          held.add(slot)
          this.#held.set(keyId, held)
          return true
        }
      }
      return false
    })
  }

  give(keyId: string): void {
    const held = this.#held.get(keyId)
    const slot = held?.values().next().value
    if (held === undefined || slot === undefined) return
    held.delete(slot)
    if (held.size === 0) this.#held.delete(keyId)
    // A failure leaves nothing to do: a connection lost has let go of every lock it held.
    void this.#serially(async () => {
      const client = await this.#connected()
      await client.query(`select pg_advisory_unlock(hashtext(current_schema() || ':streams:' || $1), $2::int)`, [
        keyId,
        slot,
      ])
    }).catch(() => {})
  }

  async close(): Promise<void> {
    this.#closed = true
    const client = this.#client
    this.#client = undefined
    await client?.then((c) => c.end()).catch(() => {})
  }

  #serially<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(run, run)
    this.#queue = result.catch(() => {})
    return result.then(undefined, (error: unknown) => {
      throw asStoreError(error)
    })
  }

  /** The connection, opened when first needed and again after it was lost (then the slots held are taken again). */
  #connected(): Promise<pg.Client> {
    if (this.#closed) return Promise.reject(new Error('Client was closed and is not queryable'))
    this.#client ??= (async () => {
      const client = new pg.Client(this.#config)
      const lost = () => {
        if (this.#client === opened) this.#client = undefined
        client.end().catch(() => {})
      }
      client.on('error', lost)
      client.on('end', lost)
      try {
        await client.connect()
      } catch (error) {
        lost()
        throw error
      }
      // Slots held through a lost connection were let go of: take them again where still free.
      for (const [keyId, slots] of this.#held) {
        for (const slot of slots) {
          await client.query(`select pg_try_advisory_lock(hashtext(current_schema() || ':streams:' || $1), $2::int)`, [
            keyId,
            slot,
          ])
        }
      }
      return client
    })()
    const opened = this.#client
    return opened
  }
}
