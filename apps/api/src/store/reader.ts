import { sql, type CompiledQuery, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely'
import type { Database } from './db.js'
import { bindValues, type PreparedQueries, type Bind } from './prepared.js'
import { eventFromRow, EVENT_COLUMNS, runFromRow, RUN_COLUMNS } from './rows.js'
import type {
  ApiKeyRecord,
  EventIdPage,
  EventRecord,
  ListEventsQuery,
  ListSessionsQuery,
  RunRecord,
  SessionPage,
  SessionRecord,
  StoreReader,
} from './types.js'

// The API's reads, in SQL, the same for SQLite and PostgreSQL, answered as records. Nothing is
// cached here: every call asks the database (the caching reader, ../cached-reader.ts, is the one
// place that keeps anything). Every query runs through PreparedQueries, which compiles each shape
// once.

type EventQuery = SelectQueryBuilder<Database & { e: Database['session_events'] }, 'e', object>

/**
 * A LIMIT written into the SQL, so part of a query's shape, rather than bound. SQLite reads a
 * bound LIMIT while it plans, so it prepares a statement with one again whenever it runs with new
 * bindings, and better-sqlite3 binds on every run: a page of ids cost 10 µs that way in a loop
 * and 6 µs with the LIMIT written in; a whole list request in process 203 -> 170 µs (a8ab625).
 */
function literalLimit(n: number): RawBuilder<number> {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a LIMIT: ${n}`)
  return sql.lit(n)
}

export interface SqlReaderOptions {
  /** The runs' version (store/types.ts), read on its own. Default: none, runs are read every time. */
  runsVersion?: () => string | undefined | Promise<string | undefined>
  /**
   * Read the runs' version with each page of ids, in the same query (a column beside each id),
   * rather than on its own: on a database over the network, the page then costs one round trip.
   */
  versionWithPage?: boolean
  /**
   * The indexes for the run and server session filters begin with the run or the server session,
   * not with the session (PostgreSQL, migration 14), so the session is checked on each row they
   * lead to. A filtered listing then first checks, once, that a run or server session it names
   * is one of the session's (a One-Time Filter in the plan): one of another session is never
   * read through and passed over row by row. With several in one filter the check is that one
   * of them is the session's; the others' rows are read and passed over (a filter of several
   * runs already reads their rows to sort them). Default: the indexes begin with the session.
   */
  filterIndexesWithoutSession?: boolean
}

export class SqlReader implements StoreReader {
  readonly #db: Kysely<Database>
  readonly #prepared: PreparedQueries
  readonly #runsVersion: NonNullable<SqlReaderOptions['runsVersion']>
  readonly #versionWithPage: boolean
  readonly #filterIndexesWithoutSession: boolean

  constructor(db: Kysely<Database>, prepared: PreparedQueries, options: SqlReaderOptions = {}) {
    this.#db = db
    this.#prepared = prepared
    this.#runsVersion = options.runsVersion ?? (() => undefined)
    this.#versionWithPage = options.versionWithPage ?? false
    this.#filterIndexesWithoutSession = options.filterIndexesWithoutSession ?? false
  }

  runsVersion(): string | undefined | Promise<string | undefined> {
    return this.#runsVersion()
  }

  async findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined> {
    const [key] = await this.#prepared.execute('findApiKey', { hash: secretHash }, (bind) =>
      this.#db.selectFrom('api_keys').selectAll().where('secret_hash', '=', bind<string>('hash')),
    )
    return key
  }

  async sessionInstance(sessionId: string): Promise<string | undefined> {
    const [row] = await this.#prepared.execute('sessionInstance', { id: sessionId }, (bind) =>
      this.#db.selectFrom('sessions').select('instance_id').where('id', '=', bind<string>('id')),
    )
    return row?.instance_id
  }

  async sessionWithMetadata(instanceId: string, metadata: Record<string, string>): Promise<string | undefined> {
    const found = await this.#db
      .selectFrom('sessions')
      .select('id')
      .where('instance_id', '=', instanceId)
      .where('metadata_json', '=', JSON.stringify(metadata))
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst()
    return found?.id
  }

  async serverRunWithDeploymentMetadata(
    sessionId: string,
    metadata: Record<string, string>,
  ): Promise<string | undefined> {
    const found = await this.#db
      .selectFrom('server_runs')
      .innerJoin('server_sessions', 'server_sessions.id', 'server_runs.server_session_id')
      .innerJoin('server_deployments', 'server_deployments.id', 'server_runs.server_deployment_id')
      .select('server_runs.id')
      .where('server_sessions.session_id', '=', sessionId)
      .where('server_deployments.metadata_json', '=', JSON.stringify(metadata))
      .orderBy('server_runs.id', 'desc')
      .limit(1)
      .executeTakeFirst()
    return found?.id
  }

  async session(sessionId: string): Promise<SessionRecord | undefined> {
    const [row] = await this.#prepared.execute('session', { id: sessionId }, (bind) =>
      this.#db.selectFrom('sessions').selectAll().where('id', '=', bind<string>('id')),
    )
    return row
  }

  async listSessions(query: ListSessionsQuery): Promise<SessionPage> {
    // Newest first: a page after X holds older sessions (ids below X), read downward from X; a
    // page before X newer ones, read upward from X and turned around. The index
    // sessions_instance_id (instance_id, id) serves both, and the probe.
    const backward = query.position?.direction === 'before'
    const toward = backward ? ('>' as const) : ('<' as const)
    const away = backward ? ('<' as const) : ('>' as const)
    const statuses = query.statuses ?? []
    const values: Record<string, unknown> = { instance: query.instanceId }
    statuses.forEach((status, i) => (values[`status${i}`] = status))
    const filtered = (bind: Bind) => {
      let q = this.#db.selectFrom('sessions').where('instance_id', '=', bind<string>('instance'))
      if (statuses.length > 0)
        q = q.where(
          'status',
          'in',
          statuses.map((_, i) => bind<SessionRecord['status']>(`status${i}`)),
        )
      return q
    }
    const limit = query.limit + 1
    const sessions = await this.#prepared.execute(
      `sessions:${statuses.length}:${query.position ? toward : '-'}:${limit}`,
      query.position ? { ...values, position: query.position.id } : values,
      (bind) => {
        let q = filtered(bind)
        if (query.position) q = q.where('id', toward, bind<string>('position'))
        return q
          .selectAll()
          .orderBy('id', backward ? 'asc' : 'desc')
          .limit(literalLimit(limit))
      },
    )
    const more = sessions.length > query.limit
    if (more) sessions.pop()
    if (backward) sessions.reverse()
    // As in listEventIds: whether anything lies on the other side of the page's edge (of the
    // position itself, for an empty page).
    let other = false
    if (query.position) {
      const edge = (backward ? sessions.at(-1) : sessions[0])?.id
      const inclusive = edge === undefined
      const found = await this.#prepared.execute(
        `sessions-probe:${statuses.length}:${away}${inclusive ? '=' : ''}`,
        { ...values, edge: edge ?? query.position.id },
        (bind) =>
          filtered(bind)
            .select('id')
            .where('id', inclusive ? (`${away}=` as const) : away, bind<string>('edge'))
            .orderBy('id', away === '<' ? 'desc' : 'asc')
            .limit(literalLimit(1)),
      )
      other = found.length > 0
    }
    return backward
      ? { sessions, hasMoreBefore: more, hasMoreAfter: other }
      : { sessions, hasMoreBefore: other, hasMoreAfter: more }
  }

  async listEventIds(query: ListEventsQuery): Promise<EventIdPage> {
    const { page, probe, values, backward } = this.#plan(query)
    const rows = (await this.#prepared.execute(page.shape, page.values, page.build)) as { id: string; v?: unknown }[]
    const ids = rows.map((row) => row.id)
    const runsVersion = rows[0]?.v == null ? undefined : String(rows[0].v as string | number | bigint)
    const more = ids.length > query.limit
    if (more) ids.pop()
    if (backward) ids.reverse()
    // Whether anything lies on the other side: next to the page's edge, or, for an empty page, at
    // the position itself (a page right after X that is empty may still have X before it).
    let other = false
    if (query.position) {
      const edge = backward ? ids.at(-1) : ids[0]
      const inclusive = edge === undefined
      const found = await this.#prepared.execute(
        probe.shape(inclusive),
        { ...values, edge: edge ?? query.position.id },
        probe.build(inclusive),
      )
      other = found.length > 0
    }
    const sides = backward ? { hasMoreBefore: more, hasMoreAfter: other } : { hasMoreBefore: other, hasMoreAfter: more }
    return { ids, ...sides, runsVersion }
  }

  /**
   * The SQL that listEventIds runs for `query`, compiled for this database with its values in
   * place: the page, and the probe on the other side of the position. For EXPLAIN
   * (test/query-plans.test.ts); nothing else runs them.
   */
  compileListEventIds(query: ListEventsQuery): CompiledQuery[] {
    const { page, probe, values } = this.#plan(query)
    const compiled = [page.build(bindValues(page.values)).compile()]
    if (query.position)
      compiled.push(
        probe
          .build(false)(bindValues({ ...values, edge: query.position.id }))
          .compile(),
      )
    return compiled
  }

  /** A listing's queries: the page of ids (one more than asked, to tell whether there is more), and the probe for the other side. */
  #plan(query: ListEventsQuery) {
    const asc = query.order === 'asc'
    const backward = query.position?.direction === 'before'
    // "after" and "before" are meant in the requested order; a page before the position is read
    // backwards from it, then turned around.
    const following = asc ? ('>' as const) : ('<' as const)
    const preceding = asc ? ('<' as const) : ('>' as const)
    const toward = backward ? preceding : following
    const away = backward ? following : preceding
    const scanAscending = backward ? !asc : asc
    const limit = query.limit + 1

    const lists = {
      run: query.serverRunIds ?? [],
      serverSession: query.serverSessionIds ?? [],
      type: query.types ?? [],
    }
    const values: Record<string, unknown> = { session: query.sessionId }
    for (const [name, items] of Object.entries(lists)) items.forEach((item, i) => (values[`${name}${i}`] = item))
    const filterShape = `${lists.run.length}:${lists.serverSession.length}:${lists.type.length}`

    const filtered = (bind: Bind): EventQuery => {
      const slots = (name: string, n: number) => Array.from({ length: n }, (_, i) => bind<string>(`${name}${i}`))
      const session = bind<string>('session')
      let q = (this.#db.selectFrom('session_events as e') as unknown as EventQuery).where('e.session_id', '=', session)
      // The one-time check of filterIndexesWithoutSession: a server session of the session is
      // among these (or among the runs' server sessions).
      const ofTheSession = (serverSessions: RawBuilder<unknown>) =>
        sql<boolean>`exists (select 1 from server_sessions ss where ss.session_id = ${session} and ss.id in (${serverSessions}))`
      if (lists.run.length) {
        const runs = slots('run', lists.run.length)
        q = q.where('e.server_run_id', 'in', runs)
        if (this.#filterIndexesWithoutSession)
          q = q.where(
            ofTheSession(sql`select r.server_session_id from server_runs r where r.id in (${sql.join(runs)})`),
          )
      }
      if (lists.serverSession.length) {
        const serverSessions = slots('serverSession', lists.serverSession.length)
        q = q.where('e.server_session_id', 'in', serverSessions)
        if (this.#filterIndexesWithoutSession) q = q.where(ofTheSession(sql.join(serverSessions)))
      }
      if (lists.type.length) q = q.where('e.type', 'in', slots('type', lists.type.length) as typeof lists.type)
      return q
    }
    const page = {
      values: query.position ? { ...values, position: query.position.id } : values,
      shape: `page:${filterShape}:${query.position ? toward : '-'}:${scanAscending ? 'asc' : 'desc'}:${limit}`,
      build: (bind: Bind) => {
        let q = filtered(bind)
        if (query.position) q = q.where('e.id', toward, bind<string>('position'))
        // The ids only: an index holds them all, and the events come from sessionEvents().
        const ids = q.select('e.id')
        return (this.#versionWithPage ? ids.select(sql<number>`(select n from run_changes where id = 1)`.as('v')) : ids)
          .orderBy('e.id', scanAscending ? 'asc' : 'desc')
          .limit(literalLimit(limit))
      },
    }
    // The nearest id beyond `edge` on the other side, `edge` included for an empty page. Ordered
    // away from `edge`, so that the index yields the nearest row first: without an ORDER BY,
    // PostgreSQL may bet on a Seq Scan finding some row soon, and on a big table lose.
    const probe = {
      shape: (inclusive: boolean) => `probe:${filterShape}:${away}${inclusive ? '=' : ''}`,
      build: (inclusive: boolean) => (bind: Bind) =>
        filtered(bind)
          .select('e.id')
          .where('e.id', inclusive ? (`${away}=` as const) : away, bind<string>('edge'))
          .orderBy('e.id', away === '<' ? 'desc' : 'asc')
          .limit(literalLimit(1)),
    }
    return { page, probe, values, backward }
  }

  async sessionEvents(sessionId: string, ids: readonly string[]): Promise<EventRecord[]> {
    if (ids.length === 0) return []
    const values: Record<string, string> = { session: sessionId }
    ids.forEach((id, i) => (values[`id${i}`] = id))
    const rows = await this.#prepared.execute(`events:${ids.length}`, values, (bind) =>
      this.#db
        .selectFrom('session_events as e')
        .leftJoin('server_run_errors as x', 'x.id', 'e.server_run_error_id')
        .select(EVENT_COLUMNS())
        .where('e.session_id', '=', bind<string>('session'))
        .where(
          'e.id',
          'in',
          ids.map((_, i) => bind<string>(`id${i}`)),
        ),
    )
    const byId = new Map<string, EventRecord>()
    for (const row of rows) {
      const event = eventFromRow(row as Record<string, unknown>)
      byId.set(event.event.id, event)
    }
    return ids.flatMap((id) => byId.get(id) ?? [])
  }

  async serverRuns(ids: readonly string[], _version?: string): Promise<RunRecord[]> {
    if (ids.length === 0) return []
    const values = Object.fromEntries(ids.map((id, i) => [`run${i}`, id]))
    const rows = await this.#prepared.execute(`runs:${ids.length}`, values, (bind) =>
      this.#db
        .selectFrom('server_runs as r')
        .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
        .innerJoin('server_deployments as d', 'd.id', 'r.server_deployment_id')
        .innerJoin('servers as s', 's.id', 'd.server_id')
        .select(RUN_COLUMNS())
        .where(
          'r.id',
          'in',
          ids.map((_, i) => bind<string>(`run${i}`)),
        ),
    )
    return rows.map((row) => runFromRow(row as Record<string, unknown>))
  }
}
