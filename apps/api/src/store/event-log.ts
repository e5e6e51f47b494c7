import type { Kysely } from 'kysely'
import { newId, nextId } from '../ids.js'
import type { Database, ServerRunTable } from './db.js'
import { lockSession, writeTransaction } from './dialect.js'
import type { EventFeed } from './feed.js'
import { serverRunErrorRow, sessionEventRow } from './new-rows.js'

// How events are added to a session, whoever adds them (the API's writes, the seed's):
// - Within a session, event ids are handed out in commit order. Events are written under a lock
//   on their session (a row lock on PostgreSQL, the database's write lock on SQLite), and each
//   gets an id above the session's last one, so a reader who has seen an id never later finds a
//   smaller one committed behind it. (The API's append does the same in one statement on
//   PostgreSQL: append.ts.)
// - Events are never changed once written: appending adds rows, stopping a run adds an error
//   event. What changes is the run (its status and timestamps).
// - Followers are woken once the events are committed, on this process and every other (feed.ts).

/** A run's session and server session, as an event of it is written. */
export interface RunPlace {
  id: string
  session_id: string
  server_session_id: string
  status: ServerRunTable['status']
}

/**
 * A write transaction that adds events to sessions (`touched`): their followers on every process
 * are woken once it has committed (`feed`: this process's, which tells the others).
 */
export async function writingEvents<T>(
  db: Kysely<Database>,
  feed: EventFeed | undefined,
  run: (trx: Kysely<Database>, touched: Set<string>) => Promise<T>,
): Promise<T> {
  const touched = new Set<string>()
  const result = await writeTransaction(db, (trx) => run(trx, touched))
  feed?.published(touched)
  return result
}

/** The session and server session of each run, read in the writing transaction. */
export async function runPlaces(trx: Kysely<Database>, runIds: readonly string[]): Promise<Map<string, RunPlace>> {
  const rows = await trx
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .select(['r.id', 'r.server_session_id', 'ss.session_id', 'r.status'])
    .where('r.id', 'in', [...new Set(runIds)])
    .execute()
  return new Map(rows.map((r) => [r.id, r]))
}

/**
 * Ids for new events, in the order given: each session is locked, then every new id of it is
 * above its last event's id and above the one before it, whatever the clocks of the processes
 * that wrote before.
 */
export async function allocateEventIds(
  trx: Kysely<Database>,
  events: readonly { sessionId: string; at: Date }[],
): Promise<string[]> {
  const last = new Map<string, string>()
  for (const sessionId of new Set(events.map((e) => e.sessionId))) {
    await lockSession(trx, sessionId)
    const row = await trx
      .selectFrom('session_events')
      .select('id')
      .where('session_id', '=', sessionId)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst()
    if (row) last.set(sessionId, row.id)
  }
  return events.map(({ sessionId, at }) => {
    const previous = last.get(sessionId)
    const made = newId('sessionEvent', at.getTime())
    const id = previous !== undefined && made <= previous ? nextId(previous) : made
    last.set(sessionId, id)
    return id
  })
}

/** The error that ended a run, its `server_run_error` event, and the run marked failed. */
export async function insertRunError(
  trx: Kysely<Database>,
  run: RunPlace,
  input: { code: string; message: string; metadata?: Record<string, unknown> | undefined; at: Date },
): Promise<{ id: string; eventId: string }> {
  const error = serverRunErrorRow({ ...input, serverRunId: run.id })
  const [eventId] = await allocateEventIds(trx, [{ sessionId: run.session_id, at: input.at }])
  await trx.insertInto('server_run_errors').values(error).execute()
  await trx
    .insertInto('session_events')
    .values(
      sessionEventRow({ id: eventId!, run, at: input.at, event: { type: 'server_run_error', errorId: error.id } }),
    )
    .execute()
  await trx
    .updateTable('server_runs')
    .set({ status: 'failed', stopped_at: error.created_at, updated_at: error.created_at })
    .where('id', '=', run.id)
    .execute()
  return { id: error.id, eventId: eventId! }
}
