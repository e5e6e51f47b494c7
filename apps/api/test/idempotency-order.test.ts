import { createHash } from 'node:crypto'
import { v4 as uuidv4, v7 as uuidv7 } from 'uuid'
import { describe, expect, it } from 'vitest'
import { claimedKey, timeOfKey } from '../src/store/idempotency.js'
import { migrate } from '../src/store/migrations.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, openTestStore, unmigratedStore } from './backend.js'
import { keyedWriter } from './helpers.js'

// Idempotency-Keys that tell their time (a UUIDv7, as the client sends; OTLP's, by its records'
// time) are kept under that time and 80 bits of their hash, so that the answers of one moment sit
// side by side in the table (store/idempotency.ts); every other key under 128 bits of its hash.
// An answer kept before the upgrade (migration 11) is still found by a retry of its request.

const sha256 = (text: string) => createHash('sha256').update(text).digest()
const claim = (key: string, orderMs?: number) => ({
  instanceId: 'ins_a',
  key,
  fingerprint: 'ab'.repeat(32),
  status: 201,
  ...(orderMs !== undefined && { orderMs }),
})

describe('where a key is kept', () => {
  it('a UUIDv7 under its time, then 80 bits of the hash; the lock the same either way', () => {
    const ms = Date.UTC(2026, 11, 7, 19, 30)
    const key = uuidv7({ msecs: ms })
    expect(timeOfKey(key)).toBe(ms)
    expect(timeOfKey(key.toUpperCase())).toBe(ms)
    const hash = sha256(`ins_a\n${key}`)
    const kept = claimedKey(claim(key), 0)
    expect(kept.keyHash.length).toBe(16)
    expect(kept.keyHash.readUIntBE(0, 6)).toBe(ms)
    expect(kept.keyHash.subarray(6)).toEqual(hash.subarray(0, 10))
    // Before the store began keeping keys in time order: its hash alone, where an older answer is.
    const old = claimedKey(claim(key), ms + 1)
    expect(old.keyHash).toEqual(hash.subarray(0, 16))
    expect(old.lock).toBe(kept.lock)
    expect(kept.lock).toBe(hash.readBigInt64BE(0).toString())
  })

  it('any other key under its hash alone; a time given with the claim (OTLP) as a UUIDv7 time', () => {
    for (const key of [uuidv4(), 'batch-1', '0193a6f2-3c5d-4d7a-9b2e-1f4a6c8d2e90', `${uuidv7()}x`]) {
      expect(timeOfKey(key)).toBeUndefined()
      expect(claimedKey(claim(key), 0).keyHash).toEqual(sha256(`ins_a\n${key}`).subarray(0, 16))
    }
    expect(claimedKey(claim('otlp\nlogs\nabc\n0', 1_700_000_000_123), 0).keyHash.readUIntBE(0, 6)).toBe(
      1_700_000_000_123,
    )
    // A time that 48 bits cannot hold, or none at all: the hash alone.
    for (const orderMs of [-1, 2 ** 48, Number.NaN, 1.5])
      expect(claimedKey(claim('k', orderMs), 0).keyHash).toEqual(sha256('ins_a\nk').subarray(0, 16))
    // Keys of one instance made a millisecond apart sort in that order.
    const a = claimedKey(claim(uuidv7({ msecs: 1_000 })), 0).keyHash
    const b = claimedKey(claim(uuidv7({ msecs: 1_001 })), 0).keyHash
    expect(Buffer.compare(a, b)).toBe(-1)
  })
})

const keptHashes = async (store: SqlStore) =>
  (await store.db.selectFrom('idempotency_answers').select('key_hash').execute()).map((r) => Buffer.from(r.key_hash))

describe(`Idempotency-Keys in time order (${backend})`, () => {
  it('a new store keeps a UUIDv7 under its time; a retry is replayed, another body refused', async () => {
    const store = await openTestStore()
    const w = await keyedWriter(store)
    const key = uuidv7()
    const made = await w.post('/sessions', { metadata: { n: 1 } }, key)
    expect(made.status).toBe(201)
    const again = await w.post('/sessions', { metadata: { n: 1 } }, key)
    expect([again.status, again.headers.get('idempotent-replayed')]).toEqual([201, 'true'])
    expect(await again.json()).toEqual(await made.json())
    expect((await w.post('/sessions', { metadata: { n: 2 } }, key)).status).toBe(422)
    const [kept] = (await keptHashes(store)).filter((h) => h.readUIntBE(0, 6) === timeOfKey(key))
    expect(kept).toBeDefined()
  })

  it('an answer kept before migration 11 is found by a retry after it; keys made from then on are kept in time order', async () => {
    const store = await unmigratedStore()
    await migrate(store.db, { upTo: 10 })
    const w = await keyedWriter(store)
    // A key made before the upgrade, its request answered by the code of then, which kept the
    // answer under the key's hash alone (the request's fingerprint as the middleware makes it).
    const key = uuidv7()
    const body = JSON.stringify({ metadata: { before: true } })
    const before = await w.post('/sessions', JSON.parse(body), undefined)
    expect(before.status).toBe(201)
    const session = (await before.json()) as { id: string }
    await store.db
      .insertInto('idempotency_answers')
      .values({
        created_ms: Date.now(),
        status: 201,
        key_hash: claimedKey({ instanceId: w.a.id, key, fingerprint: '', status: 201 }, Infinity).keyHash,
        fingerprint: sha256(`POST /sessions\n${body}`).subarray(0, 16),
        resource_id: session.id,
        refusal: null,
      })
      .execute()

    expect(await migrate(store.db, { upTo: 11 })).toBe(1)
    await migrate(store.db) // and those after it
    const since = Number(
      (await store.db.selectFrom('idempotency_key_order').select('since_ms').executeTakeFirstOrThrow()).since_ms,
    )
    // A store in use: time order from a day on, past every answer of the old code.
    expect(since).toBeGreaterThan(Date.now() + 23 * 60 * 60 * 1000)
    const retry = await w.post('/sessions', JSON.parse(body), key)
    expect([retry.status, retry.headers.get('idempotent-replayed')]).toEqual([201, 'true'])
    expect(((await retry.json()) as { id: string }).id).toBe(session.id)
    // A key made now: a day before time order begins on this store, under its hash alone too.
    const now = uuidv7()
    expect((await w.post('/sessions', {}, now)).status).toBe(201)
    const hashes = await keptHashes(store)
    expect(hashes).toContainEqual(
      claimedKey({ instanceId: w.a.id, key: now, fingerprint: '', status: 201 }, since).keyHash,
    )
    expect(hashes.some((h) => h.readUIntBE(0, 6) === timeOfKey(now))).toBe(false)
    // A fresh store has held no answer: time order from the start.
    const fresh = await openTestStore()
    const order = await fresh.db.selectFrom('idempotency_key_order').select('since_ms').executeTakeFirstOrThrow()
    expect(Number(order.since_ms)).toBe(0)
  })
})
