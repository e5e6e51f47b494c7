import { createHash } from 'node:crypto'
import type { LogLine, Mcp, Metadata, ServerRunStart, ServerRunStop } from '@session-events/server-stubs'
import * as specValues from '@session-events/server-stubs/values'
import type { Kysely, Transaction } from 'kysely'
import { newId, nextId, randomBase62 } from '../ids.js'
import type { Database, ServerRunTable, ServerTable, SessionTable } from './db.js'
import { lockSession, notifySessions, writeTransaction } from './dialect.js'
import type { EventFeed } from './feed.js'
import { InvalidReferenceError, WriteConflictError, type EventRecord } from './types.js'

// Every write of the store: the seed's, the operators' (instances and keys) and the write
// operations'. What must be true of writes:
// - Within a session, event ids are handed out in commit order. Events are written under a lock
//   on their session (a row lock on PostgreSQL, the database's write lock on SQLite), and each
//   gets an id above the session's last one, so a reader who has seen an id never later finds a
//   smaller one committed behind it.
// - Events are never changed once written: appending adds rows, stopping a run adds an error
//   event. What changes is the run (its status and timestamps).

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/** The MCP connection of a server session started without one said: the spec's default. */
const DEFAULT_MCP = specValues.schemas.ServerSessionInput.properties.mcp.default

/** Rows a batch insert writes at once: well under SQLite's and PostgreSQL's parameter limits. */
const BATCH_ROWS = 500

/** The scopes of a secret key: it reads and writes its instance's sessions. */
export const SECRET_KEY_SCOPES = 'sessions:read sessions:write'

export interface NewLogEvent {
  serverRunId: string
  lines: LogLine[]
  at?: Date
}

const isoOrNull = (at: Date | null | undefined) => (at ? at.toISOString() : null)

/** A run's session and server session, as an event of it is written. */
interface RunPlace {
  id: string
  session_id: string
  server_session_id: string
  status: ServerRunTable['status']
}

/**
 * The rows of what runs run on (servers, versions, deployments, sessions, server sessions, runs),
 * inserted through `db`: the store itself, or a transaction that writes several of them at once.
 */
function inserts(db: Kysely<Database>) {
  return {
    async server(input: {
      name: string
      description: string | null
      type: ServerTable['type']
      at?: Date
    }): Promise<{ id: string }> {
      const now = input.at ?? new Date()
      const id = newId('server', now.getTime())
      const at = now.toISOString()
      await db
        .insertInto('servers')
        .values({
          id,
          name: input.name,
          description: input.description,
          type: input.type,
          created_at: at,
          updated_at: at,
        })
        .execute()
      return { id }
    },

    async serverVersion(input: { serverId: string; at?: Date }): Promise<{ id: string }> {
      const now = input.at ?? new Date()
      const id = newId('serverVersion', now.getTime())
      await db
        .insertInto('server_versions')
        .values({ id, server_id: input.serverId, created_at: now.toISOString() })
        .execute()
      return { id }
    },

    async serverDeployment(input: {
      instanceId: string
      serverId: string
      name: string | null
      description: string | null
      metadata?: Metadata
      at?: Date
    }): Promise<{ id: string }> {
      const now = input.at ?? new Date()
      const id = newId('serverDeployment', now.getTime())
      const at = now.toISOString()
      await db
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
    },

    async session(input: { instanceId: string; metadata?: Metadata; at?: Date }): Promise<SessionTable> {
      const now = input.at ?? new Date()
      const at = now.toISOString()
      const row: SessionTable = {
        id: newId('session', now.getTime()),
        instance_id: input.instanceId,
        status: 'active',
        metadata_json: JSON.stringify(input.metadata ?? {}),
        created_at: at,
        updated_at: at,
      }
      await db.insertInto('sessions').values(row).execute()
      return row
    },

    async serverSession(input: {
      sessionId: string
      serverDeploymentId: string
      mcp: Mcp
      clientMessageCount?: number
      serverMessageCount?: number
      at?: Date
    }): Promise<{ id: string }> {
      const now = input.at ?? new Date()
      const id = newId('serverSession', now.getTime())
      const at = now.toISOString()
      await db
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
    },

    async serverRun(input: {
      serverSessionId: string
      serverVersionId: string
      type: ServerRunTable['type']
      status?: ServerRunTable['status']
      startedAt?: Date | null
      at?: Date
    }): Promise<{ id: string }> {
      const now = input.at ?? new Date()
      const id = newId('serverRun', now.getTime())
      const at = now.toISOString()
      const serverSession = await db
        .selectFrom('server_sessions')
        .select('server_deployment_id')
        .where('id', '=', input.serverSessionId)
        .executeTakeFirstOrThrow(() => new Error(`no server session ${input.serverSessionId}`))
      await db
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
    },
  }
}

export class StoreWriter {
  readonly #db: Kysely<Database>
  readonly #feed: EventFeed | undefined

  /** `feed`: told of the sessions that got events, once they are committed (the live tail). */
  constructor(db: Kysely<Database>, feed?: EventFeed) {
    this.#db = db
    this.#feed = feed
  }

  /** A write transaction that adds events to sessions: their followers are woken when it commits. */
  async #writingEvents<T>(run: (trx: Kysely<Database>, touched: Set<string>) => Promise<T>): Promise<T> {
    const touched = new Set<string>()
    const result = await writeTransaction(this.#db, async (trx) => {
      const value = await run(trx, touched)
      await notifySessions(trx, touched)
      return value
    })
    this.#feed?.published(touched)
    return result
  }

  // ---- instances and keys (operators, the seed) ----

  async createInstance(input: { name: string; at?: Date }): Promise<{ id: string }> {
    const now = input.at ?? new Date()
    const id = newId('instance', now.getTime())
    await this.#db.insertInto('instances').values({ id, name: input.name, created_at: now.toISOString() }).execute()
    return { id }
  }

  /** A new key of the instance; the secret is returned here once and stored only as its hash. */
  async createApiKey(input: {
    instanceId: string
    kind: 'secret' | 'publishable'
    secret?: string
    revoked?: boolean
    expiresAt?: Date | null
    at?: Date
  }): Promise<{ id: string; secret: string }> {
    const now = input.at ?? new Date()
    const id = newId('apiKey', now.getTime())
    const kind = input.kind
    const secret = input.secret ?? `metorial_${kind === 'secret' ? 'sk' : 'pk'}_${randomBase62(40)}`
    const at = now.toISOString()
    await this.#db
      .insertInto('api_keys')
      .values({
        id,
        instance_id: input.instanceId,
        kind,
        secret_hash: hashSecret(secret),
        secret_preview: secret.slice(0, 16),
        scopes: kind === 'secret' ? SECRET_KEY_SCOPES : '',
        revoked_at: input.revoked ? at : null,
        expires_at: isoOrNull(input.expiresAt),
        created_at: at,
      })
      .execute()
    return { id, secret }
  }

  /** Revokes the key with this secret; false when there is none (or it was revoked before). */
  async revokeApiKey(secret: string, at: Date = new Date()): Promise<boolean> {
    const result = await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: at.toISOString() })
      .where('secret_hash', '=', hashSecret(secret))
      .where('revoked_at', 'is', null)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  // ---- what runs run on (the seed) ----

  createServer(input: Parameters<ReturnType<typeof inserts>['server']>[0]) {
    return inserts(this.#db).server(input)
  }

  createServerVersion(input: Parameters<ReturnType<typeof inserts>['serverVersion']>[0]) {
    return inserts(this.#db).serverVersion(input)
  }

  createServerDeployment(input: Parameters<ReturnType<typeof inserts>['serverDeployment']>[0]) {
    return inserts(this.#db).serverDeployment(input)
  }

  createSession(input: Parameters<ReturnType<typeof inserts>['session']>[0]) {
    return inserts(this.#db).session(input)
  }

  createServerSession(input: Parameters<ReturnType<typeof inserts>['serverSession']>[0]) {
    return inserts(this.#db).serverSession(input)
  }

  createServerRun(input: Parameters<ReturnType<typeof inserts>['serverRun']>[0]) {
    return inserts(this.#db).serverRun(input)
  }

  async updateServerRun(
    id: string,
    change: { status?: ServerRunTable['status']; startedAt?: Date | null; stoppedAt?: Date | null; at?: Date },
  ): Promise<void> {
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

  // ---- the write operations of the API ----

  /**
   * Starts a run in a session of the instance, with what it runs on: each of its server,
   * deployment and server session is one written before (by id, checked to be the instance's)
   * or a new one. Returns the run's id.
   */
  async startServerRun(input: {
    instanceId: string
    sessionId: string
    run: ServerRunStart
    at?: Date
  }): Promise<{ id: string }> {
    const at = input.at ?? new Date()
    const { run } = input
    return writeTransaction(this.#db, async (trx) => {
      const add = inserts(trx)
      // The server: one the instance has deployed, or a new one.
      let serverId = run.server.id
      if (serverId !== undefined) {
        const known = await trx
          .selectFrom('server_deployments')
          .select('server_id')
          .where('server_id', '=', serverId)
          .where('instance_id', '=', input.instanceId)
          .limit(1)
          .executeTakeFirst()
        if (!known)
          throw new InvalidReferenceError(['server', 'id'], 'No server with this id is deployed in this instance.')
      } else {
        if (run.server.name === undefined)
          throw new InvalidReferenceError(['server', 'name'], 'A new server needs a name (or give the id of one).')
        ;({ id: serverId } = await add.server({
          name: run.server.name,
          description: run.server.description ?? null,
          type: run.server.type,
          at,
        }))
      }

      // Its version: the one named, else its newest, else a new one.
      let versionId: string
      if (run.server_version_id !== undefined) {
        versionId = run.server_version_id
        const version = await trx
          .selectFrom('server_versions')
          .select('id')
          .where('id', '=', versionId)
          .where('server_id', '=', serverId)
          .executeTakeFirst()
        if (!version)
          throw new InvalidReferenceError(['server_version_id'], 'No version with this id belongs to the server.')
      } else {
        const newest = await trx
          .selectFrom('server_versions')
          .select('id')
          .where('server_id', '=', serverId)
          .orderBy('id', 'desc')
          .limit(1)
          .executeTakeFirst()
        versionId = newest?.id ?? (await add.serverVersion({ serverId, at })).id
      }

      // The deployment: one of the instance and of this server, or a new one.
      let deploymentId = run.server_deployment?.id
      if (deploymentId !== undefined) {
        const deployment = await trx
          .selectFrom('server_deployments')
          .select('id')
          .where('id', '=', deploymentId)
          .where('instance_id', '=', input.instanceId)
          .where('server_id', '=', serverId)
          .executeTakeFirst()
        if (!deployment)
          throw new InvalidReferenceError(
            ['server_deployment', 'id'],
            'No deployment of this server with this id is in this instance.',
          )
      } else {
        ;({ id: deploymentId } = await add.serverDeployment({
          instanceId: input.instanceId,
          serverId,
          name: run.server_deployment?.name ?? null,
          description: run.server_deployment?.description ?? null,
          ...(run.server_deployment?.metadata && { metadata: run.server_deployment.metadata }),
          at,
        }))
      }

      // The server session: one of this session on this deployment, or a new one.
      let serverSessionId = run.server_session?.id
      if (serverSessionId !== undefined) {
        const serverSession = await trx
          .selectFrom('server_sessions')
          .select('id')
          .where('id', '=', serverSessionId)
          .where('session_id', '=', input.sessionId)
          .where('server_deployment_id', '=', deploymentId)
          .executeTakeFirst()
        if (!serverSession)
          throw new InvalidReferenceError(
            ['server_session', 'id'],
            'No server session of this session and deployment has this id.',
          )
      } else {
        const mcp = run.server_session?.mcp
        const peer = (
          p: { name: string; version: string; capabilities?: Record<string, unknown> } | null | undefined,
        ) => (p ? { name: p.name, version: p.version, capabilities: p.capabilities ?? {} } : null)
        const client = peer(mcp?.client)
        const server = peer(mcp?.server)
        ;({ id: serverSessionId } = await add.serverSession({
          sessionId: input.sessionId,
          serverDeploymentId: deploymentId,
          mcp: {
            object: 'mcp',
            version: mcp?.version ?? DEFAULT_MCP.version,
            connection_type: mcp?.connection_type ?? DEFAULT_MCP.connection_type,
            client: client && { object: 'session.server_session.client', ...client },
            server: server && { object: 'session.server_session.server', ...server },
          },
          at,
        }))
      }

      return add.serverRun({ serverSessionId, serverVersionId: versionId, type: run.type, at })
    })
  }

  /**
   * Appends one `server_logs` event to an active run of the session. An unknown run is an
   * InvalidReferenceError; a stopped one, a WriteConflictError.
   */
  async appendEvent(input: {
    sessionId: string
    serverRunId: string
    lines: readonly LogLine[]
    at?: Date
  }): Promise<EventRecord> {
    const at = input.at ?? new Date()
    return this.#writingEvents(async (trx, touched) => {
      touched.add(input.sessionId)
      const [id] = await allocateEventIds(trx, [{ sessionId: input.sessionId, at }])
      const run = (await runPlaces(trx, [input.serverRunId])).get(input.serverRunId)
      if (!run || run.session_id !== input.sessionId)
        throw new InvalidReferenceError(['server_run_id'], 'No server run of this session has this id.')
      if (run.status !== 'active')
        throw new WriteConflictError(`The server run has stopped (${run.status}): it takes no more log lines.`)
      const event = {
        id: id!,
        session_id: run.session_id,
        server_run_id: run.id,
        server_session_id: run.server_session_id,
        type: 'server_logs' as const,
        server_run_error_id: null,
        log_lines_json: JSON.stringify(input.lines.map(({ type, line }) => ({ type, line }))),
        created_at: at.toISOString(),
      }
      await trx.insertInto('session_events').values(event).execute()
      return { event, error: null }
    })
  }

  /**
   * Stops an active run of the session: `completed`, or `failed` with the error that ended it
   * (written with its `server_run_error` event, in the same transaction). Stopping a stopped run
   * the same way again changes nothing; another way is a WriteConflictError. Returns false when
   * the session has no such run.
   */
  async stopServerRun(input: {
    sessionId: string
    serverRunId: string
    stop: ServerRunStop
    at?: Date
  }): Promise<boolean> {
    const at = input.at ?? new Date()
    const { stop } = input
    return this.#writingEvents(async (trx, touched) => {
      // The session's lock first: an error event takes an id in the session's order.
      await lockSession(trx, input.sessionId)
      const run = (await runPlaces(trx, [input.serverRunId])).get(input.serverRunId)
      if (!run || run.session_id !== input.sessionId) return false
      if (run.status !== 'active') {
        const error = await trx
          .selectFrom('server_run_errors')
          .selectAll()
          .where('server_run_id', '=', run.id)
          .executeTakeFirst()
        const same =
          run.status === stop.status &&
          (stop.error === undefined
            ? error === undefined
            : error !== undefined &&
              error.code === stop.error.code &&
              error.message === stop.error.message &&
              error.metadata_json === JSON.stringify(stop.error.metadata ?? {}))
        if (!same) throw new WriteConflictError(`The server run has already stopped (${run.status}), differently.`)
        return true
      }
      if (stop.error) {
        await insertRunError(trx, run, { ...stop.error, at })
        touched.add(run.session_id)
      } else {
        const stoppedAt = at.toISOString()
        await trx
          .updateTable('server_runs')
          .set({ status: stop.status, stopped_at: stoppedAt, updated_at: stoppedAt })
          .where('id', '=', run.id)
          .execute()
      }
      return true
    })
  }

  // ---- events (the seed) ----

  /**
   * Appends `server_logs` events, in order, in one transaction; returns their ids. Each session's
   * events get ids above its last one, under the session's lock (see the top of this file).
   */
  async appendLogEvents(events: readonly NewLogEvent[]): Promise<string[]> {
    if (events.length === 0) return []
    return this.#writingEvents(async (trx, touched) => {
      const runs = await runPlaces(
        trx,
        events.map((e) => e.serverRunId),
      )
      const ids = await allocateEventIds(
        trx,
        events.map((event) => {
          const run = runs.get(event.serverRunId)
          if (!run) throw new Error(`no server run ${event.serverRunId}`)
          return { sessionId: run.session_id, at: event.at ?? new Date() }
        }),
      )
      const rows = events.map((event, i) => {
        const run = runs.get(event.serverRunId)!
        return {
          id: ids[i]!,
          session_id: run.session_id,
          server_run_id: run.id,
          server_session_id: run.server_session_id,
          type: 'server_logs' as const,
          server_run_error_id: null,
          log_lines_json: JSON.stringify(event.lines.map(({ type, line }) => ({ type, line }))),
          created_at: (event.at ?? new Date()).toISOString(),
        }
      })
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

  /** Records the error that ended a run: the error, its `server_run_error` event, the run failed. */
  async recordServerRunError(input: {
    serverRunId: string
    code: string
    message: string
    metadata?: Metadata
    at?: Date
  }): Promise<{ id: string; eventId: string }> {
    const at = input.at ?? new Date()
    return this.#writingEvents(async (trx, touched) => {
      const run = (await runPlaces(trx, [input.serverRunId])).get(input.serverRunId)
      if (!run) throw new Error(`no server run ${input.serverRunId}`)
      touched.add(run.session_id)
      return insertRunError(trx, run, { ...input, at })
    })
  }
}

/** The session and server session of each run, read in the writing transaction. */
export async function runPlaces(
  trx: Transaction<Database> | Kysely<Database>,
  runIds: readonly string[],
): Promise<Map<string, RunPlace>> {
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
  input: { code: string; message: string; metadata?: Metadata; at: Date },
): Promise<{ id: string; eventId: string }> {
  const created = input.at.toISOString()
  const id = newId('serverRunError', input.at.getTime())
  const [eventId] = await allocateEventIds(trx, [{ sessionId: run.session_id, at: input.at }])
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
      id: eventId!,
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
  return { id, eventId: eventId! }
}
