import {
  createApp,
  openStore,
  seed,
  type AppOptions,
  type Config,
  type SeedSummary,
  type SqlStore,
  type Store,
} from '@session-events/api'
import { StoreUnavailableError, type StoreReader, type StoreWriter } from '@session-events/api/internal/store/types.js'
import { specValues } from '@session-events/client'
import pino from 'pino'
import { fillPath, type Operation } from './spec.js'

// The real thing to test against: a seeded in-memory SQLite store and the real app over it.

export type App = ReturnType<typeof createApp>
export type Instance = SeedSummary['instances'][number]

/** A limit no suite reaches, so that successful responses carry their RateLimit-* headers. */
export const GENEROUS_RATE_LIMIT = { points: 1_000_000_000, durationSeconds: 60 }

/** The app's logger: quiet unless asked otherwise (LOG_LEVEL=debug npx vitest run). */
const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' })

export interface World {
  store: SqlStore
  summary: SeedSummary
  a: Instance
  b: Instance
  app: App
  /** Another app: over another store (a failing one…), with other settings (a tiny rate limit…). */
  appWith(options: AppWith): App
}

/** An app's store and shutdown signal, and the settings (config.ts) that differ from the world's. */
export type AppWith = Partial<Pick<AppOptions, 'store' | 'shutdown'>> & Partial<Config>

export async function createWorld(options: { sessions?: number; events?: number } = {}): Promise<World> {
  const store = await openStore('sqlite::memory:')
  const summary = await seed(store, { sessions: options.sessions ?? 2, events: options.events ?? 40 })
  const [a, b] = summary.instances
  if (!a || !b) throw new Error('the seed made fewer than two instances')
  // No load shedding: a busy machine's lag would refuse the suites' requests.
  const appWith = ({ store: over = store, shutdown, ...settings }: AppWith) =>
    createApp({
      store: over,
      logger,
      shutdown,
      config: { rateLimit: GENEROUS_RATE_LIMIT, shedLoadAfterMs: false, ...settings },
    })
  return { store, summary, a, b, app: appWith({}), appWith }
}

/** Which methods of the store's reader and writer to fault. */
export interface Faults {
  reader?: (keyof StoreReader)[]
  writer?: (keyof StoreWriter)[]
}

/** `target` with some of its methods replaced; every other property is the target's own. */
function replacing<T extends object>(
  target: T,
  replace: (name: string, method: (...args: any[]) => any) => ((...args: any[]) => any) | undefined,
): T {
  return new Proxy(target, {
    get(t, property, receiver) {
      const value = Reflect.get(t, property, receiver)
      if (typeof value !== 'function') return value
      const method = value.bind(t)
      return (typeof property === 'string' && replace(property, method)) || method
    },
  })
}

/** The store with its reader and writer replaced; everything else (db, idempotency keys, close) is the real store's. */
function withParts(store: Store, parts: { reader?: StoreReader; writer?: StoreWriter }): Store {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'reader' && parts.reader) return parts.reader
      if (property === 'writer' && parts.writer) return parts.writer
      const value = Reflect.get(target, property, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/**
 * The store with some methods of its reader and writer failing as `fault()` says; everything else
 * is the real store. (A store that is down or broken cannot be caused for real in-process.)
 */
export function faultyStore(store: Store, fault: () => Error, faults: Faults): Store {
  const failing =
    (names: string[] = []) =>
    (name: string) =>
      names.includes(name) ? () => Promise.reject(fault()) : undefined
  return withParts(store, {
    reader: replacing(store.reader, failing(faults.reader)),
    writer: replacing(store.writer, failing(faults.writer)),
  })
}

/** The reads a request of the API makes after authentication: failing them fails the request. */
export const READS_AFTER_AUTH: (keyof StoreReader)[] = [
  'listSessions',
  'sessionInstance',
  'listEventIds',
  'sessionEvents',
  'serverRuns',
]
/** The writes the API's operations make. */
export const API_WRITES: (keyof StoreWriter)[] = ['createSession', 'startServerRun', 'appendEvent', 'stopServerRun']

/**
 * The store with every write of the API held until `release()`: a request that writes stays in
 * flight, with its Idempotency-Key taken, for as long as a test needs. `entered` resolves when a
 * write is waiting. Nothing is held inside a transaction: the write starts once released.
 */
export function heldStore(store: Store): { store: Store; entered: Promise<void>; release(): void } {
  let release!: () => void
  let entered!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const waiting = new Promise<void>((resolve) => (entered = resolve))
  const writer = replacing(store.writer, (name, method) =>
    (API_WRITES as string[]).includes(name)
      ? async (...args: unknown[]) => {
          entered()
          await gate
          return method(...args)
        }
      : undefined,
  )
  return { store: withParts(store, { writer }), entered: waiting, release }
}

export const unexpectedFailure = () =>
  new Error('SQLITE_CORRUPT: database disk image is malformed at /var/lib/secret.db')
export const unavailable = () => new StoreUnavailableError('connect ECONNREFUSED 10.0.0.5:5432')

/** The tables a write of the API may add rows to. */
export const WRITTEN_TABLES = [
  'sessions',
  'servers',
  'server_versions',
  'server_deployments',
  'server_sessions',
  'server_runs',
  'server_run_errors',
  'session_events',
] as const

export type RowCounts = Record<(typeof WRITTEN_TABLES)[number], number>

/** How many rows each table a write may add to holds, straight from the database. */
export async function rowCounts(store: SqlStore): Promise<RowCounts> {
  const counts = await Promise.all(
    WRITTEN_TABLES.map(async (table) => {
      const row = await store.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      return [table, Number(row.n)] as const
    }),
  )
  return Object.fromEntries(counts) as RowCounts
}

/** The rows added to each table since `before` (tables with none added left out). */
export async function rowsAdded(store: SqlStore, before: RowCounts): Promise<Partial<RowCounts>> {
  const after = await rowCounts(store)
  return Object.fromEntries(WRITTEN_TABLES.flatMap((t) => (after[t] !== before[t] ? [[t, after[t] - before[t]]] : [])))
}

/** What every run is now (status and timestamps), to tell that a refused write changed none. */
export async function runStates(store: SqlStore): Promise<string> {
  const rows = await store.db
    .selectFrom('server_runs')
    .select(['id', 'status', 'stopped_at', 'updated_at'])
    .orderBy('id')
    .execute()
  return JSON.stringify(rows)
}

/** Whether an operation changes the run in its path (stopping it): it needs an active run each time. */
export const changesItsRun = (op: Operation) =>
  op.method !== 'GET' && op.parameters.some((p) => p.in === 'path' && p.schemaName === 'ServerRunId')

/** The status of an operation's success (200, 201). */
export const successStatus = (op: Operation) => Number(Object.keys(op.responses).find((s) => s.startsWith('2')))

/**
 * A new active run in a session of the instance, written by the store's writer (not the API),
 * on a deployment and server session the session already has.
 */
export async function freshRun(store: SqlStore, instanceId: string, sessionId: string): Promise<string> {
  const place = await store.db
    .selectFrom('server_sessions as ss')
    .innerJoin('server_deployments as d', 'd.id', 'ss.server_deployment_id')
    .select(['ss.id as server_session_id', 'd.id as deployment_id', 'd.server_id as server_id'])
    .where('ss.session_id', '=', sessionId)
    .orderBy('ss.id')
    .limit(1)
    .executeTakeFirstOrThrow(() => new Error(`session ${sessionId} has no server session`))
  const { id } = await store.writer.startServerRun({
    instanceId,
    sessionId,
    run: {
      type: 'hosted',
      server: { id: place.server_id, type: 'custom' },
      server_deployment: { id: place.deployment_id },
      // A validated body has every default filled in: the spec's `mcp`, which `id` makes unused.
      server_session: {
        id: place.server_session_id,
        mcp: specValues.schemas.ServerSessionInput.properties.mcp.default,
      },
    },
  })
  return id
}

/** Every event id of a session in id order, straight from the database. */
export async function eventIds(store: SqlStore, sessionId: string): Promise<string[]> {
  const rows = await store.db
    .selectFrom('session_events')
    .select('id')
    .where('session_id', '=', sessionId)
    .orderBy('id', 'asc')
    .execute()
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
    db
      .selectFrom('api_keys')
      .select(['id', 'secret_hash', 'secret_preview'])
      .where('instance_id', '=', instance.id)
      .execute(),
    db
      .selectFrom('session_events')
      .select(['id', 'server_run_id', 'server_run_error_id'])
      .where('session_id', 'in', sessions)
      .execute(),
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
export function pathOf(op: Operation, entities: object): string {
  const values: Record<string, string> = {}
  for (const p of op.parameters.filter((p) => p.in === 'path')) {
    const value =
      p.schemaName === undefined ? undefined : (entities as Record<string, string | undefined>)[p.schemaName]
    if (value === undefined)
      throw new Error(`${op.operationId}: no entity for path parameter ${p.name} (schema ${p.schemaName ?? 'inline'})`)
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
  return [...new Set([sessionId, ...rows.flatMap((r) => [r.id, r.server_run_id, r.server_session_id])])].filter(
    (v): v is string => v !== null,
  )
}
