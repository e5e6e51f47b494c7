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
// A key is kept as a 128-bit hash of the instance and the key, the request as the first 128 bits
// of its fingerprint, the time as milliseconds: an answer costs about a hundred bytes, whatever
// the request wrote.
//
// While a write holds a key, another request with it is told to come back (409): on this process
// the middleware knows; across processes, PostgreSQL's advisory lock on the key's hash, taken
// without waiting; on SQLite the write's transaction holds the database, and the other request
// waits for it and then finds its answer.

/** How long an answer is kept for replaying: a day, as Stripe keeps them. */
export const KEEP_MS = 24 * 60 * 60 * 1000

/** A claim as the store keeps it. */
export interface ClaimedKey {
  /** The instance and the key, hashed: the answer's primary key. */
  keyHash: Buffer
  /** PostgreSQL's advisory lock on the key while a write holds it: the hash's first 64 bits. */
  lock: string
  /** The first 128 bits of the request's fingerprint. */
  fingerprint: Buffer
  /** The status the write's success answers with. */
  status: number
}

export function claimedKey(claim: IdempotencyClaim): ClaimedKey {
  const keyHash = createHash('sha256').update(`${claim.instanceId}\n${claim.key}`).digest().subarray(0, 16)
  return {
    keyHash,
    lock: keyHash.readBigInt64BE(0).toString(),
    fingerprint: Buffer.from(claim.fingerprint.slice(0, 32), 'hex'),
    status: claim.status,
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

  constructor(db: Kysely<Database>) {
    this.#db = db
  }

  async keepRefusal(
    claim: Omit<IdempotencyClaim, 'status'>,
    status: number,
    body: string,
    now = new Date(),
  ): Promise<KeptAnswer | undefined> {
    const key = claimedKey({ ...claim, status })
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
