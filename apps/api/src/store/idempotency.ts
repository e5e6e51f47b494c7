import { createHash } from 'node:crypto'
import { sql, type Kysely } from 'kysely'
import type { Database, IdempotencyAnswerTable } from './db.js'
import { dialectOf, writeTransaction } from './dialect.js'
import { IdempotencyKeyInUseError, IdempotencyKeyReusedError } from './errors.js'
import type { IdempotencyClaim, IdempotencyKeys, KeptAnswer } from './types.js'

// The answers to requests sent with an Idempotency-Key (the IETF draft's semantics; the
// middleware is middleware/idempotency.ts), kept as a record, not a copy: a write claims its key,
// writes, and keeps its answer in one transaction (claimIn, then keepAnswer), so there is never a
// key without its write or a write without its answer; a crash in between leaves neither. A
// success is kept as its status and the id of the resource it answered with (a replay shows that
// resource as the store holds it then); a refusal, which wrote nothing, as its status and body.
//
// A key is kept as 128 bits made from the instance and the key, the request as the first 128
// bits of its fingerprint, the time as milliseconds: an answer costs about a hundred bytes,
// whatever the request wrote. The 128 bits are a sha256 of the instance and the key, except for a
// key that tells when it was made (a UUIDv7, which the client sends; OTLP's, from its records'
// time): its first 48 bits are then that time in milliseconds and the other 80 the hash, so the
// answers of one moment sit side by side in the table's b-tree. A commit then writes the one page
// at its end for all of a turn's answers rather than a page of its own, anywhere in the tree, for
// each: on SQLite, whose WAL takes every page a commit touches whole, that page was a quarter of
// what a keyed append of 100 lines wrote (the writes suite, bench/README.md).
//
// While a write holds a key, another request with it is told to come back (409): on this process
// the middleware knows; across processes, PostgreSQL's advisory lock on the key's hash, taken
// without waiting; on SQLite the write's transaction holds the database, and the other request
// waits for it and then finds its answer.

/** How long an answer is kept for replaying: a day, as Stripe keeps them. */
export const KEEP_MS = 24 * 60 * 60 * 1000

/** A claim as the store keeps it. */
export interface ClaimedKey {
  /** The instance and the key, 128 bits (see above): the answer's primary key. */
  keyHash: Buffer
  /** PostgreSQL's advisory lock on the key while a write holds it: the first 64 bits of the hash. */
  lock: string
  /** The first 128 bits of the request's fingerprint. */
  fingerprint: Buffer
  /** The status the write's success answers with. */
  status: number
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

/** When a key says it was made, in ms since the epoch: a UUIDv7's first 48 bits (RFC 9562); undefined for any other key. */
export function timeOfKey(key: string): number | undefined {
  return UUID_V7.test(key) ? parseInt(key.slice(0, 8) + key.slice(9, 13), 16) : undefined
}

/**
 * The key as the store keeps it. `orderedSinceMs`: the keys that tell a time from this one on are
 * kept in time order (migration 11 says when that began, idempotency-order.ts); those before it
 * are kept by their hash alone, where an answer made before the upgrade is.
 */
export function claimedKey(claim: IdempotencyClaim, orderedSinceMs: number): ClaimedKey {
  const hash = createHash('sha256').update(`${claim.instanceId}\n${claim.key}`).digest()
  const ms = claim.orderMs ?? timeOfKey(claim.key)
  let keyHash: Buffer
  if (ms !== undefined && Number.isSafeInteger(ms) && ms >= orderedSinceMs && ms >= 0 && ms < 2 ** 48) {
    keyHash = Buffer.alloc(16)
    keyHash.writeUIntBE(ms, 0, 6)
    hash.copy(keyHash, 6, 0, 10)
  } else keyHash = hash.subarray(0, 16)
  return {
    keyHash,
    lock: hash.readBigInt64BE(0).toString(),
    fingerprint: Buffer.from(claim.fingerprint.slice(0, 32), 'hex'),
    status: claim.status,
  }
}

/**
 * The store's keys as it keeps them: claimedKey with the time migration 11 set, read once (open.ts
 * reads it when the store is migrated). Once read, a key is made at once, not after a turn of the
 * event loop, so that an append with a key queues for its commit where it came (append.ts).
 */
export class KeyOrder {
  readonly #db: Kysely<Database>
  #since: number | undefined
  #loading: Promise<number> | undefined

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  load(): Promise<number> {
    this.#loading ??= this.#db
      .selectFrom('idempotency_key_order')
      .select('since_ms')
      .executeTakeFirstOrThrow()
      .then((row) => (this.#since = Number(row.since_ms)))
      .catch((error: unknown) => {
        this.#loading = undefined
        throw error
      })
    return this.#loading
  }

  claimed(claim: IdempotencyClaim): ClaimedKey | Promise<ClaimedKey> {
    if (this.#since !== undefined) return claimedKey(claim, this.#since)
    return this.load().then((since) => claimedKey(claim, since))
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0

/** The answer a key holds for this request (`key`), or an IdempotencyKeyReusedError when it holds another request's. */
function answerTo(
  key: ClaimedKey,
  row: Pick<IdempotencyAnswerTable, 'fingerprint' | 'status' | 'resource_id' | 'refusal'>,
): KeptAnswer {
  if (!sameBytes(row.fingerprint, key.fingerprint)) throw new IdempotencyKeyReusedError()
  return { status: Number(row.status), resourceId: row.resource_id, refusal: row.refusal }
}

/**
 * Claims a key in a write's transaction: undefined when it is free (the write goes on, then
 * keeps its answer with keepAnswer), or the answer it holds for this same request. A key held by
 * a write in flight on another process is an IdempotencyKeyInUseError; one that came with another
 * request, an IdempotencyKeyReusedError. An answer older than KEEP_MS is gone, whether or not the
 * pruner has removed it yet.
 */
export async function claimIn(trx: Kysely<Database>, key: ClaimedKey, now: Date): Promise<KeptAnswer | undefined> {
  if (dialectOf(trx) === 'postgres') {
    const { rows } = await sql<{
      locked: boolean
    }>`select pg_try_advisory_xact_lock(${key.lock}::bigint) as locked`.execute(trx)
    if (!rows[0]?.locked) throw new IdempotencyKeyInUseError()
  }
  const row = await trx
    .selectFrom('idempotency_answers')
    .select(['fingerprint', 'status', 'resource_id', 'refusal', 'created_ms'])
    .where('key_hash', '=', key.keyHash)
    .executeTakeFirst()
  if (!row) return undefined
  if (Number(row.created_ms) < now.getTime() - KEEP_MS) {
    await trx.deleteFrom('idempotency_answers').where('key_hash', '=', key.keyHash).execute()
    return undefined
  }
  return answerTo(key, row)
}

/** Keeps a write's answer, in its transaction: its status, and the resource it answered with or the refusal it sent. */
export async function keepAnswer(
  trx: Kysely<Database>,
  key: ClaimedKey,
  answer: { resourceId: string | null; refusal?: string },
  now: Date,
): Promise<void> {
  await trx
    .insertInto('idempotency_answers')
    .values({
      created_ms: now.getTime(),
      status: key.status,
      key_hash: key.keyHash,
      fingerprint: key.fingerprint,
      resource_id: answer.resourceId,
      refusal: answer.refusal ?? null,
    })
    .execute()
}

export class SqlIdempotencyKeys implements IdempotencyKeys {
  readonly #db: Kysely<Database>
  readonly #order: KeyOrder

  constructor(db: Kysely<Database>, order: KeyOrder) {
    this.#db = db
    this.#order = order
  }

  async keepRefusal(
    claim: Omit<IdempotencyClaim, 'status'>,
    status: number,
    body: string,
    now = new Date(),
  ): Promise<KeptAnswer | undefined> {
    const key = await this.#order.claimed({ ...claim, status })
    return writeTransaction(this.#db, async (trx) => {
      // A write in flight with the key on another process keeps its answer first: wait for it.
      if (dialectOf(trx) === 'postgres') await sql`select pg_advisory_xact_lock(${key.lock}::bigint)`.execute(trx)
      const row = await trx
        .selectFrom('idempotency_answers')
        .select(['fingerprint', 'status', 'resource_id', 'refusal'])
        .where('key_hash', '=', key.keyHash)
        .where('created_ms', '>=', now.getTime() - KEEP_MS)
        .executeTakeFirst()
      if (row) return answerTo(key, row)
      await trx.deleteFrom('idempotency_answers').where('key_hash', '=', key.keyHash).execute()
      await keepAnswer(trx, key, { resourceId: null, refusal: body }, now)
      return undefined
    })
  }

  async expire(before: Date = new Date(Date.now() - KEEP_MS)): Promise<number> {
    const result = await this.#db
      .deleteFrom('idempotency_answers')
      .where('created_ms', '<', before.getTime())
      .executeTakeFirst()
    return Number(result.numDeletedRows)
  }
}
