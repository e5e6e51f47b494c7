import type { Mcp } from '@session-events/server-stubs'
import * as specValues from '@session-events/server-stubs/values'
import type { Kysely } from 'kysely'
import { IdSource } from '../ids.js'
import type { AppendOne } from './append.js'
import type { Database } from './db.js'
import {
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  InvalidReferenceError,
  RecordedRefusal,
  SessionGoneError,
  WriteConflictError,
} from './errors.js'
import { holdSession, lockSession } from './dialect.js'
import { insertRunError, runPlaces, writingEvents } from './event-log.js'
import type { EventFeed } from './feed.js'
import { claimIn, keepAnswer, KEEP_MS, type KeyOrder } from './idempotency.js'
import {
  logLinesJson,
  serverDeploymentRow,
  serverRow,
  serverRunRow,
  serverSessionRow,
  serverVersionRow,
  sessionRow,
} from './new-rows.js'
import type { AppendedEvent, Answered, IdempotencyClaim, KeptAnswer, StoreWriter } from './types.js'

// The API's writes: its four write operations, each one transaction that claims its
// Idempotency-Key, writes, and keeps its answer (idempotency.ts), or finds the key's answer and
// writes nothing. The append, the most frequent of them, is one statement or one synchronous
// transaction, whichever the database does fastest (append.ts).

/** The MCP connection of a server session started without one said: the spec's default. */
const DEFAULT_MCP = specValues.schemas.ServerSessionInput.properties.mcp.default

/** A kept answer's resource, read again for a replay; what has expired since cannot be shown. */
function stillThere<T>(found: T | undefined, what: string): T {
  if (found === undefined)
    throw new WriteConflictError(`The ${what} this Idempotency-Key's first request made has expired since.`)
  return found
}

/** A replay: the key's answer to this same request, made before. A refusal is sent again as it was. */
function replayOf(kept: KeptAnswer): string {
  if (kept.refusal !== null) throw new RecordedRefusal(kept.status, kept.refusal)
  return kept.resourceId!
}

export class SqlApiWriter implements StoreWriter {
  readonly #db: Kysely<Database>
  readonly #feed: EventFeed | undefined
  readonly #append: AppendOne
  readonly #keys: KeyOrder
  /** The appended events' ids: random bytes from a pool, not a call into the system's generator each (ids.ts). */
  readonly #eventIds = new IdSource()

  /**
   * `feed`: told of the sessions that got events, once committed; `append`: the database's
   * one-commit append; `keys`: how the store keeps Idempotency-Keys.
   */
  constructor(db: Kysely<Database>, feed: EventFeed | undefined, append: AppendOne, keys: KeyOrder) {
    this.#db = db
    this.#feed = feed
    this.#append = append
    this.#keys = keys
  }

  /**
   * One write with its Idempotency-Key, in one transaction: the key claimed, `write` run and its
   * answer (`resourceId`) kept; or the key's answer found, nothing written, and the resource it
   * named read again (`again`). A write that refuses without throwing (`resourceId` null) keeps
   * nothing here: a refusal is kept by whoever answers it (IdempotencyKeys.keepRefusal).
   */
  async #answered<T extends object>(
    claim: IdempotencyClaim | undefined,
    write: (trx: Kysely<Database>, touched: Set<string>) => Promise<{ value: T; resourceId: string | null }>,
    again: (trx: Kysely<Database>, resourceId: string) => Promise<T>,
  ): Promise<Answered<T>> {
    const key = claim && (await this.#keys.claimed(claim))
    return writingEvents(this.#db, this.#feed, async (trx, touched) => {
      const now = new Date()
      const kept = key && (await claimIn(trx, key, now))
      if (kept) return { ...(await again(trx, replayOf(kept))), replayed: true }
      const { value, resourceId } = await write(trx, touched)
      if (key && resourceId !== null) await keepAnswer(trx, key, { resourceId }, now)
      return { ...value, replayed: false }
    })
  }

  createSession(input: Parameters<StoreWriter['createSession']>[0]) {
    return this.#answered(
      input.claim,
      async (trx) => {
        const row = sessionRow(input)
        await trx.insertInto('sessions').values(row).execute()
        return { value: row, resourceId: row.id }
      },
      async (trx, id) =>
        stillThere(await trx.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst(), 'session'),
    )
  }

  startServerRun(input: Parameters<StoreWriter['startServerRun']>[0]) {
    const at = input.at ?? new Date()
    const { run } = input
    return this.#answered(
      input.claim,
      async (trx) => {
        await holdSession(trx, input.sessionId)
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
          const server = serverRow({
            name: run.server.name,
            description: run.server.description ?? null,
            type: run.server.type,
            at,
          })
          await trx.insertInto('servers').values(server).execute()
          serverId = server.id
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
          if (newest) versionId = newest.id
          else {
            const version = serverVersionRow({ serverId, at })
            await trx.insertInto('server_versions').values(version).execute()
            versionId = version.id
          }
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
          const deployment = serverDeploymentRow({
            instanceId: input.instanceId,
            serverId,
            name: run.server_deployment?.name ?? null,
            description: run.server_deployment?.description ?? null,
            ...(run.server_deployment?.metadata && { metadata: run.server_deployment.metadata }),
            at,
          })
          await trx.insertInto('server_deployments').values(deployment).execute()
          deploymentId = deployment.id
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
          const serverSession = serverSessionRow({
            sessionId: input.sessionId,
            serverDeploymentId: deploymentId,
            mcp: mcpOf(run.server_session?.mcp),
            at,
          })
          await trx.insertInto('server_sessions').values(serverSession).execute()
          serverSessionId = serverSession.id
        }

        const row = serverRunRow({
          serverSessionId,
          serverDeploymentId: deploymentId,
          serverVersionId: versionId,
          type: run.type,
          at,
        })
        await trx.insertInto('server_runs').values(row).execute()
        return { value: { id: row.id }, resourceId: row.id }
      },
      async (_trx, id) => ({ id }),
    )
  }

  async appendEvent(input: Parameters<StoreWriter['appendEvent']>[0]): Promise<Answered<AppendedEvent>> {
    const at = input.at ?? new Date()
    const now = Date.now()
    // Made at once once the store knows how it keeps keys (KeyOrder), so the append queues for its commit now.
    const claimed = input.claim && this.#keys.claimed(input.claim)
    const key = claimed instanceof Promise ? await claimed : claimed
    const outcome = await this.#append({
      sessionId: input.sessionId,
      serverRunId: input.serverRunId,
      madeId: this.#eventIds.newId('sessionEvent', at.getTime()),
      linesJson: logLinesJson(input.lines),
      createdAt: at.toISOString(),
      claim: key && { key, nowMs: now, keptSinceMs: now - KEEP_MS },
    })
    switch (outcome.kind) {
      case 'appended':
        this.#feed?.published([input.sessionId])
        return { event: outcome.event, error: null, runsVersion: outcome.runsVersion, replayed: false }
      case 'answered': {
        const id = replayOf(outcome)
        // Read by its session and id: the events' key (migration 13). The request's fingerprint
        // holds its path, so the answer's event is of this session.
        const event = await this.#db
          .selectFrom('session_events')
          .selectAll()
          .where('session_id', '=', input.sessionId)
          .where('id', '=', id)
          .executeTakeFirst()
        return { event: stillThere(event, 'event'), error: null, replayed: true }
      }
      case 'reused':
        throw new IdempotencyKeyReusedError()
      case 'in_use':
        throw new IdempotencyKeyInUseError()
      case 'no_run': {
        // A session pruned since the API read it has no runs left either: that is a 404.
        const session = await this.#db
          .selectFrom('sessions')
          .select('id')
          .where('id', '=', input.sessionId)
          .executeTakeFirst()
        if (!session) throw new SessionGoneError()
        throw new InvalidReferenceError(['server_run_id'], 'No server run of this session has this id.')
      }
      case 'stopped':
        throw new WriteConflictError(`The server run has stopped (${outcome.status}): it takes no more log lines.`)
    }
  }

  stopServerRun(input: Parameters<StoreWriter['stopServerRun']>[0]) {
    const at = input.at ?? new Date()
    const { stop } = input
    return this.#answered(
      input.claim,
      async (trx, touched) => {
        // The session's lock first: an error event takes an id in the session's order.
        await lockSession(trx, input.sessionId)
        const run = (await runPlaces(trx, [input.serverRunId])).get(input.serverRunId)
        if (!run || run.session_id !== input.sessionId) return { value: { found: false }, resourceId: null }
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
          return { value: { found: true }, resourceId: run.id }
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
        return { value: { found: true }, resourceId: run.id }
      },
      async () => ({ found: true }),
    )
  }
}

/** A server session's MCP connection from what a run's start says of it, the spec's default for what it does not. */
function mcpOf(
  mcp: NonNullable<Parameters<StoreWriter['startServerRun']>[0]['run']['server_session']>['mcp'] | undefined,
): Mcp {
  const peer = (p: { name: string; version: string; capabilities?: Record<string, unknown> } | null | undefined) =>
    p ? { name: p.name, version: p.version, capabilities: p.capabilities ?? {} } : null
  const client = peer(mcp?.client)
  const server = peer(mcp?.server)
  return {
    object: 'mcp',
    version: mcp?.version ?? DEFAULT_MCP.version,
    connection_type: mcp?.connection_type ?? DEFAULT_MCP.connection_type,
    client: client && { object: 'session.server_session.client', ...client },
    server: server && { object: 'session.server_session.server', ...server },
  }
}
