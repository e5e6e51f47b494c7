import { KEEP_MS } from './idempotency.js'
import { BatchSize, deleteEventsBefore, deleteSessionEvents } from './prune-events.js'
import { deleteIdleSessions } from './prune-sessions.js'
import type { PrunableStore } from './prune-store.js'
import { giveBackSpace } from './prune-vacuum.js'
import { idBound, instanceRetentions } from './retention.js'
import { CLOSED_AFTER_MS, compactClosedPartitions } from './retention-compaction.js'
import {
  dropExpiredPartitions,
  ensureEventPartitions,
  eventPartitions,
  partitionWidth,
  type EventPartition,
} from './retention-partitions.js'

// One prune: what retention says must go, goes, and nothing younger.
//
// - Events older than their instance's retention (retention.ts): those of EVENT_RETENTION in one
//   pass in id order, whatever their session (passing over the instances that keep theirs
//   longer), those of an instance with a retention of its own session by session. On PostgreSQL,
//   first the partitions past the longest retention in force go whole (retention-partitions.ts);
//   the batches then only take what partitions cannot: the events of shorter retentions, and
//   those in partitions too wide to wait for (the first one). The events of the longest retention
//   in the other partitions wait for their partition: at most its width (a day, or a week from 12
//   weeks on) past their time. On SQLite, everything in batches (`rowid IN (SELECT … LIMIT n)`),
//   then the freed pages go back to the file system (incremental auto_vacuum, migration 9).
// - Sessions with no events left whose last activity is older than the retention, with their
//   server sessions, runs and run errors. A session's last activity is the newest of its
//   creation, its own update, and its server sessions' and runs' updates; its events count too,
//   since a session goes only once it has none left.
// - Idempotency-Key answers older than a day.
//
// Every step reads the store as it is: what a writer commits meanwhile is younger than any
// cutoff and is never touched. Events are deleted only below an id bound made from the cutoff
// (ids start with their creation time), and a session only once it is checked again, under its
// lock (PostgreSQL) or the write lock (SQLite), to be empty and idle.

export interface PruneOptions {
  /** EVENT_RETENTION: the retention of every instance without one of its own (ms; Infinity: off). */
  defaultRetentionMs: number
  /** Removes, besides, everything older than this (`admin prune --older-than`), whatever the retention. */
  olderThanMs?: number
  /** The time to prune at. Default: now. */
  now?: Date
  /** Called before each step (a batch, a partition); throws to stop there (a lost lease, a shutdown). */
  step?: () => Promise<void>
}

export interface PruneResult {
  events_deleted: number
  sessions_deleted: number
  idempotency_keys_deleted: number
}

/** Sessions looked at in one go. */
const SESSIONS_PER_BATCH = 500

/** Lets the event loop answer requests between two synchronous SQLite batches. */
const yieldToRequests = () => new Promise<void>((resolve) => setImmediate(resolve))

export async function prune(store: PrunableStore, options: PruneOptions): Promise<PruneResult> {
  const { db, dialect } = store
  const now = options.now ?? new Date()
  const nowMs = now.getTime()
  const step = async () => {
    await options.step?.()
    if (dialect === 'sqlite') await yieldToRequests()
  }
  const within = (retentionMs: number) => Math.min(retentionMs, options.olderThanMs ?? Infinity)
  const instances = await instanceRetentions(db, options.defaultRetentionMs)
  const byDefault = within(options.defaultRetentionMs)
  const longest = Math.max(byDefault, ...instances.map((i) => within(i.retentionMs)))
  const batch = new BatchSize(dialect)
  let events = 0
  let sessions = 0

  let partitions: EventPartition[] | undefined
  if (dialect === 'postgres') {
    if (longest < Infinity) events += (await dropExpiredPartitions(db, { beforeMs: nowMs - longest, step })).events
    await ensureEventPartitions(db, { now, widthMs: partitionWidth(longest) })
    partitions = (await eventPartitions(db))?.filter((p) => !p.detaching)
  }
  // From where on the events of the longest retention are left to their partition's drop: the
  // newest partitions, as long as each is at most a twelfth of that retention wide.
  let droppedFromMs = Infinity
  if (partitions)
    for (const p of [...partitions].reverse()) {
      if (p.toMs - p.fromMs > longest / 12) break
      droppedFromMs = p.fromMs
    }
  /** The id below which an instance's events go in batches, for a retention. */
  const eventBound = (retentionMs: number) =>
    idBound(
      'sessionEvent',
      retentionMs === longest ? Math.min(nowMs - retentionMs, droppedFromMs) : nowMs - retentionMs,
    )

  // EVENT_RETENTION: one pass over the events in id order (so in time order, as they lie in the
  // table), whatever their session, but those of instances that keep theirs longer.
  if (byDefault < Infinity) {
    const keptLonger = instances.filter((i) => within(i.retentionMs) > byDefault).map((i) => i.instanceId)
    events += await deleteEventsBefore(store, eventBound(byDefault), keptLonger, partitions, batch, step)
  }
  for (const instance of instances) {
    const retentionMs = within(instance.retentionMs)
    if (retentionMs === Infinity) continue
    const cutoffMs = nowMs - retentionMs
    const cutoff = new Date(cutoffMs).toISOString()
    // Only a session made before the cutoff can hold events older than it, or be idle since.
    const sessionBound = idBound('session', cutoffMs)
    let after = ''
    for (;;) {
      await step()
      const rows = await db
        .selectFrom('sessions')
        .select('id')
        .where('instance_id', '=', instance.instanceId)
        .where('id', '>', after)
        .where('id', '<', sessionBound)
        .orderBy('id')
        .limit(SESSIONS_PER_BATCH)
        .execute()
      if (rows.length === 0) break
      const ids = rows.map((row) => row.id)
      after = ids.at(-1)!
      // An instance with a retention of its own: its sessions' events, session by session.
      if (retentionMs !== byDefault)
        events += await deleteSessionEvents(store, ids, eventBound(retentionMs), partitions, batch, step)
      sessions += await deleteIdleSessions(store, ids, cutoff)
    }
  }

  await step()
  const keys = await store.idempotencyKeys.expire(new Date(nowMs - KEEP_MS))
  if (dialect === 'sqlite') await giveBackSpace(db, step)
  // PostgreSQL, last: the partitions closed since the last prune get their indexes rebuilt full
  // (retention-compaction.ts). Those past the longest retention were dropped above.
  if (dialect === 'postgres') await compactClosedPartitions(db, { beforeMs: nowMs - CLOSED_AFTER_MS, step })
  return { events_deleted: events, sessions_deleted: sessions, idempotency_keys_deleted: keys }
}
