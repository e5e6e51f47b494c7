import type { Kysely } from 'kysely'
import { idTime, newId } from '../ids.js'
import type { Database } from './db.js'

// How long events are kept. EVENT_RETENTION (config.ts) is the default of every instance; an
// operator may give one instance its own (`admin instances set-retention`), kept in
// instances.event_retention (migration 7; null: the default). The pruner (prune.ts) reads them
// afresh at every run, so an override takes effect at the next run, on every process.
//
// A retention is a number of milliseconds; Infinity is `off` (keep everything).

const UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000 } as const
/** The longest finite retention: beyond it, dates stop being dates. `off` keeps everything. */
const MAX_MS = 100 * 365 * UNITS.d

export class RetentionError extends Error {
  override name = 'RetentionError'
}

/** `30d`, `12h`, `90m`, `45s` or `off`, as milliseconds (Infinity for `off`). */
export function parseRetention(text: string): number {
  const trimmed = text.trim()
  if (/^off$/i.test(trimmed)) return Infinity
  const match = /^(\d{1,12})([dhms])$/.exec(trimmed)
  const ms = match ? Number(match[1]) * UNITS[match[2] as keyof typeof UNITS] : NaN
  if (!(ms >= 1_000 && ms <= MAX_MS))
    throw new RetentionError(
      `must be a duration such as 30d, 12h, 90m or 45s (from 1s to 36500d), or off to keep everything (got "${text}")`,
    )
  return ms
}

/** A retention as parseRetention reads it, in its largest whole unit: 86400000 → `1d`. */
export function formatRetention(ms: number): string {
  if (ms === Infinity) return 'off'
  for (const [unit, size] of Object.entries(UNITS)) if (ms % size === 0) return `${ms / size}${unit}`
  return `${Math.ceil(ms / 1000)}s`
}

/**
 * The smallest id of a kind made at `ms` or later: ids start with their creation time (ids.ts)
 * and compare byte-wise, so every id made before `ms` is below it and every id made since is not.
 * It is the head of an id made at `ms`, up to the end of its time: the shortest head that reads
 * as that time.
 */
export function idBound(kind: 'sessionEvent' | 'session', ms: number): string {
  const time = Math.max(0, Math.floor(ms))
  const id = newId(kind, time)
  for (let end = id.indexOf('_') + 2; end < id.length; end++) {
    if (idTime(id.slice(0, end)).getTime() === time) return id.slice(0, end)
  }
  return id
}

/** An instance and how long its events are kept. */
export interface InstanceRetention {
  instanceId: string
  /** Milliseconds; Infinity: kept for ever. */
  retentionMs: number
  /** Whether an operator set it (else it is EVENT_RETENTION). */
  overridden: boolean
}

/**
 * Every instance with its retention: its own, or `defaultMs`. An override that does not parse
 * (written by hand in SQL) keeps everything: the pruner never removes what it cannot account for.
 */
export async function instanceRetentions(db: Kysely<Database>, defaultMs: number): Promise<InstanceRetention[]> {
  const rows = await db.selectFrom('instances').select(['id', 'event_retention']).orderBy('id').execute()
  return rows.map((row) => {
    if (row.event_retention == null) return { instanceId: row.id, retentionMs: defaultMs, overridden: false }
    let retentionMs = Infinity
    try {
      retentionMs = parseRetention(row.event_retention)
    } catch {}
    return { instanceId: row.id, retentionMs, overridden: true }
  })
}

/**
 * Gives an instance a retention of its own (milliseconds, Infinity for `off`), or `null`: back to
 * EVENT_RETENTION. False when there is no such instance. Nothing of another instance changes.
 */
export async function setInstanceRetention(
  db: Kysely<Database>,
  instanceId: string,
  retentionMs: number | null,
): Promise<boolean> {
  const result = await db
    .updateTable('instances')
    .set({ event_retention: retentionMs === null ? null : formatRetention(retentionMs) })
    .where('id', '=', instanceId)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) > 0
}
