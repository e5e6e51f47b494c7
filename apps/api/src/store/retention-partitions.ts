import { sql, type Kysely } from 'kysely'
import { idTime } from '../ids.js'
import type { Database } from './db.js'
import { idBound } from './retention.js'

// PostgreSQL keeps session_events in partitions by range of id (migration 8). An event id starts
// with its creation time, so a range of ids is a range of time: a partition holds the events made
// in one day (one week when the longest retention is 12 weeks or more), and a listing, which
// reads `session_id = $1 AND id > $2 ORDER BY id`, reads the partitions in order, one after the
// other (an ordered Append), mostly one. The first partition, `session_events_p0`, holds
// everything before the first day (the table as it was before migration 8, or nothing).
//
// There is no default partition: with one, the partitions would no longer be in order for the
// planner (a default partition may hold any id), and DETACH … CONCURRENTLY would be refused. So
// partitions are made ahead of need instead, days ahead, at every start (migrate()) and at every
// prune: an insert never finds its partition missing while any process runs.
//
// Expired partitions go whole: DETACH … CONCURRENTLY (the readers and writers of the table wait
// for nothing), then DROP TABLE. A pruner that dies between the two leaves a pending detach or a
// detached table; the next prune finishes either.

export const DAY_MS = 86_400_000
const WEEK_MS = 7 * DAY_MS

/** Names of session_events' partitions: `session_events_p` and the first day they hold. */
const PARTITION_PREFIX = 'session_events_p'

export interface EventPartition {
  name: string
  /** The creation time of its first possible event, in milliseconds (-Infinity: the first partition). */
  fromMs: number
  /** The end of its range, not included, in milliseconds. */
  toMs: number
  /** A DETACH … CONCURRENTLY that began on it and did not finish. */
  detaching: boolean
}

/**
 * How wide new partitions are for a longest retention in force: a day, or a week from 12 weeks
 * on (`off` included), so that a table holds about 90 partitions at most. A listing that has no
 * position (the newest events, a tail) visits every partition's index once.
 */
export function partitionWidth(longestRetentionMs: number): number {
  return longestRetentionMs >= 12 * WEEK_MS ? WEEK_MS : DAY_MS
}

/** How far ahead of now partitions are made: two of them. */
export const aheadMs = (widthMs: number) => 2 * widthMs

/** session_events' partitions in order, or undefined where the table is not partitioned (SQLite). */
export async function eventPartitions(db: Kysely<Database>): Promise<EventPartition[] | undefined> {
  const { rows: kind } = await sql<{ kind: string }>`
    select relkind as kind from pg_class where oid = to_regclass('session_events')`.execute(db)
  if (kind[0]?.kind !== 'p') return undefined
  const { rows } = await sql<{ name: string; bound: string; detaching: boolean }>`
    select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound, i.inhdetachpending as detaching
      from pg_inherits i join pg_class c on c.oid = i.inhrelid
     where i.inhparent = to_regclass('session_events')`.execute(db)
  return rows
    .map(({ name, bound, detaching }) => {
      const range = /FROM \((?:MINVALUE|'([^']+)')\) TO \('([^']+)'\)/.exec(bound)
      if (!range) throw new Error(`session_events has a partition this store did not make: ${name} ${bound}`)
      const fromMs = range[1] === undefined ? -Infinity : idTime(range[1]).getTime()
      return { name, fromMs, toMs: idTime(range[2]!).getTime(), detaching }
    })
    .sort((a, b) => a.fromMs - b.fromMs)
}

/** The partition of everything before the others: the table as it was before migration 8, at first. */
export const FIRST_PARTITION = `${PARTITION_PREFIX}0`
const partitionName = (fromMs: number) =>
  `${PARTITION_PREFIX}${new Date(fromMs).toISOString().slice(0, 10).replaceAll('-', '')}`

/**
 * Makes the partitions that are missing: at the bottom, `session_events_p0` for everything
 * before the oldest partition (once the one before was dropped); at the top, those from the last
 * one up to `now` + aheadMs(width), each `widthMs` wide on a grid from the epoch. Returns their
 * names. Any number of processes may call it at once: they take turns (an advisory lock of the
 * schema). A partition is made as a table of its own and then attached, which locks
 * session_events only against other DDL, never against its readers and writers (CREATE TABLE …
 * PARTITION OF would lock them out for a moment).
 */
export async function ensureEventPartitions(
  db: Kysely<Database>,
  options: { now: Date; widthMs?: number },
): Promise<string[]> {
  const widthMs = options.widthMs ?? DAY_MS
  const until = options.now.getTime() + aheadMs(widthMs)
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('session-events:partitions:' || current_schema()))`.execute(trx)
    const partitions = (await eventPartitions(trx))?.filter((p) => !p.detaching)
    if (!partitions || partitions.length === 0) return []
    const made: string[] = []
    const attach = async (name: string, from: string, to: string) => {
      await sql`create table ${sql.table(name)} (like session_events)`.execute(trx)
      await sql`alter table session_events attach partition ${sql.table(name)}
                for values from (${sql.raw(from)}) to (${sql.lit(to)})`.execute(trx)
      made.push(name)
    }
    const oldest = partitions[0]!
    if (oldest.fromMs !== -Infinity) await attach(FIRST_PARTITION, 'minvalue', idBound('sessionEvent', oldest.fromMs))
    let last = partitions.at(-1)!.toMs
    while (last < until) {
      const next = Math.floor(last / widthMs) * widthMs + widthMs
      await attach(partitionName(last), `'${idBound('sessionEvent', last)}'`, idBound('sessionEvent', next))
      last = next
    }
    return made
  })
}

/**
 * Removes the partitions whose whole range is before `beforeMs`, with their events; returns how
 * many events went. Each is detached concurrently, counted and dropped. Then whatever an earlier
 * call left half done: a detach to finish, a detached table to drop. `step` is called before each
 * partition; it throws to stop (the pruner lost its lease, or the server is stopping).
 */
export async function dropExpiredPartitions(
  db: Kysely<Database>,
  options: { beforeMs: number; step?: () => Promise<void> },
): Promise<{ partitions: string[]; events: number }> {
  const partitions = (await eventPartitions(db)) ?? []
  for (const partition of partitions.filter((p) => p.detaching)) {
    await options.step?.()
    await sql`alter table session_events detach partition ${sql.table(partition.name)} finalize`.execute(db)
  }
  // The newest partition stays, whatever its age: inserts need somewhere to go until the next
  // ones are made. The oldest goes when it is due, and ensureEventPartitions makes a new, empty
  // one below the rest.
  const newest = partitions.at(-1)
  const expired = partitions.filter((p) => !p.detaching && p !== newest && p.toMs <= options.beforeMs)
  for (const partition of expired) {
    await options.step?.()
    // Cannot run in a transaction: its own two wait for the queries that may still read it.
    await sql`alter table session_events detach partition ${sql.table(partition.name)} concurrently`.execute(db)
  }
  const { rows: detached } = await sql<{ name: string }>`
    select relname as name from pg_class
     where relnamespace = current_schema()::regnamespace and relkind = 'r' and not relispartition
       and relname like ${`${PARTITION_PREFIX.replaceAll('_', '\\_')}%`}
     order by relname`.execute(db)
  let events = 0
  const dropped: string[] = []
  for (const { name } of detached) {
    await options.step?.()
    events += await db.transaction().execute(async (trx) => {
      // Counting a big partition takes longer than the pool's statement timeout allows a request.
      await sql`set local statement_timeout = 0`.execute(trx)
      const { rows } = await sql<{ n: number }>`select count(*)::bigint as n from ${sql.table(name)}`.execute(trx)
      // Dropping its foreign key touches `sessions` for a moment: never wait long for it.
      await sql`set local lock_timeout = '2s'`.execute(trx)
      await sql`drop table ${sql.table(name)}`.execute(trx)
      return Number(rows[0]!.n)
    })
    dropped.push(name)
  }
  return { partitions: dropped, events }
}
