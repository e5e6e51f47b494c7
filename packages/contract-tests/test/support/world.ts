import {
  createApp,
  openStore,
  seed,
  StoreUnavailableError,
  type AppOptions,
  type SeedSummary,
  type SqlStore,
  type Store,
} from '@session-events/api'
import { fillPath, type Operation } from './spec.js'

// The real thing to test against: a seeded in-memory SQLite store and the real app over it.

// The app logs through pino at LOG_LEVEL; the suites keep it quiet unless asked otherwise
// (LOG_LEVEL=debug npx vitest run), without a logger of their own to depend on.
process.env.LOG_LEVEL ??= 'silent'

export type App = ReturnType<typeof createApp>
export type Instance = SeedSummary['instances'][number]

/** A limit no suite reaches, so that successful responses carry their RateLimit-* headers. */
export const GENEROUS_RATE_LIMIT = { points: 1_000_000_000, durationSeconds: 60 }

export interface World {
  store: SqlStore
  summary: SeedSummary
  a: Instance
  b: Instance
  app: App
  /** Another app over the same store (a tiny rate limit, a failing store…). */
  appWith(options: Partial<AppOptions>): App
}

export async function createWorld(options: { sessions?: number; events?: number } = {}): Promise<World> {
  const store = await openStore('sqlite::memory:')
  const summary = await seed(store, { sessions: options.sessions ?? 2, events: options.events ?? 40 })
  const [a, b] = summary.instances
  if (!a || !b) throw new Error('the seed made fewer than two instances')
  const appWith = (overrides: Partial<AppOptions>) => createApp({ store, rateLimit: GENEROUS_RATE_LIMIT, ...overrides })
  return { store, summary, a, b, app: appWith({}), appWith }
}

/**
 * The store with some of its methods failing as `fault()` says; everything else is the real
 * store. (A store that is down or broken cannot be caused for real in-process: this is the one fake.)
 */
export function faultyStore(store: Store, fault: () => Error, methods: (keyof Store)[]): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (methods.includes(property as keyof Store)) return () => Promise.reject(fault())
      const value = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/** The reads a request of the API makes after authentication: failing them fails the request. */
export const READS_AFTER_AUTH: (keyof Store)[] = ['sessionInstance', 'listSessionEvents', 'getSessionEvent']

export const unexpectedFailure = () => new Error('SQLITE_CORRUPT: database disk image is malformed at /var/lib/secret.db')
export const unavailable = () => new StoreUnavailableError('connect ECONNREFUSED 10.0.0.5:5432')

/** Every event id of a session in id order, straight from the database. */
export async function eventIds(store: SqlStore, sessionId: string): Promise<string[]> {
  const rows = await store.db.selectFrom('session_events').select('id').where('session_id', '=', sessionId).orderBy('id', 'asc').execute()
  return rows.map((r) => r.id)
}

/** The runs of a session, with their server sessions, straight from the database. */
export async function sessionRuns(store: SqlStore, sessionId: string) {
  return store.db
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .select(['r.id as id', 'r.server_session_id as server_session_id'])
    .where('ss.session_id', '=', sessionId)
    .orderBy('r.id')
    .execute()
}

/** Every id and secret that belongs to an instance: what no response to another instance's key may show. */
export async function instanceSecrets(store: SqlStore, instance: Instance): Promise<string[]> {
  const db = store.db
  const sessions = instance.sessions.map((s) => s.id)
  const [keys, events, serverSessions, deployments, instances] = await Promise.all([
    db.selectFrom('api_keys').select(['id', 'secret_hash', 'secret_preview']).where('instance_id', '=', instance.id).execute(),
    db.selectFrom('session_events').select(['id', 'server_run_id', 'server_run_error_id']).where('session_id', 'in', sessions).execute(),
    db.selectFrom('server_sessions').select('id').where('session_id', 'in', sessions).execute(),
    db.selectFrom('server_deployments').select(['id', 'server_id']).where('instance_id', '=', instance.id).execute(),
    db.selectFrom('instances').select(['id', 'name']).where('id', '=', instance.id).execute(),
  ])
  const customServers = await db
    .selectFrom('servers')
    .select(['id', 'name'])
    .where('type', '=', 'custom')
    .where(
      'id',
      'in',
      deployments.map((d) => d.server_id),
    )
    .execute()
  return [
    instance.id,
    instance.secret_key,
    instance.publishable_key,
    instance.revoked_key,
    ...sessions,
    ...instances.map((i) => i.name),
    ...keys.flatMap((k) => [k.id, k.secret_hash, k.secret_preview]),
    ...events.flatMap((e) => [e.id, e.server_run_id, e.server_run_error_id]),
    ...serverSessions.map((s) => s.id),
    ...deployments.map((d) => d.id),
    ...customServers.flatMap((s) => [s.id, s.name]),
  ].filter((v): v is string => typeof v === 'string' && v.length > 0)
}

/** The request id masked, so that two responses can be compared byte for byte. */
export const withoutRequestId = (text: string) => text.replace(/req_[0-9A-Za-z]{22}/g, 'req_…')

/** Rejects when `promise` takes longer than `ms`: a hang is a failure, not a stuck suite. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The request path of an operation for the given entities, by the schema of each path
 * parameter: `{ SessionId: 'ses_…', SessionEventId: 'sev_…' }`. A path parameter of a schema the
 * suite has no entity for fails loudly, so that a new operation in the spec is not skipped quietly.
 */
export function pathOf(op: Operation, entities: Record<string, string>): string {
  const values: Record<string, string> = {}
  for (const p of op.parameters.filter((p) => p.in === 'path')) {
    const value = p.schemaName === undefined ? undefined : entities[p.schemaName]
    if (value === undefined) throw new Error(`${op.operationId}: no entity for path parameter ${p.name} (schema ${p.schemaName ?? 'inline'})`)
    values[p.name] = value
  }
  return fillPath(op, values)
}

/** The ids a session's events refer to (events, runs, server sessions), for generators to mix in. */
export async function sessionIds(store: SqlStore, sessionId: string): Promise<string[]> {
  const rows = await store.db
    .selectFrom('session_events')
    .select(['id', 'server_run_id', 'server_session_id'])
    .where('session_id', '=', sessionId)
    .execute()
  return [...new Set([sessionId, ...rows.flatMap((r) => [r.id, r.server_run_id, r.server_session_id])])].filter((v): v is string => v !== null)
}
