import { createHash } from 'node:crypto'
import { sql, type CompiledQuery, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely'
import { LRUCache } from 'lru-cache'
import { bindValues, PreparedQueries, type Bind, type FastRead } from './prepared.js'
import { newId, randomBase62 } from '../ids.js'
import type { Database } from './db.js'
import type { ApiKeyRecord, EventPage, EventRecord, ListEventsQuery, NewLogEvent, RunRecord, Store } from './types.js'

// The one implementation of Store, over Kysely: the same queries for SQLite and PostgreSQL.

const iso = (at: Date | undefined) => (at ?? new Date()).toISOString()
const isoOrNull = (at: Date | null | undefined) => (at ? at.toISOString() : null)

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/** Rows a batch insert writes at once: well under SQLite's and PostgreSQL's parameter limits. */
const BATCH_ROWS = 500

/** How much memory the events read before may take, in bytes (roughly). */
export const DEFAULT_EVENT_CACHE_BYTES = 32 * 1024 * 1024

/**
 * About what a cached event takes, as measured over 100,000 of them: a kilobyte for the record,
 * its strings and the cache's own bookkeeping, and its text twice, as read and as the UTF-8 the
 * API serves (kept beside it, apps/api/src/serialize.ts).
 */
const eventSize = (e: EventRecord) =>
  1024 + 2 * (e.log_lines_json.length + (e.error_message?.length ?? 0) + (e.error_metadata_json?.length ?? 0))

type EventQuery = SelectQueryBuilder<Database & { e: Database['session_events'] }, 'e', object>

export interface SqlStoreOptions {
  dialect: 'sqlite' | 'postgres'
  db: Kysely<Database>
  /** Called by close(), after Kysely is destroyed (for resources Kysely does not own). */
  onClose?: () => Promise<void> | void
  /** Runs the hot reads synchronously, around Kysely's driver (embedded SQLite). */
  fastRead?: FastRead
  /** How many bytes of events read before are kept for later pages (0: none). Default: 32 MiB. */
  eventCacheBytes?: number
  /**
   * A value that changes whenever something a run shows (the run, its server session, its
   * deployment or its server) is written, by this process or any other (undefined: cannot tell
   * now). With one, runs read before are reused until it changes; without (PostgreSQL), every
   * response reads its runs afresh.
   */
  runsVersion?: () => string | undefined
}

/**
 * A LIMIT written into the SQL, so part of a query's shape, rather than bound. SQLite reads a
 * bound LIMIT while it plans, so it prepares a statement with one again whenever it runs with new
 * bindings, and better-sqlite3 binds on every run: a page of ids cost 10 µs that way in a loop
 * and 6 µs with the LIMIT written in, and more under load, where parsing runs on cold caches.
 */
function literalLimit(n: number): RawBuilder<number> {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a LIMIT: ${n}`)
  return sql.lit(n)
}

export class SqlStore implements Store {
  readonly dialect: 'sqlite' | 'postgres'
  readonly db: Kysely<Database>
  readonly #onClose: SqlStoreOptions['onClose']
  /** The reads of the API's hot path, compiled once per shape. */
  readonly #prepared: PreparedQueries
  /**
   * Events by id. An event never changes once written (the store appends events and never
   * updates or deletes one, nor the run error it shows), so a page asks the database only for
   * the ids on it, from an index alone, and reads in full only the events it has not seen
   * before. What does change, the run an event shows, is read for every response, or on SQLite
   * reused until something it shows changes (#runs).
   */
  readonly #eventCache: LRUCache<string, EventRecord> | undefined
  readonly #runsVersion: (() => string | undefined) | undefined
  /** Runs as they were read, and when: valid while the runs' version is the same. */
  readonly #runCache = new LRUCache<string, { version: string; run: RunRecord }>({ max: 10_000 })

  constructor(options: SqlStoreOptions) {
    this.dialect = options.dialect
    this.db = options.db
    this.#onClose = options.onClose
    this.#prepared = new PreparedQueries(options.db, options.fastRead)
    const cacheBytes = options.eventCacheBytes ?? DEFAULT_EVENT_CACHE_BYTES
    this.#eventCache = cacheBytes > 0 ? new LRUCache({ maxSize: cacheBytes, sizeCalculation: eventSize }) : undefined
    this.#runsVersion = options.runsVersion
  }

  async ping(): Promise<void> {
    await this.db.selectFrom('schema_migrations').select('version').limit(1).execute()
  }

  async close(): Promise<void> {
    await this.db.destroy()
    await this.#onClose?.()
  }

  async isEmpty(): Promise<boolean> {
    const row = await this.db.selectFrom('instances').select('id').limit(1).executeTakeFirst()
    return row === undefined
  }

  // ---- reads ----

  async findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined> {
    const [key] = await this.#prepared.execute('findApiKey', { hash: secretHash }, (bind) =>
      this.db.selectFrom('api_keys').selectAll().where('secret_hash', '=', bind<string>('hash')),
    )
    return key
  }

  async sessionInstance(sessionId: string): Promise<string | undefined> {
    const [row] = await this.#prepared.execute('sessionInstance', { id: sessionId }, (bind) =>
      this.db.selectFrom('sessions').select('instance_id').where('id', '=', bind<string>('id')),
    )
    return row?.instance_id
  }

  async firstSession(instanceId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('sessions')
      .select('id')
      .where('instance_id', '=', instanceId)
      .orderBy('id', 'asc')
      .limit(1)
      .executeTakeFirst()
    return row?.id
  }

  #events(): EventQuery {
    return this.db.selectFrom('session_events as e') as unknown as EventQuery
  }

  /** Events in full: with the run error that a `server_run_error` event shows. */
  #selectEvent(q: EventQuery) {
    return q.leftJoin('server_run_errors as x', 'x.id', 'e.server_run_error_id').select([
      'e.id',
      'e.session_id',
      'e.server_run_id',
      'e.server_session_id',
      'e.type',
      'e.server_run_error_id',
      'e.log_lines_json',
      'e.created_at',
      'x.code as error_code',
      'x.message as error_message',
      'x.metadata_json as error_metadata_json',
      'x.created_at as error_created_at',
    ])
  }

  /** The filters of a listing: its values by slot name, and its shape. */
  #filters(query: ListEventsQuery) {
    const values: Record<string, unknown> = { session: query.sessionId }
    const lists = { run: query.serverRunIds ?? [], serverSession: query.serverSessionIds ?? [], type: query.types ?? [] }
    for (const [name, items] of Object.entries(lists)) items.forEach((item, i) => (values[`${name}${i}`] = item))
    const counts = { run: lists.run.length, serverSession: lists.serverSession.length, type: lists.type.length }
    return { values, counts, shape: `${counts.run}:${counts.serverSession}:${counts.type}` }
  }

  #filtered(counts: { run: number; serverSession: number; type: number }, bind: Bind): EventQuery {
    const slots = (name: string, n: number) => Array.from({ length: n }, (_, i) => bind<string>(`${name}${i}`))
    let q = this.#events().where('e.session_id', '=', bind<string>('session'))
    if (counts.run) q = q.where('e.server_run_id', 'in', slots('run', counts.run))
    if (counts.serverSession) q = q.where('e.server_session_id', 'in', slots('serverSession', counts.serverSession))
    if (counts.type) q = q.where('e.type', 'in', slots('type', counts.type) as ('server_logs' | 'server_run_error')[])
    return q
  }

  /** How a page is read: the page query, its values and shape, and the side on which to probe for more. */
  #plan(query: ListEventsQuery) {
    const asc = query.order === 'asc'
    const position = query.position
    const backward = position?.direction === 'before'
    // "after" and "before" are meant in the requested order.
    const following = asc ? ('>' as const) : ('<' as const)
    const preceding = asc ? ('<' as const) : ('>' as const)
    // A page before the position is read backwards from it, then turned around.
    const scanAscending = backward ? !asc : asc
    const filters = this.#filters(query)
    const values = { ...filters.values, ...(position && { position: position.id }) }
    // One more than asked for, to tell whether there is more.
    const limit = query.limit + 1
    const shape = `page:${filters.shape}:${position ? (backward ? preceding : following) : '-'}:${scanAscending ? 'asc' : 'desc'}:${limit}`
    const build = (bind: Bind) => {
      let q = this.#filtered(filters.counts, bind)
      if (position) q = q.where('e.id', backward ? preceding : following, bind<string>('position'))
      // The ids only: an index holds them all, and the events come from #eventsById.
      return q
        .select('e.id')
        .orderBy('e.id', scanAscending ? 'asc' : 'desc')
        .limit(literalLimit(limit))
    }
    return { build, values, shape, backward, following, preceding }
  }

  async listSessionEvents(query: ListEventsQuery): Promise<EventPage> {
    const { build, values, shape, backward, following, preceding } = this.#plan(query)
    const position = query.position
    const ids = (await this.#prepared.execute(shape, values, build)).map((row) => row.id)
    const more = ids.length > query.limit
    if (more) ids.pop()
    if (backward) ids.reverse()
    const rows = await this.#eventsById(query.sessionId, ids)

    let hasMoreBefore: boolean
    let hasMoreAfter: boolean
    if (!backward) {
      hasMoreAfter = more
      hasMoreBefore = position ? await this.#exists(query, rows[0]?.id ?? position.id, preceding, rows.length === 0) : false
    } else {
      hasMoreBefore = more
      hasMoreAfter = await this.#exists(query, rows.at(-1)?.id ?? position!.id, following, rows.length === 0)
    }

    return { events: rows, runs: await this.#runs(rows), hasMoreBefore, hasMoreAfter }
  }

  /**
   * The SQL that listSessionEvents runs on the events table for `query`, compiled for this
   * database: the page, and the probe for more on the other side of the position. For EXPLAIN
   * (test/query-plans.test.ts); nothing else runs them.
   */
  compileListSessionEvents(query: ListEventsQuery): CompiledQuery[] {
    const { build, values, backward, following, preceding } = this.#plan(query)
    const compiled: CompiledQuery[] = [build(bindValues(values)).compile()]
    if (query.position) {
      const probe = this.#existsQuery(query, query.position.id, backward ? following : preceding, false)
      compiled.push(probe.build(bindValues(probe.values)).compile())
    }
    return compiled
  }

  #existsQuery(query: ListEventsQuery, id: string, side: '<' | '>', inclusive: boolean) {
    const op = inclusive ? (side === '<' ? '<=' : '>=') : side
    const filters = this.#filters(query)
    return {
      shape: `exists:${filters.shape}:${op}`,
      values: { ...filters.values, edge: id },
      // Ordered away from `id`, so that the index yields the nearest row first: without an
      // ORDER BY, PostgreSQL may bet on a Seq Scan finding some row soon, and on a big table lose.
      build: (bind: Bind) =>
        this.#filtered(filters.counts, bind)
          .select('e.id')
          .where('e.id', op, bind<string>('edge'))
          .orderBy('e.id', side === '<' ? 'desc' : 'asc')
          .limit(literalLimit(1)),
    }
  }

  /** Whether an event of the filtered list lies beyond `id` (or at it, when `inclusive`). */
  async #exists(query: ListEventsQuery, id: string, side: '<' | '>', inclusive: boolean): Promise<boolean> {
    const probe = this.#existsQuery(query, id, side, inclusive)
    return (await this.#prepared.execute(probe.shape, probe.values, probe.build)).length > 0
  }

  /** The events of a session with these ids, in their order: from the cache, the rest in one query. */
  async #eventsById(sessionId: string, ids: readonly string[]): Promise<EventRecord[]> {
    const cache = this.#eventCache
    const found: (EventRecord | undefined)[] = cache ? ids.map((id) => cache.get(id)) : new Array(ids.length)
    const missing = ids.filter((_, i) => found[i] === undefined)
    if (missing.length > 0) {
      const values: Record<string, string> = { session: sessionId }
      missing.forEach((id, i) => (values[`id${i}`] = id))
      const rows = (await this.#prepared.execute(`events:${missing.length}`, values, (bind) =>
        this.#selectEvent(
          this.#events()
            .where('e.session_id', '=', bind<string>('session'))
            .where(
              'e.id',
              'in',
              missing.map((_, i) => bind<string>(`id${i}`)),
            ),
        ),
      )) as EventRecord[]
      const byId = new Map(rows.map((row) => [row.id, row]))
      for (let i = 0; i < ids.length; i++) {
        if (found[i] !== undefined) continue
        const row = byId.get(ids[i]!)
        if (row) cache?.set(row.id, row)
        found[i] = row
      }
    }
    // Every id was just read from the session's events, and events are never deleted.
    return found.filter((e): e is EventRecord => e !== undefined)
  }

  async getSessionEvent(sessionId: string, eventId: string) {
    let event = this.#eventCache?.get(eventId)
    if (event === undefined) {
      ;[event] = (await this.#prepared.execute('getSessionEvent', { id: eventId, session: sessionId }, (bind) =>
        this.#selectEvent(this.#events().where('e.id', '=', bind<string>('id')).where('e.session_id', '=', bind<string>('session'))),
      )) as (EventRecord | undefined)[]
      if (event) this.#eventCache?.set(event.id, event)
    }
    // An id is unique across sessions: an event of another session is not this session's.
    if (!event || event.session_id !== sessionId) return undefined
    const runs = await this.#runs([event])
    return { event, run: event.server_run_id ? runs.get(event.server_run_id) : undefined }
  }

  /**
   * The runs of a page of events, with their previews, in one query; none when the database can
   * tell that nothing they show was written since they were read last.
   */
  async #runs(events: readonly EventRecord[]): Promise<Map<string, RunRecord>> {
    const runs = new Map<string, RunRecord>()
    const wanted = new Set<string>()
    for (const e of events) if (e.server_run_id !== null) wanted.add(e.server_run_id)
    if (wanted.size === 0) return runs
    // Taken before the read: a write that lands in between makes the next version differ.
    const version = this.#runsVersion?.()
    let ids = [...wanted]
    if (version !== undefined) {
      ids = ids.filter((id) => {
        const cached = this.#runCache.get(id)
        if (cached?.version !== version) return true
        runs.set(id, cached.run)
        return false
      })
      if (ids.length === 0) return runs
    }
    const values = Object.fromEntries(ids.map((id, i) => [`run${i}`, id]))
    const rows = await this.#prepared.execute(`runs:${ids.length}`, values, (bind) =>
      this.db
      .selectFrom('server_runs as r')
      .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
      .innerJoin('server_deployments as d', 'd.id', 'r.server_deployment_id')
      .innerJoin('servers as s', 's.id', 'd.server_id')
      .where(
        'r.id',
        'in',
        ids.map((_, i) => bind<string>(`run${i}`)),
      )
      .select([
        'r.id as r_id',
        'r.server_session_id as r_server_session_id',
        'r.server_deployment_id as r_server_deployment_id',
        'r.server_version_id as r_server_version_id',
        'r.type as r_type',
        'r.status as r_status',
        'r.created_at as r_created_at',
        'r.updated_at as r_updated_at',
        'r.started_at as r_started_at',
        'r.stopped_at as r_stopped_at',
        'ss.id as ss_id',
        'ss.session_id as ss_session_id',
        'ss.server_deployment_id as ss_server_deployment_id',
        'ss.status as ss_status',
        'ss.mcp_json as ss_mcp_json',
        'ss.client_message_count as ss_client_message_count',
        'ss.server_message_count as ss_server_message_count',
        'ss.created_at as ss_created_at',
        'ss.updated_at as ss_updated_at',
        'd.id as d_id',
        'd.instance_id as d_instance_id',
        'd.server_id as d_server_id',
        'd.name as d_name',
        'd.description as d_description',
        'd.metadata_json as d_metadata_json',
        'd.created_at as d_created_at',
        'd.updated_at as d_updated_at',
        's.id as s_id',
        's.name as s_name',
        's.description as s_description',
        's.type as s_type',
        's.created_at as s_created_at',
        's.updated_at as s_updated_at',
      ]),
    )
    for (const row of rows) {
      const record: RunRecord = {
        run: {
          id: row.r_id,
          server_session_id: row.r_server_session_id,
          server_deployment_id: row.r_server_deployment_id,
          server_version_id: row.r_server_version_id,
          type: row.r_type,
          status: row.r_status,
          created_at: row.r_created_at,
          updated_at: row.r_updated_at,
          started_at: row.r_started_at,
          stopped_at: row.r_stopped_at,
        },
        serverSession: {
          id: row.ss_id,
          session_id: row.ss_session_id,
          server_deployment_id: row.ss_server_deployment_id,
          status: row.ss_status,
          mcp_json: row.ss_mcp_json,
          client_message_count: Number(row.ss_client_message_count),
          server_message_count: Number(row.ss_server_message_count),
          created_at: row.ss_created_at,
          updated_at: row.ss_updated_at,
        },
        deployment: {
          id: row.d_id,
          instance_id: row.d_instance_id,
          server_id: row.d_server_id,
          name: row.d_name,
          description: row.d_description,
          metadata_json: row.d_metadata_json,
          created_at: row.d_created_at,
          updated_at: row.d_updated_at,
        },
        server: {
          id: row.s_id,
          name: row.s_name,
          description: row.s_description,
          type: row.s_type,
          created_at: row.s_created_at,
          updated_at: row.s_updated_at,
        },
      }
      runs.set(record.run.id, record)
      if (version !== undefined) this.#runCache.set(record.run.id, { version, run: record })
    }
    return runs
  }

  // ---- writes ----

  async createInstance(input: { name: string; at?: Date }) {
    const now = input.at ?? new Date()
    const id = newId('instance', now.getTime())
    await this.db.insertInto('instances').values({ id, name: input.name, created_at: now.toISOString() }).execute()
    return { id }
  }

  async createApiKey(input: Parameters<Store['createApiKey']>[0]) {
    const now = input.at ?? new Date()
    const id = newId('apiKey', now.getTime())
    const kind = input.kind
    const secret = input.secret ?? `metorial_${kind === 'secret' ? 'sk' : 'pk'}_${randomBase62(40)}`
    const at = now.toISOString()
    await this.db
      .insertInto('api_keys')
      .values({
        id,
        instance_id: input.instanceId,
        kind,
        secret_hash: hashSecret(secret),
        secret_preview: secret.slice(0, 16),
        scopes: kind === 'secret' ? 'sessions:read' : '',
        revoked_at: input.revoked ? at : null,
        expires_at: isoOrNull(input.expiresAt),
        created_at: at,
      })
      .execute()
    return { id, secret }
  }

  async revokeApiKey(id: string, at?: Date) {
    await this.db.updateTable('api_keys').set({ revoked_at: iso(at) }).where('id', '=', id).execute()
  }

  async createServer(input: Parameters<Store['createServer']>[0]) {
    const now = input.at ?? new Date()
    const id = newId('server', now.getTime())
    const at = now.toISOString()
    await this.db
      .insertInto('servers')
      .values({ id, name: input.name, description: input.description, type: input.type, created_at: at, updated_at: at })
      .execute()
    return { id }
  }

  async createServerVersion(input: { serverId: string; at?: Date }) {
    const now = input.at ?? new Date()
    const id = newId('serverVersion', now.getTime())
    await this.db.insertInto('server_versions').values({ id, server_id: input.serverId, created_at: now.toISOString() }).execute()
    return { id }
  }

  async createServerDeployment(input: Parameters<Store['createServerDeployment']>[0]) {
    const now = input.at ?? new Date()
    const id = newId('serverDeployment', now.getTime())
    const at = now.toISOString()
    await this.db
      .insertInto('server_deployments')
      .values({
        id,
        instance_id: input.instanceId,
        server_id: input.serverId,
        name: input.name,
        description: input.description,
        metadata_json: JSON.stringify(input.metadata ?? {}),
        created_at: at,
        updated_at: at,
      })
      .execute()
    return { id }
  }

  async createSession(input: { instanceId: string; at?: Date }) {
    const now = input.at ?? new Date()
    const id = newId('session', now.getTime())
    await this.db.insertInto('sessions').values({ id, instance_id: input.instanceId, created_at: now.toISOString() }).execute()
    return { id }
  }

  async createServerSession(input: Parameters<Store['createServerSession']>[0]) {
    const now = input.at ?? new Date()
    const id = newId('serverSession', now.getTime())
    const at = now.toISOString()
    await this.db
      .insertInto('server_sessions')
      .values({
        id,
        session_id: input.sessionId,
        server_deployment_id: input.serverDeploymentId,
        status: 'active',
        mcp_json: JSON.stringify(input.mcp),
        client_message_count: input.clientMessageCount ?? 0,
        server_message_count: input.serverMessageCount ?? 0,
        created_at: at,
        updated_at: at,
      })
      .execute()
    return { id }
  }

  async createServerRun(input: Parameters<Store['createServerRun']>[0]) {
    const now = input.at ?? new Date()
    const id = newId('serverRun', now.getTime())
    const at = now.toISOString()
    const serverSession = await this.db
      .selectFrom('server_sessions')
      .select('server_deployment_id')
      .where('id', '=', input.serverSessionId)
      .executeTakeFirstOrThrow(() => new Error(`no server session ${input.serverSessionId}`))
    await this.db
      .insertInto('server_runs')
      .values({
        id,
        server_session_id: input.serverSessionId,
        server_deployment_id: serverSession.server_deployment_id,
        server_version_id: input.serverVersionId,
        type: input.type,
        status: input.status ?? 'active',
        created_at: at,
        updated_at: at,
        started_at: input.startedAt === undefined ? at : isoOrNull(input.startedAt),
        stopped_at: null,
      })
      .execute()
    return { id }
  }

  async updateServerRun(id: string, change: Parameters<Store['updateServerRun']>[1]) {
    await this.db
      .updateTable('server_runs')
      .set({
        ...(change.status !== undefined && { status: change.status }),
        ...(change.startedAt !== undefined && { started_at: isoOrNull(change.startedAt) }),
        ...(change.stoppedAt !== undefined && { stopped_at: isoOrNull(change.stoppedAt) }),
        updated_at: iso(change.at),
      })
      .where('id', '=', id)
      .execute()
  }

  async #runSessions(runIds: readonly string[], db: Kysely<Database> = this.db) {
    const rows = await db
      .selectFrom('server_runs as r')
      .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
      .select(['r.id', 'r.server_session_id', 'ss.session_id'])
      .where('r.id', 'in', [...new Set(runIds)])
      .execute()
    return new Map(rows.map((r) => [r.id, r]))
  }

  async appendLogEvents(events: readonly NewLogEvent[]): Promise<string[]> {
    if (events.length === 0) return []
    return this.db.transaction().execute(async (trx) => {
      const runs = await this.#runSessions(
        events.map((e) => e.serverRunId),
        trx,
      )
      const rows = events.map((event) => {
        const run = runs.get(event.serverRunId)
        if (!run) throw new Error(`no server run ${event.serverRunId}`)
        const at = event.at ?? new Date()
        return {
          id: newId('sessionEvent', at.getTime()),
          session_id: run.session_id,
          server_run_id: run.id,
          server_session_id: run.server_session_id,
          type: 'server_logs' as const,
          server_run_error_id: null,
          log_lines_json: JSON.stringify(event.lines.map(({ type, line }) => ({ type, line }))),
          created_at: at.toISOString(),
        }
      })
      for (let i = 0; i < rows.length; i += BATCH_ROWS) {
        await trx
          .insertInto('session_events')
          .values(rows.slice(i, i + BATCH_ROWS))
          .execute()
      }
      return rows.map((r) => r.id)
    })
  }

  async recordServerRunError(input: Parameters<Store['recordServerRunError']>[0]) {
    const at = input.at ?? new Date()
    const created = at.toISOString()
    return this.db.transaction().execute(async (trx) => {
      const run = (await this.#runSessions([input.serverRunId], trx)).get(input.serverRunId)
      if (!run) throw new Error(`no server run ${input.serverRunId}`)
      const id = newId('serverRunError', at.getTime())
      const eventId = newId('sessionEvent', at.getTime())
      await trx
        .insertInto('server_run_errors')
        .values({
          id,
          server_run_id: run.id,
          code: input.code,
          message: input.message,
          metadata_json: JSON.stringify(input.metadata ?? {}),
          created_at: created,
        })
        .execute()
      await trx
        .insertInto('session_events')
        .values({
          id: eventId,
          session_id: run.session_id,
          server_run_id: run.id,
          server_session_id: run.server_session_id,
          type: 'server_run_error',
          server_run_error_id: id,
          log_lines_json: '[]',
          created_at: created,
        })
        .execute()
      await trx
        .updateTable('server_runs')
        .set({ status: 'failed', stopped_at: created, updated_at: created })
        .where('id', '=', run.id)
        .execute()
      return { id, eventId }
    })
  }
}
