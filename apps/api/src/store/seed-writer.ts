import type { Kysely } from 'kysely'
import type { Database } from './db.js'
import { allocateEventIds, insertRunError, runPlaces, writingEvents } from './event-log.js'
import type { EventFeed } from './feed.js'
import {
  logLinesJson,
  serverDeploymentRow,
  serverRow,
  serverRunRow,
  serverSessionRow,
  serverVersionRow,
  sessionEventRow,
  sessionRow,
} from './new-rows.js'
import type {
  NewLogEvent,
  NewRunError,
  NewServer,
  NewServerDeployment,
  NewServerRun,
  NewServerSession,
  NewServerVersion,
  NewSession,
  RunChange,
  SeedWriter,
  SessionRecord,
} from './types.js'

// The seed's writes (demo data, the benchmark's datasets, tests): rows as they are given, times
// included, one statement each, and events in bulk. The rows are the API's (new-rows.ts), and
// events get their ids in the session's order as the API's do (event-log.ts).

/** Rows a batch insert writes at once: well under SQLite's and PostgreSQL's parameter limits. */
const BATCH_ROWS = 500

const isoOrNull = (at: Date | null | undefined) => (at ? at.toISOString() : null)

export class SqlSeedWriter implements SeedWriter {
  readonly #db: Kysely<Database>
  readonly #feed: EventFeed | undefined

  /** `feed`: told of the sessions that got events, once they are committed (the live tail). */
  constructor(db: Kysely<Database>, feed?: EventFeed) {
    this.#db = db
    this.#feed = feed
  }

  async createServer(input: NewServer): Promise<{ id: string }> {
    const row = serverRow(input)
    await this.#db.insertInto('servers').values(row).execute()
    return { id: row.id }
  }

  async createServerVersion(input: NewServerVersion): Promise<{ id: string }> {
    const row = serverVersionRow(input)
    await this.#db.insertInto('server_versions').values(row).execute()
    return { id: row.id }
  }

  async createServerDeployment(input: NewServerDeployment): Promise<{ id: string }> {
    const row = serverDeploymentRow(input)
    await this.#db.insertInto('server_deployments').values(row).execute()
    return { id: row.id }
  }

  async createSession(input: NewSession): Promise<SessionRecord> {
    const row = sessionRow(input)
    await this.#db.insertInto('sessions').values(row).execute()
    return row
  }

  async createServerSession(input: NewServerSession): Promise<{ id: string }> {
    const row = serverSessionRow(input)
    await this.#db.insertInto('server_sessions').values(row).execute()
    return { id: row.id }
  }

  async createServerRun(input: NewServerRun): Promise<{ id: string }> {
    const serverSession = await this.#db
      .selectFrom('server_sessions')
      .select('server_deployment_id')
      .where('id', '=', input.serverSessionId)
      .executeTakeFirstOrThrow(() => new Error(`no server session ${input.serverSessionId}`))
    const row = serverRunRow({ ...input, serverDeploymentId: serverSession.server_deployment_id })
    await this.#db.insertInto('server_runs').values(row).execute()
    return { id: row.id }
  }

  async updateServerRun(id: string, change: RunChange): Promise<void> {
    await this.#db
      .updateTable('server_runs')
      .set({
        ...(change.status !== undefined && { status: change.status }),
        ...(change.startedAt !== undefined && { started_at: isoOrNull(change.startedAt) }),
        ...(change.stoppedAt !== undefined && { stopped_at: isoOrNull(change.stoppedAt) }),
        updated_at: (change.at ?? new Date()).toISOString(),
      })
      .where('id', '=', id)
      .execute()
  }

  async appendLogEvents(events: readonly NewLogEvent[]): Promise<string[]> {
    if (events.length === 0) return []
    return writingEvents(this.#db, this.#feed, async (trx, touched) => {
      const runs = await runPlaces(
        trx,
        events.map((e) => e.serverRunId),
      )
      const placed = events.map((event) => {
        const run = runs.get(event.serverRunId)
        if (!run) throw new Error(`no server run ${event.serverRunId}`)
        return { run, at: event.at ?? new Date(), lines: event.lines }
      })
      const ids = await allocateEventIds(
        trx,
        placed.map(({ run, at }) => ({ sessionId: run.session_id, at })),
      )
      const rows = placed.map(({ run, at, lines }, i) =>
        sessionEventRow({ id: ids[i]!, run, at, event: { type: 'server_logs', linesJson: logLinesJson(lines) } }),
      )
      for (const row of rows) touched.add(row.session_id)
      for (let i = 0; i < rows.length; i += BATCH_ROWS) {
        await trx
          .insertInto('session_events')
          .values(rows.slice(i, i + BATCH_ROWS))
          .execute()
      }
      return ids
    })
  }

  async recordServerRunError(input: NewRunError): Promise<{ id: string; eventId: string }> {
    const at = input.at ?? new Date()
    return writingEvents(this.#db, this.#feed, async (trx, touched) => {
      const run = (await runPlaces(trx, [input.serverRunId])).get(input.serverRunId)
      if (!run) throw new Error(`no server run ${input.serverRunId}`)
      touched.add(run.session_id)
      return insertRunError(trx, run, { ...input, at })
    })
  }
}
