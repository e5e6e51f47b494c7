import type { components } from '@session-events/client'
import type { SqlStore } from '@session-events/api'
import fc from 'fast-check'
import { expect } from 'vitest'
import { idPrefixes, invalidJson, validJson, type InvalidJson, type JsonPath } from './derive.js'
import { spec, type Operation, type Schema } from './spec.js'

// Request bodies that a server must take, and what it must answer with them. The schema of a
// body says most of what makes it valid (derive.ts makes values from it); the spec says the rest
// in words, per operation, and that part is written here, each rule next to the words it follows:
// ids in a body must name things the key's instance has, in the right place, and a run must be
// active to take lines. Without these rules a "valid" body would be refused for a good reason.

type Session = components['schemas']['Session']
type ServerRun = components['schemas']['ServerRun']
type SessionEvent = components['schemas']['SessionEvent']
type ServerRunStart = components['schemas']['ServerRunStart']
type ServerRunStop = components['schemas']['ServerRunStop']
type SessionEventCreate = components['schemas']['SessionEventCreate']
type SessionCreate = components['schemas']['SessionCreate']

/** What a write in one session of an instance may name. */
export interface Places {
  instanceId: string
  sessionId: string
  /** The session's runs that are active: they take log lines. */
  activeRuns: string[]
  /** The instance's deployments, each with its server, the server's versions and this session's server sessions on it. */
  deployments: { id: string; serverId: string; versionIds: string[]; serverSessionIds: string[] }[]
}

/** The places of a session, read from the database. */
export async function placesOf(store: SqlStore, instanceId: string, sessionId: string): Promise<Places> {
  const db = store.db
  const [runs, deployments, versions, serverSessions] = await Promise.all([
    db
      .selectFrom('server_runs as r')
      .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
      .select('r.id')
      .where('ss.session_id', '=', sessionId)
      .where('r.status', '=', 'active')
      .orderBy('r.id')
      .execute(),
    db
      .selectFrom('server_deployments')
      .select(['id', 'server_id'])
      .where('instance_id', '=', instanceId)
      .orderBy('id')
      .execute(),
    db.selectFrom('server_versions').select(['id', 'server_id']).orderBy('id').execute(),
    db
      .selectFrom('server_sessions')
      .select(['id', 'server_deployment_id'])
      .where('session_id', '=', sessionId)
      .orderBy('id')
      .execute(),
  ])
  return {
    instanceId,
    sessionId,
    activeRuns: runs.map((r) => r.id),
    deployments: deployments.map((d) => ({
      id: d.id,
      serverId: d.server_id,
      versionIds: versions.filter((v) => v.server_id === d.server_id).map((v) => v.id),
      serverSessionIds: serverSessions.filter((s) => s.server_deployment_id === d.id).map((s) => s.id),
    })),
  }
}

/**
 * The size a body may have: "The body is over 5 MB" is a 413 (responses/PayloadTooLarge). Read as
 * 5,000,000 bytes, the smaller of the two ways to read it; the 413s are provoked with 6 MiB. The
 * schemas allow far more (1,000 lines of 64 KiB), so derived bodies are held to it.
 */
export const BODY_LIMIT_BYTES = 5_000_000
export const underBodyLimit = (body: unknown) =>
  body === undefined || Buffer.byteLength(JSON.stringify(body)) <= BODY_LIMIT_BYTES

const prefixes = idPrefixes(spec)

/** Text cut to a length a report can show. */
export const brief = (text: string, length = 300) =>
  text.length <= length ? text : `${text.slice(0, length - 60)}…(${text.length} characters)…${text.slice(-40)}`

/**
 * `value`, shown briefly where fast-check prints a counterexample (bodies run to megabytes). The
 * method is a symbol-keyed property: JSON and structuredClone leave it out.
 */
export function shownBriefly<T>(value: T): T {
  if (value === null || typeof value !== 'object') return value
  const text = brief(JSON.stringify(value) ?? 'undefined')
  return Object.defineProperty(value, fc.toStringMethod, { value: () => text, enumerable: false })
}

/** Bodies of `op` with one field invalid by the schema (derive.ts), within the size limit. */
export function invalidBody(op: Operation): fc.Arbitrary<InvalidJson> {
  if (!op.requestBody) throw new Error(`${op.operationId} takes no body`)
  return invalidJson(op.requestBody.schema, { prefixes })
    .filter((bad) => underBodyLimit(bad.value))
    .map((bad) =>
      Object.defineProperty(bad, fc.toStringMethod, {
        value: () => `{ path: ${JSON.stringify(bad.path)}, value: ${brief(JSON.stringify(bad.value) ?? 'undefined')} }`,
        enumerable: false,
      }),
    )
}

/** A copy of `value` with `at` set to `to`, making the objects on the way. */
export function setAt(value: unknown, at: JsonPath, to: unknown): unknown {
  if (at.length === 0) return to
  const [head, ...rest] = at
  const object = value && typeof value === 'object' ? (structuredClone(value) as Record<string, unknown>) : {}
  object[head!] = setAt(object[head!], rest, to)
  return object
}

/** The fields of a body schema that hold ids (strings with a pattern), outside arrays and choices. */
export function idFields(schema: Schema, at: JsonPath = []): { path: JsonPath; pattern: string }[] {
  if (typeof schema.pattern === 'string') return [{ path: at, pattern: schema.pattern }]
  return Object.entries((schema.properties ?? {}) as Record<string, Schema>).flatMap(([name, s]) =>
    idFields(s, [...at, name]),
  )
}

const property = (schema: Schema, name: string): Schema => {
  const found = schema.properties?.[name]
  if (!found) throw new Error(`the body schema has no property ${name}`)
  return found
}

/**
 * Bodies of `op` that the server must take, in the session of `places`: derived from the body's
 * schema, then held to the operation's rules. An operation with a body and no rules here fails
 * loudly, so that a new one in the spec is not fuzzed with bodies it must refuse.
 */
export function validBody(op: Operation, places: Places): fc.Arbitrary<unknown> {
  return withRules(op, places).filter(underBodyLimit).map(shownBriefly)
}

function withRules(op: Operation, places: Places): fc.Arbitrary<unknown> {
  if (!op.requestBody) throw new Error(`${op.operationId} takes no body`)
  const schema = op.requestBody.schema
  const base = validJson(schema)
  switch (op.operationId) {
    case 'createSession':
      // "The body may be left out."
      return op.requestBody.required ? base : fc.option(base, { nil: undefined, freq: 8 })

    case 'createSessionEvent':
      // "A server_run_id that is not a run of this session is a 400 …; a run that has stopped is a 409."
      if (places.activeRuns.length === 0) throw new Error(`session ${places.sessionId} has no active run`)
      return fc
        .tuple(base, fc.constantFrom(...places.activeRuns))
        .map(([body, run]) => ({ ...(body as SessionEventCreate), server_run_id: run }))

    case 'stopServerRun':
      // "A completed stop with an error is a 400 invalid_data."
      return base.map((body) => {
        const { error, ...rest } = body as ServerRunStop
        return rest.status === 'failed' && error !== undefined ? { ...rest, error } : rest
      })

    case 'startServerRun': {
      // "The server, its deployment, its version and the server session … are each either
      // reused, by id, or made from the other fields": an id must name one of the instance's
      // (a deployment of that server, a version of that server, a server session of this session
      // on that deployment), and a new server needs a name ("name is then required").
      const name = validJson(property(property(schema, 'server'), 'name')) as fc.Arbitrary<string>
      const deployments = places.deployments
      return fc
        .tuple(base, name, fc.nat(3), fc.nat(), fc.nat(), fc.boolean())
        .map(([generated, newName, wanted, d, v, pinVersion]) => {
          const body = structuredClone(generated) as ServerRunStart
          const deployment = deployments.length > 0 ? deployments[d % deployments.length]! : undefined
          const serverSession =
            deployment && deployment.serverSessionIds.length > 0
              ? deployment.serverSessionIds[v % deployment.serverSessionIds.length]
              : undefined
          // How much is reused: nothing, the server, its deployment too, and the server session too.
          const level = !deployment ? 0 : wanted === 3 && !serverSession ? 2 : wanted
          delete body.server.id
          delete body.server_version_id
          delete body.server_deployment?.id
          delete body.server_session?.id
          if (level === 0) {
            body.server.name ??= newName
            return body
          }
          body.server.id = deployment!.serverId
          const versions = deployment!.versionIds
          if (pinVersion && versions.length > 0) body.server_version_id = versions[v % versions.length]!
          if (level >= 2) body.server_deployment = { ...body.server_deployment, id: deployment!.id }
          if (level >= 3) body.server_session = { ...body.server_session, id: serverSession! }
          return body
        })
    }

    default:
      throw new Error(`${op.operationId}: the suite knows no rules for its body (support/bodies.ts)`)
  }
}

/** The body as the server reads it: JSON text, parsed (so -0 is 0 and keys are own properties). */
export const asSent = (body: unknown): any => (body === undefined ? undefined : JSON.parse(JSON.stringify(body)))

/**
 * A 2xx of a write reads back what was sent, in the spec's words: the session's metadata, the
 * event's run and lines ("The lines keep their order"), the run's type, server and what it
 * reuses, a stop's status.
 */
export function expectReadBack(op: Operation, sessionId: string | undefined, sentBody: unknown, answer: unknown) {
  const sent = asSent(sentBody)
  const what = `${op.operationId} ${JSON.stringify(sent)?.slice(0, 300)}`
  switch (op.operationId) {
    case 'createSession': {
      const session = answer as Session
      expect(session.status, what).toBe('active')
      expect(session.metadata, what).toEqual((sent as SessionCreate | undefined)?.metadata ?? {})
      return
    }
    case 'createSessionEvent': {
      const event = answer as SessionEvent
      const body = sent as SessionEventCreate
      expect(event.session_id, what).toBe(sessionId)
      expect(event.type, what).toBe('server_logs')
      expect(event.server_run?.id, what).toBe(body.server_run_id)
      expect(event.server_run_error, what).toBeNull()
      // A line keeps the spec's fields of a log line (its time, level and trace among them when
      // sent), and nothing else a body may carry.
      const fields = Object.keys(spec.components.schemas.LogLine.properties)
      expect(event.log_lines, what).toEqual(
        body.log_lines.map((l) => Object.fromEntries(Object.entries(l).filter(([k]) => fields.includes(k)))),
      )
      return
    }
    case 'startServerRun': {
      const run = answer as ServerRun
      const body = sent as ServerRunStart
      expect(run.status, what).toBe('active')
      expect(run.type, what).toBe(body.type)
      expect(run.started_at, what).not.toBeNull()
      expect(run.stopped_at, what).toBeNull()
      expect(run.server_session.session_id, what).toBe(sessionId)
      if (body.server.id !== undefined) expect(run.server.id, what).toBe(body.server.id)
      else
        expect(run.server, what).toMatchObject({
          name: body.server.name,
          description: body.server.description ?? null,
          type: body.server.type ?? 'custom',
        })
      if (body.server_version_id !== undefined) expect(run.server_version_id, what).toBe(body.server_version_id)
      if (body.server_deployment?.id !== undefined)
        expect(run.server_deployment.id, what).toBe(body.server_deployment.id)
      else {
        expect(run.server_deployment, what).toMatchObject({
          name: body.server_deployment?.name ?? null,
          description: body.server_deployment?.description ?? null,
          metadata: body.server_deployment?.metadata ?? {},
        })
      }
      expect(run.server_deployment.server.id, what).toBe(run.server.id)
      if (body.server_session?.id !== undefined) expect(run.server_session.id, what).toBe(body.server_session.id)
      else if (body.server_session?.mcp) {
        const { mcp } = body.server_session
        expect(run.server_session.mcp, what).toMatchObject({
          version: mcp.version,
          connection_type: mcp.connection_type,
        })
        for (const peer of ['client', 'server'] as const) {
          const given = mcp[peer]
          expect(run.server_session.mcp[peer], `${what}: mcp.${peer}`).toEqual(
            given
              ? expect.objectContaining({
                  name: given.name,
                  version: given.version,
                  capabilities: given.capabilities ?? {},
                })
              : null,
          )
        }
      }
      return
    }
    case 'stopServerRun': {
      const run = answer as ServerRun
      expect(run.status, what).toBe((sent as ServerRunStop).status)
      expect(run.stopped_at, what).not.toBeNull()
      return
    }
    default:
      throw new Error(`${op.operationId}: the suite does not know what its answer reads back (support/bodies.ts)`)
  }
}

/** Rows per table, as world.ts counts them (WRITTEN_TABLES). */
export type Rows = Partial<
  Record<
    | 'sessions'
    | 'servers'
    | 'server_versions'
    | 'server_deployments'
    | 'server_sessions'
    | 'server_runs'
    | 'server_run_errors'
    | 'session_events',
    number
  >
>

/**
 * The rows one successful call adds (tables it adds none to left out), by the spec's words: a session; an event; a run, with a
 * server, version, deployment and server session for each one the body does not reuse by id (a
 * reused server runs its newest version); a failed stop with its error, the error and its event.
 */
export function rowsWritten(op: Operation, sentBody: unknown): Rows {
  return Object.fromEntries(Object.entries(rowsOfOneCall(op, asSent(sentBody))).filter(([, n]) => n !== 0))
}

function rowsOfOneCall(op: Operation, sent: unknown): Rows {
  switch (op.operationId) {
    case 'createSession':
      return { sessions: 1 }
    case 'createSessionEvent':
      return { session_events: 1 }
    case 'startServerRun': {
      const body = sent as ServerRunStart
      const newServer = body.server.id === undefined
      return {
        server_runs: 1,
        servers: newServer ? 1 : 0,
        server_versions: newServer ? 1 : 0,
        server_deployments: body.server_deployment?.id === undefined ? 1 : 0,
        server_sessions: body.server_session?.id === undefined ? 1 : 0,
      }
    }
    case 'stopServerRun': {
      const body = sent as ServerRunStop
      return body.status === 'failed' && body.error !== undefined ? { server_run_errors: 1, session_events: 1 } : {}
    }
    default:
      throw new Error(`${op.operationId}: the suite does not know what it writes (support/bodies.ts)`)
  }
}
