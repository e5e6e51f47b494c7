import type SQLite from 'better-sqlite3'
import { sql, type Kysely } from 'kysely'
import { nextId } from '../ids.js'
import type { Database, SessionEventTable } from './db.js'
import { asStoreError } from './dialect.js'
import type { ClaimedKey } from './idempotency.js'

// The API's append, the store's most frequent write, in one transaction and one commit with its
// Idempotency-Key: claim the key (or find its answer), lock the session, check the run, give the
// event an id above the session's last one, insert it, keep the key's answer; once committed,
// the followers are woken (feed.ts).
// The same steps as the store's other writes (event-log.ts, idempotency.ts), done where each
// database does them fastest:
// - PostgreSQL: one statement, a call of a function (append_session_event, migrations 6 and
//   10), so one round trip and one commit, where a keyed append was three transactions and seven
//   round trips. In the writes suite (npm run bench -- --quick --only writes, 100 lines a request,
//   32 connections, on a machine at a load of 7 to 12), keyed appends went from 7,500–14,500
//   lines/s at 66–76 µs of CPU a line (the API and its backends) to 27,700–37,700 at 23–25 µs,
//   with the followers' wake-ups sent after the commit, not in it (feed.ts).
// - SQLite: one synchronous transaction on the database itself (better-sqlite3), statements
//   prepared once, run straight unless a transaction of Kysely's is open (then after it): Kysely
//   costs about as much again as each statement on this path. The same suite: keyed appends from
//   19,000–29,000 lines/s at 27–30 µs a line to 46,000–58,000 at 13 µs. And the appends of one
//   turn of the event loop share that transaction and its commit (group commit, below).

/** An append as the store's API writer (api-writer.ts) hands it down: the event's id and time made, its lines as stored. */
export interface AppendInput {
  sessionId: string
  serverRunId: string
  /** A new event id of the event's time: taken unless the session's last id is not below it. */
  madeId: string
  linesJson: string
  createdAt: string
  /** The request's Idempotency-Key, and when the answer would be made; answers made before `keptSinceMs` are gone. */
  claim?: { key: ClaimedKey; nowMs: number; keptSinceMs: number } | undefined
}

export type AppendOutcome =
  | { kind: 'appended'; event: SessionEventTable; runsVersion: string | undefined }
  /** The key's answer to this same request, made before: nothing was written. */
  | { kind: 'answered'; status: number; resourceId: string | null; refusal: string | null }
  /** The key came with another request. */
  | { kind: 'reused' }
  /** Another process is writing with the key right now. */
  | { kind: 'in_use' }
  /** No run of the session has this id. */
  | { kind: 'no_run' }
  /** The run has stopped. */
  | { kind: 'stopped'; status: string }

export type AppendOne = (input: AppendInput) => Promise<AppendOutcome>

const eventOf = (input: AppendInput, id: string, serverSessionId: string): SessionEventTable => ({
  id,
  session_id: input.sessionId,
  server_run_id: input.serverRunId,
  server_session_id: serverSessionId,
  type: 'server_logs',
  server_run_error_id: null,
  log_lines_json: input.linesJson,
  created_at: input.createdAt,
})

interface FunctionRow {
  outcome: 'appended' | 'answered' | 'reused' | 'in_use' | 'no_run' | 'stopped'
  event_id: string | null
  event_server_session_id: string | null
  run_status: string | null
  runs_version: number | string | null
  kept_status: number | null
  kept_resource_id: string | null
  kept_refusal: string | null
}

/** PostgreSQL: the function of migration 6, in one statement. */
export function postgresAppend(db: Kysely<Database>): AppendOne {
  return async (input) => {
    const c = input.claim
    const { rows } = await sql<FunctionRow>`select * from append_session_event(
      ${input.sessionId}, ${input.serverRunId}, ${input.madeId}, ${input.linesJson}, ${input.createdAt},
      ${null}::text, ${c?.key.keyHash ?? null}::bytea, ${c?.key.lock ?? null}::bigint,
      ${c?.key.fingerprint ?? null}::bytea, ${c?.key.status ?? null}::smallint,
      ${c?.nowMs ?? null}::bigint, ${c?.keptSinceMs ?? null}::bigint)`.execute(db)
    const row = rows[0]!
    switch (row.outcome) {
      case 'appended':
        return {
          kind: 'appended',
          event: eventOf(input, row.event_id!, row.event_server_session_id!),
          runsVersion: row.runs_version === null ? undefined : String(row.runs_version),
        }
      case 'answered':
        return {
          kind: 'answered',
          status: Number(row.kept_status),
          resourceId: row.kept_resource_id,
          refusal: row.kept_refusal,
        }
      case 'stopped':
        return { kind: 'stopped', status: row.run_status! }
      default:
        return { kind: row.outcome }
    }
  }
}

/** SQLite: one synchronous transaction on the database, while Kysely's connection is held. */
export function sqliteAppend(database: SQLite.Database, db: Kysely<Database>): AppendOne {
  // Prepared on first use: the tables exist once the store is migrated.
  let statements: ReturnType<typeof prepare> | undefined
  const prepare = () => ({
    kept: database.prepare<[Buffer]>(
      'select fingerprint, status, resource_id, refusal, created_ms from idempotency_answers where key_hash = ?',
    ),
    forget: database.prepare<[Buffer]>('delete from idempotency_answers where key_hash = ?'),
    run: database.prepare<[string]>(
      `select r.server_session_id, r.status, ss.session_id from server_runs r
         join server_sessions ss on ss.id = r.server_session_id where r.id = ?`,
    ),
    last: database
      .prepare<[string]>('select id from session_events where session_id = ? order by id desc limit 1')
      .pluck(),
    insert: database.prepare(
      `insert into session_events
         (id, session_id, server_run_id, server_session_id, type, server_run_error_id, log_lines_json, created_at)
         values (@id, @session_id, @server_run_id, @server_session_id, @type, @server_run_error_id, @log_lines_json, @created_at)`,
    ),
    keep: database.prepare(
      `insert into idempotency_answers (created_ms, status, key_hash, fingerprint, resource_id, refusal)
         values (?, ?, ?, ?, ?, null)`,
    ),
    version: database.prepare('select n from run_changes where id = 1').pluck(),
  })
  const append = database.transaction((input: AppendInput): AppendOutcome => {
    const s = (statements ??= prepare())
    const c = input.claim
    if (c) {
      const kept = s.kept.get(c.key.keyHash) as
        | {
            fingerprint: Buffer
            status: number
            resource_id: string | null
            refusal: string | null
            created_ms: number
          }
        | undefined
      if (kept && kept.created_ms < c.keptSinceMs) s.forget.run(c.key.keyHash)
      else if (kept) {
        if (!kept.fingerprint.equals(c.key.fingerprint)) return { kind: 'reused' }
        return { kind: 'answered', status: kept.status, resourceId: kept.resource_id, refusal: kept.refusal }
      }
    }
    const run = s.run.get(input.serverRunId) as
      | { server_session_id: string; status: string; session_id: string }
      | undefined
    if (!run || run.session_id !== input.sessionId) return { kind: 'no_run' }
    if (run.status !== 'active') return { kind: 'stopped', status: run.status }
    const last = s.last.get(input.sessionId) as string | undefined
    const event = eventOf(
      input,
      last === undefined || input.madeId > last ? input.madeId : nextId(last),
      run.server_session_id,
    )
    s.insert.run(event)
    if (c) s.keep.run(c.nowMs, c.key.status, c.key.keyHash, c.key.fingerprint, event.id)
    return { kind: 'appended', event, runsVersion: String(s.version.get()) }
  })
  // The appends that come in one turn of the event loop, one transaction and one commit for all
  // (group commit): each in a savepoint of its own (a transaction function called inside another
  // is one, in better-sqlite3), so that one that fails is undone alone; each answered once all
  // are committed, in the order they came. SQLite writes every page a commit touches, whole, to
  // its WAL, and an append's pages (the table's last leaf, its session's leaves in the indexes)
  // are mostly those of the others of its turn: eight appends of one line, 48 pages one by one
  // and 6 together (test/append.test.ts). The disk was what bounded the API's appends here (about
  // 100 MB/s written for 135,000 lines/s): the writes suite's SQLite appends of 100 lines, 32
  // connections, went from 104,700 lines/s (p99 195 ms) to 190,800 (p99 53 ms), keyed from
  // 88,300 to 137,100, in two runs a few minutes apart. An append waits one turn at most.
  const appendAll = database.transaction((inputs: AppendInput[]) =>
    inputs.map((input): { outcome: AppendOutcome } | { error: unknown } => {
      try {
        return { outcome: append(input) }
      } catch (error) {
        return { error }
      }
    }),
  )
  let waiting: { input: AppendInput; resolve: (outcome: AppendOutcome) => void; reject: (error: unknown) => void }[] =
    []
  const flush = () => {
    const batch = waiting
    waiting = []
    let results: ReturnType<typeof appendAll>
    try {
      results = appendAll.immediate(batch.map((b) => b.input))
    } catch (error) {
      for (const b of batch) b.reject(asStoreError(error))
      return
    }
    batch.forEach((b, i) => {
      const result = results[i]!
      if ('error' in result) b.reject(asStoreError(result.error))
      else b.resolve(result.outcome)
    })
  }
  // A transaction of Kysely's that is open (it awaits between its statements) is waited for;
  // otherwise nothing can come between the statements of this one, which runs to its commit
  // without giving the event loop back.
  const flushNow = () => {
    if (!database.inTransaction) return flush()
    // Kysely's connection not had (the store closing): the turn's appends fail, none waits on.
    db.connection()
      .execute(async () => flush())
      .catch((error: unknown) => {
        const batch = waiting
        waiting = []
        for (const b of batch) b.reject(asStoreError(error))
      })
  }
  return (input) =>
    new Promise<AppendOutcome>((resolve, reject) => {
      waiting.push({ input, resolve, reject })
      if (waiting.length === 1) setImmediate(flushNow)
    })
}
