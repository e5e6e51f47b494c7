import type { ServerRun } from '@session-events/server-stubs'
import { sql } from 'kysely'
import { describe, expect, it } from 'vitest'
import { defaultConfig } from '../src/config.js'
import { newId } from '../src/ids.js'
import { hashSecret } from '../src/api-keys.js'
import { CachingReader, type ReadCacheOptions } from '../src/cached-reader.js'
import type { JsonReader } from '../src/json-reader.js'
import type { ServerRunJson } from '../src/serialize.js'
import type { SqlStore } from '../src/store/sql-store.js'
import { backend, onPostgres, openTestStore } from './backend.js'
import { asJson, readEvent, sessionWithRun } from './store-reads.js'

// The caching reader (src/cached-reader.ts) over a real store, one freshness rule at a
// time: events for keyCacheMs (they never change, but the pruner removes them), runs while the store's runs version stands (never on PostgreSQL, which
// has none), a session's instance once found and API key lookups (misses too) for keyCacheMs; never
// an event of another session; all within one byte budget. Whether something was served without
// the database is told by taking it away underneath (a row deleted with plain SQL: these stores
// are thrown away), or by counting what the inner reader was asked.

/** The store's reader (as JSON), counting what it is asked, by method (ids for the batch methods). */
function counting(inner: JsonReader) {
  const asked = { findApiKey: 0, sessionInstance: 0, sessionEvents: 0, serverRuns: 0 }
  const reader: JsonReader = {
    findApiKey: (hash) => (asked.findApiKey++, inner.findApiKey(hash)),
    sessionInstance: (id) => (asked.sessionInstance++, inner.sessionInstance(id)),
    listSessions: (query) => inner.listSessions(query),
    listEventIds: (query) => inner.listEventIds(query),
    sessionEvents: (sessionId, ids) => ((asked.sessionEvents += ids.length), inner.sessionEvents(sessionId, ids)),
    serverRuns: (ids) => ((asked.serverRuns += ids.length), inner.serverRuns(ids)),
    runsVersion: () => inner.runsVersion(),
  }
  return { reader, asked }
}

/** A caching reader around the store's reader, what it asked of it, and its clock: `pass(ms)` moves it on. */
function cachedOver(store: SqlStore, settings: Partial<ReadCacheOptions> = {}) {
  const inner = counting(asJson(store.reader))
  // Not 0: lru-cache takes a start time of 0 for none.
  let now = 1_000_000
  const clock = { now: () => now }
  return {
    cache: new CachingReader(inner.reader, defaultConfig(settings), clock),
    asked: inner.asked,
    pass: (ms: number) => void (now += ms),
  }
}

const runOf = (json: ServerRunJson | undefined) => (json ? (JSON.parse(json.bytes.toString()) as ServerRun) : undefined)
/** keyCacheMs, on the cache's own clock: it passes only when a test says so. */
const KEY_TTL_MS = 150
const deleteEvents = (store: SqlStore, ids: readonly string[]) =>
  sql`delete from session_events where id in (${sql.join(ids)})`.execute(store.db)

describe(`the caching reader over the ${backend} store`, () => {
  it('serves an event read once without the database for keyCacheMs: events never change, but the pruner removes them', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const [id] = await store.seeding.appendLogEvents([
      { serverRunId: runId, lines: [{ type: 'stdout', line: 'kept' }] },
    ])
    const { cache, asked, pass } = cachedOver(store, { keyCacheMs: KEY_TTL_MS })
    const [read] = await cache.sessionEvents(sessionId, [id!])
    expect(read?.id).toBe(id)
    expect(asked.sessionEvents).toBe(1)

    await deleteEvents(store, [id!])
    expect(await store.reader.sessionEvents(sessionId, [id!])).toEqual([])
    expect(await cache.sessionEvents(sessionId, [id!])).toEqual([read])
    expect((await readEvent(cache, sessionId, id!))?.log_lines).toEqual([{ type: 'stdout', line: 'kept' }])
    // The store's reader was asked once in all (the check above went around the cache).
    expect(asked.sessionEvents).toBe(1)
    // Removed (as the pruner removes it), it is gone from the cache's answers once keyCacheMs is over.
    pass(KEY_TTL_MS + 1)
    expect(await cache.sessionEvents(sessionId, [id!])).toEqual([])
    expect(asked.sessionEvents).toBe(2)
  })

  it('keeps no event with keyCacheMs 0', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const [id] = await store.seeding.appendLogEvents([{ serverRunId: runId, lines: [{ type: 'stdout', line: 'x' }] }])
    const { cache, asked } = cachedOver(store, { keyCacheMs: 0 })
    await cache.sessionEvents(sessionId, [id!])
    await cache.sessionEvents(sessionId, [id!])
    expect(asked.sessionEvents).toBe(2)
  })

  it('reads from the store only the events it does not keep, and answers in the order asked', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const ids = await store.seeding.appendLogEvents(
      Array.from({ length: 6 }, (_, i) => ({ serverRunId: runId, lines: [{ type: 'stdout' as const, line: `${i}` }] })),
    )
    const { cache, asked } = cachedOver(store)
    await cache.sessionEvents(sessionId, [ids[1]!, ids[3]!])
    expect(asked.sessionEvents).toBe(2)
    const mixed = [ids[5]!, ids[3]!, newId('sessionEvent'), ids[0]!, ids[1]!]
    expect((await cache.sessionEvents(sessionId, mixed)).map((e) => e.id)).toEqual([ids[5], ids[3], ids[0], ids[1]])
    // Only the three it did not keep (one of them no event at all).
    expect(asked.sessionEvents).toBe(5)
    expect(await cache.sessionEvents(sessionId, [])).toEqual([])
  })

  it('moves the runs version with any write to what a run shows, plain SQL included, and not with new events', async () => {
    const store = await openTestStore()
    const { runId } = await sessionWithRun(store)
    const writes = [
      sql`update server_runs set updated_at = updated_at where id = ${runId}`,
      sql`update server_sessions set updated_at = updated_at`,
      sql`update server_deployments set name = name`,
      sql`update servers set description = description`,
    ]
    for (const write of writes) {
      const before = await store.reader.runsVersion()
      await write.execute(store.db)
      expect(await store.reader.runsVersion()).not.toBe(before)
    }
    const before = await store.reader.runsVersion()
    await store.seeding.appendLogEvents([{ serverRunId: runId, lines: [] }])
    expect(await store.reader.runsVersion()).toBe(before)
  })

  it('keeps a run while the runs version stands, and shows one changed by updateServerRun at once', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const [eventId] = await store.seeding.appendLogEvents([{ serverRunId: runId, lines: [] }])
    const { cache, asked } = cachedOver(store)
    const version = await store.reader.runsVersion()
    expect(version).toMatch(/^\d+$/)
    expect(await cache.runsVersion()).toBe(version)

    expect(runOf((await cache.serverRuns([runId]))[0])?.status).toBe('active')
    expect(runOf((await cache.serverRuns([runId]))[0])?.status).toBe('active')
    // Appending events writes no run: the runs version stands.
    await store.seeding.appendLogEvents([{ serverRunId: runId, lines: [{ type: 'stdout', line: 'more' }] }])
    expect(await store.reader.runsVersion()).toBe(version)
    expect(runOf((await cache.serverRuns([runId]))[0])?.status).toBe('active')
    expect(asked.serverRuns).toBe(1)

    await store.seeding.updateServerRun(runId, { status: 'completed', stoppedAt: new Date('2030-01-01T00:00:00.000Z') })
    expect(await store.reader.runsVersion()).not.toBe(version)
    expect(runOf((await cache.serverRuns([runId]))[0])).toMatchObject({
      status: 'completed',
      stopped_at: '2030-01-01T00:00:00.000Z',
    })
    expect((await readEvent(cache, sessionId, eventId!))?.server_run).toMatchObject({
      status: 'completed',
      stopped_at: '2030-01-01T00:00:00.000Z',
    })
    // Kept again at the new version.
    const before = asked.serverRuns
    expect(runOf((await cache.serverRuns([runId]))[0])?.status).toBe('completed')
    expect(asked.serverRuns).toBe(before)
    // A page read with its version (PostgreSQL reads it in the page's query) serves the runs on it.
    const page = await store.reader.listEventIds({ sessionId, limit: 5, order: 'asc' })
    if (onPostgres) expect(page.runsVersion).toBe(await store.reader.runsVersion())
    else expect(page.runsVersion).toBeUndefined()
    // An unknown run is left out, and not kept.
    expect(await cache.serverRuns([newId('serverRun')])).toEqual([])
    expect(await cache.serverRuns([])).toEqual([])
  })

  it(`shows at once a run changed by plain SQL${onPostgres ? '' : ' (the triggers of migration 3 move the runs version)'}`, async () => {
    const store = await openTestStore()
    const { runId } = await sessionWithRun(store)
    const { cache } = cachedOver(store)
    expect(runOf((await cache.serverRuns([runId]))[0])?.server.name).toBe('S')
    const { serverId } = await store.db
      .selectFrom('server_runs as r')
      .innerJoin('server_deployments as d', 'd.id', 'r.server_deployment_id')
      .select('d.server_id as serverId')
      .where('r.id', '=', runId)
      .executeTakeFirstOrThrow()
    await sql`update servers set name = ${'renamed'} where id = ${serverId}`.execute(store.db)
    expect(runOf((await cache.serverRuns([runId]))[0])?.server.name).toBe('renamed')
  })

  it('asks again for a session not found, and keeps one once found, for keyCacheMs', async () => {
    const store = await openTestStore()
    const { id: instanceId } = await store.admin.createInstance({ name: 'i' })
    const { cache, asked, pass } = cachedOver(store, { keyCacheMs: KEY_TTL_MS })
    const sessionId = newId('session')
    expect(await cache.sessionInstance(sessionId)).toBeUndefined()
    expect(await cache.sessionInstance(sessionId)).toBeUndefined()
    expect(asked.sessionInstance).toBe(2)

    // Created after it was asked for (with the id asked for: plain SQL).
    const at = new Date().toISOString()
    await store.db
      .insertInto('sessions')
      .values({
        id: sessionId,
        instance_id: instanceId,
        status: 'active',
        metadata_json: '{}',
        created_at: at,
        updated_at: at,
      })
      .execute()
    expect(await cache.sessionInstance(sessionId)).toBe(instanceId)
    expect(asked.sessionInstance).toBe(3)

    // Found, it is kept: a session never moves to another instance. The pruner may remove it
    // (store/prune.ts): that is seen once keyCacheMs is over.
    await sql`delete from sessions where id = ${sessionId}`.execute(store.db)
    expect(await store.reader.sessionInstance(sessionId)).toBeUndefined()
    expect(await cache.sessionInstance(sessionId)).toBe(instanceId)
    expect(asked.sessionInstance).toBe(3)
    pass(KEY_TTL_MS + 1)
    expect(await cache.sessionInstance(sessionId)).toBeUndefined()
    expect(asked.sessionInstance).toBe(4)
  })

  it('keeps a key lookup for keyCacheMs: a revoked key works until then, and not after', async () => {
    const store = await openTestStore()
    const { id: instanceId } = await store.admin.createInstance({ name: 'i' })
    const key = await store.admin.createApiKey({ instanceId, kind: 'secret' })
    const hash = hashSecret(key.secret)
    const { cache, asked, pass } = cachedOver(store, { keyCacheMs: KEY_TTL_MS })
    expect(await cache.findApiKey(hash)).toMatchObject({ id: key.id, revoked_at: null })

    expect(await store.admin.revokeApiKey(key.secret)).toBe(true)
    expect((await store.reader.findApiKey(hash))?.revoked_at).not.toBeNull()
    expect(await cache.findApiKey(hash)).toMatchObject({ id: key.id, revoked_at: null })
    expect(asked.findApiKey).toBe(1)

    pass(KEY_TTL_MS + 1)
    expect((await cache.findApiKey(hash))?.revoked_at).not.toBeNull()
    expect(asked.findApiKey).toBe(2)
  })

  it('keeps a key miss for keyCacheMs too', async () => {
    const store = await openTestStore()
    const { id: instanceId } = await store.admin.createInstance({ name: 'i' })
    const secret = `metorial_sk_${'m'.repeat(40)}`
    const { cache, asked, pass } = cachedOver(store, { keyCacheMs: KEY_TTL_MS })
    expect(await cache.findApiKey(hashSecret(secret))).toBeUndefined()
    // A flood of one bad key is one query.
    for (let i = 0; i < 10; i++) expect(await cache.findApiKey(hashSecret(secret))).toBeUndefined()
    expect(asked.findApiKey).toBe(1)

    const key = await store.admin.createApiKey({ instanceId, kind: 'secret', secret })
    expect((await store.reader.findApiKey(hashSecret(secret)))?.id).toBe(key.id)
    expect(await cache.findApiKey(hashSecret(secret))).toBeUndefined()
    pass(KEY_TTL_MS + 1)
    expect((await cache.findApiKey(hashSecret(secret)))?.id).toBe(key.id)
    expect(asked.findApiKey).toBe(2)
  })

  it('keeps no key lookup with keyCacheMs 0', async () => {
    const store = await openTestStore()
    const { id: instanceId } = await store.admin.createInstance({ name: 'i' })
    const key = await store.admin.createApiKey({ instanceId, kind: 'secret' })
    const { cache, asked } = cachedOver(store, { keyCacheMs: 0 })
    expect((await cache.findApiKey(hashSecret(key.secret)))?.id).toBe(key.id)
    await store.admin.revokeApiKey(key.secret)
    expect((await cache.findApiKey(hashSecret(key.secret)))?.revoked_at).not.toBeNull()
    expect(asked.findApiKey).toBe(2)
    expect(cache.stats.entries).toBe(0)
  })

  it('never serves an event of another session for this one, kept or not', async () => {
    const store = await openTestStore()
    const a = await sessionWithRun(store)
    const b = await sessionWithRun(store)
    const [aEvent] = await store.seeding.appendLogEvents([
      { serverRunId: a.runId, lines: [{ type: 'stdout', line: 'a' }] },
    ])
    const [bEvent] = await store.seeding.appendLogEvents([
      { serverRunId: b.runId, lines: [{ type: 'stdout', line: 'b' }] },
    ])
    const { cache } = cachedOver(store)

    // Kept through its own session, then asked for through the other.
    expect((await cache.sessionEvents(a.sessionId, [aEvent!])).map((e) => e.id)).toEqual([aEvent])
    expect(await cache.sessionEvents(b.sessionId, [aEvent!])).toEqual([])
    expect((await cache.sessionEvents(b.sessionId, [aEvent!, bEvent!])).map((e) => e.id)).toEqual([bEvent])
    expect(await readEvent(cache, b.sessionId, aEvent!)).toBeUndefined()
    // Asked for through the other session first (nothing to keep then), then through its own.
    const [cEvent] = await store.seeding.appendLogEvents([
      { serverRunId: a.runId, lines: [{ type: 'stdout', line: 'c' }] },
    ])
    expect(await cache.sessionEvents(b.sessionId, [cEvent!])).toEqual([])
    expect((await cache.sessionEvents(a.sessionId, [cEvent!])).map((e) => e.id)).toEqual([cEvent])
    expect(await cache.sessionEvents(b.sessionId, [cEvent!])).toEqual([])
    // And a run is shown as it is, whichever session asks (runs are looked up by id only).
    expect((await readEvent(cache, a.sessionId, aEvent!))?.server_run?.id).toBe(a.runId)
  })

  it('holds to its byte budget, dropping what was used least recently', async () => {
    const store = await openTestStore()
    const { sessionId, runId } = await sessionWithRun(store)
    const maxBytes = 64 * 1024
    const ids = await store.seeding.appendLogEvents(
      Array.from({ length: 200 }, (_, i) => ({
        serverRunId: runId,
        lines: [{ type: 'stdout' as const, line: `${i} ${'x'.repeat(1000)}` }],
      })),
    )
    const { cache } = cachedOver(store, { cacheBytes: maxBytes })
    // Read one at a time, oldest first: about 2 KB each, some 400 KB in all.
    for (const id of ids) expect((await cache.sessionEvents(sessionId, [id])).map((e) => e.id)).toEqual([id])
    await cache.serverRuns([runId])
    await cache.findApiKey(hashSecret('metorial_sk_nope'))
    await cache.sessionInstance(sessionId)
    const { entries, bytes } = cache.stats
    expect(bytes).toBeLessThanOrEqual(maxBytes)
    expect(bytes).toBeGreaterThan(maxBytes / 2)
    expect(entries).toBeGreaterThan(10)
    expect(entries).toBeLessThan(ids.length)

    // What is kept is what was read last: with the rows gone, the newest are still served, the
    // oldest are not.
    await deleteEvents(store, ids)
    expect((await cache.sessionEvents(sessionId, ids.slice(-5))).map((e) => e.id)).toEqual(ids.slice(-5))
    expect(await cache.sessionEvents(sessionId, ids.slice(0, 5))).toEqual([])
    expect(cache.stats.bytes).toBeLessThanOrEqual(maxBytes)
  })
})
