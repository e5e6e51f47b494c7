import type {
  LogLine,
  Mcp,
  Metadata,
  ServerRunStart,
  ServerRunStop,
  SessionEventType,
} from '@session-events/server-stubs'
import type { Kysely } from 'kysely'
import type { RateLimiterAbstract } from 'rate-limiter-flexible'
import type {
  ApiKeyTable,
  Database,
  ServerDeploymentTable,
  ServerRunErrorTable,
  ServerRunTable,
  ServerSessionTable,
  ServerTable,
  SessionEventTable,
  SessionTable,
} from './db.js'
import type { DialectName } from './dialect.js'
import type { EventFeed } from './feed.js'
import type { StreamCap } from './stream-slots.js'

// What the store is to the rest of the API: records (the rows of the tables, db.ts) and queries,
// a reader (what the API's reads need), three writers by job (the API's write operations, the
// operators' instances and keys, the seed's bulk rows), the answers kept for Idempotency-Keys, and
// the database underneath for migrations and tests. The store knows nothing of HTTP or of the
// bytes the API sends: serialize.ts makes those from these records.

export {
  IdempotencyKeyInUseError,
  IdempotencyKeyReusedError,
  InvalidReferenceError,
  RecordedRefusal,
  SessionGoneError,
  StoreUnavailableError,
  WriteConflictError,
} from './errors.js'

export type ApiKeyRecord = ApiKeyTable
export type SessionRecord = SessionTable

/** An event row, with the run error that a `server_run_error` event shows. */
export interface EventRecord {
  event: SessionEventTable
  error: ServerRunErrorTable | null
}

/** A server run with everything its preview shows, read in one query. */
export interface RunRecord {
  run: ServerRunTable
  server: ServerTable
  deployment: ServerDeploymentTable
  serverSession: ServerSessionTable
}

/** A page to read: a keyset scan over a session's event ids, narrowed by the filters of listSessionEvents. */
export interface ListEventsQuery {
  sessionId: string
  limit: number
  /** Which way the scan goes over the ids, which is creation order. */
  order: 'asc' | 'desc'
  /** Where the page starts: right after or right before this event id, in `order`. */
  position?: { direction: 'after' | 'before'; id: string } | undefined
  serverRunIds?: readonly string[] | undefined
  serverSessionIds?: readonly string[] | undefined
  types?: readonly SessionEventType[] | undefined
}

/** The ids of a page, in the requested order, and whether more lie on either side. */
export interface EventIdPage {
  ids: string[]
  hasMoreBefore: boolean
  hasMoreAfter: boolean
  /** The runs' version (runsVersion), when the store read it with the page, in the same query. */
  runsVersion?: string | undefined
}

/** A page of an instance's sessions to read (listSessions): a keyset scan over their ids, newest first. */
export interface ListSessionsQuery {
  instanceId: string
  limit: number
  /** Where the page starts: right after (older than) or right before (newer than) this session id. */
  position?: { direction: 'after' | 'before'; id: string } | undefined
  statuses?: readonly SessionRecord['status'][] | undefined
}

/** The sessions of a page, newest first, and whether more lie on either side. */
export interface SessionPage {
  sessions: SessionRecord[]
  hasMoreBefore: boolean
  hasMoreAfter: boolean
}

/**
 * Everything the API's reads ask of the store, as records. The SQL reader (reader.ts) asks the
 * database every time; what the API keeps of what it read is kept outside the store, in the one
 * cache (cached-reader.ts), around the records made into bytes (json-reader.ts).
 */
export interface StoreReader {
  findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined>
  /** The instance a session belongs to; undefined when there is no such session. */
  sessionInstance(sessionId: string): Promise<string | undefined>
  /** A session as it is now; undefined when there is none. */
  session(sessionId: string): Promise<SessionRecord | undefined>
  /** One page of an instance's sessions, newest first. */
  listSessions(query: ListSessionsQuery): Promise<SessionPage>
  /** The ids of one page of a session's events (an index-only read). */
  listEventIds(query: ListEventsQuery): Promise<EventIdPage>
  /** The events of a session with these ids, in the order of `ids`; ids of no event of the session are left out. */
  sessionEvents(sessionId: string, ids: readonly string[]): Promise<EventRecord[]>
  /**
   * Runs as they are now, by id; unknown ids are left out. `version`: the runs' version the
   * caller read already (with a page), which a cache may use rather than read it again.
   */
  serverRuns(ids: readonly string[], version?: string): Promise<RunRecord[]>
  /**
   * A value that changes whenever something a run shows (the run, its server session, its
   * deployment or its server) is written, by this process or any other; undefined when the
   * store cannot tell, and runs must then be read every time. Synchronous where the store can
   * read it so (embedded SQLite).
   */
  runsVersion(): string | undefined | Promise<string | undefined>
  /**
   * The newest session of the instance whose metadata is exactly `metadata`; undefined when none
   * is (the OTLP intake finds a service instance's session so).
   */
  sessionWithMetadata(instanceId: string, metadata: Record<string, string>): Promise<string | undefined>
  /** The newest run of the session on a deployment whose metadata is exactly `metadata` (the intake's run of a service instance). */
  serverRunWithDeploymentMetadata(sessionId: string, metadata: Record<string, string>): Promise<string | undefined>
}

// ---- writes ----

/**
 * A request's Idempotency-Key, as a write of the API takes it: the key is claimed, the write done
 * and its answer kept in the write's own transaction, so that none of them is ever without the
 * others (idempotency.ts).
 */
export interface IdempotencyClaim {
  instanceId: string
  key: string
  /** A sha256 of the request (method, path and body), hex: a retry must send the same request. */
  fingerprint: string
  /** The status the write's success answers with, kept with the resource it made or changed. */
  status: number
  /**
   * When the key was made, in ms, where the key does not say it itself (a UUIDv7 does): keys made
   * near one time are kept side by side (store/idempotency.ts). The same key must give the same time.
   */
  orderMs?: number
}

/**
 * A write's result. `replayed`: the write's Idempotency-Key had answered before, so nothing was
 * written now, and this is the resource that first answer named, as the store holds it now.
 */
export type Answered<T> = T & { replayed: boolean }

/** An event just appended, with the runs' version read in the same transaction, when the store has one. */
export interface AppendedEvent extends EventRecord {
  runsVersion?: string | undefined
}

/**
 * The API's writes: its four write operations, each one transaction with its Idempotency-Key's
 * answer (`claim`). A key that came with another request throws IdempotencyKeyReusedError, one
 * that another request is writing right now IdempotencyKeyInUseError, one whose first request was
 * refused RecordedRefusal; a key that answered before returns that answer (`replayed`).
 */
export interface StoreWriter {
  /** A new session of the instance. */
  createSession(input: {
    instanceId: string
    metadata?: Metadata | undefined
    at?: Date
    claim?: IdempotencyClaim | undefined
  }): Promise<Answered<SessionRecord>>
  /**
   * Starts a run in a session of the instance, with what it runs on: each of its server,
   * deployment and server session is one written before (by id, checked to be the instance's)
   * or a new one. An unknown one is an InvalidReferenceError.
   */
  startServerRun(input: {
    instanceId: string
    sessionId: string
    run: ServerRunStart
    at?: Date
    claim?: IdempotencyClaim | undefined
  }): Promise<Answered<{ id: string }>>
  /**
   * Appends one `server_logs` event to an active run of the session, in one commit. An unknown
   * run is an InvalidReferenceError; a stopped one, a WriteConflictError.
   */
  appendEvent(input: {
    sessionId: string
    serverRunId: string
    lines: readonly LogLine[]
    at?: Date
    claim?: IdempotencyClaim | undefined
  }): Promise<Answered<AppendedEvent>>
  /**
   * Stops an active run of the session: `completed`, or `failed` with the error that ended it
   * (written with its `server_run_error` event). Stopping a stopped run the same way again
   * changes nothing; another way is a WriteConflictError. `found`: false when the session has no
   * such run.
   */
  stopServerRun(input: {
    sessionId: string
    serverRunId: string
    stop: ServerRunStop
    at?: Date
    claim?: IdempotencyClaim | undefined
  }): Promise<Answered<{ found: boolean }>>
}

/** The operators' writes (npm run admin, the seed): instances and their keys. */
export interface AdminWriter {
  createInstance(input: { name: string; at?: Date }): Promise<{ id: string }>
  /** A new key of the instance; the secret is returned here once and stored only as its hash. */
  createApiKey(input: {
    instanceId: string
    kind: ApiKeyTable['kind']
    secret?: string
    revoked?: boolean
    expiresAt?: Date | null
    at?: Date
  }): Promise<{ id: string; secret: string }>
  /** Revokes the key with this secret; false when there is none (or it was revoked before). */
  revokeApiKey(secret: string, at?: Date): Promise<boolean>
}

export interface NewServer {
  name: string
  description: string | null
  type: ServerTable['type']
  at?: Date
}
export interface NewServerVersion {
  serverId: string
  at?: Date
}
export interface NewServerDeployment {
  instanceId: string
  serverId: string
  name: string | null
  description: string | null
  metadata?: Metadata
  at?: Date
}
export interface NewSession {
  instanceId: string
  metadata?: Metadata | undefined
  at?: Date
}
export interface NewServerSession {
  sessionId: string
  serverDeploymentId: string
  mcp: Mcp
  clientMessageCount?: number
  serverMessageCount?: number
  at?: Date
}
export interface NewServerRun {
  serverSessionId: string
  serverVersionId: string
  type: ServerRunTable['type']
  status?: ServerRunTable['status']
  startedAt?: Date | null
  at?: Date
}
export interface NewLogEvent {
  serverRunId: string
  lines: readonly LogLine[]
  at?: Date
}
export interface NewRunError {
  serverRunId: string
  code: string
  message: string
  metadata?: Metadata
  at?: Date
}
export interface RunChange {
  status?: ServerRunTable['status']
  startedAt?: Date | null
  stoppedAt?: Date | null
  at?: Date
}

/**
 * The seed's writes (demo data, the benchmark's datasets, tests): rows as they are given, times
 * included, and events in bulk, through the same row builders and id order as the API's writes.
 */
export interface SeedWriter {
  createServer(input: NewServer): Promise<{ id: string }>
  createServerVersion(input: NewServerVersion): Promise<{ id: string }>
  createServerDeployment(input: NewServerDeployment): Promise<{ id: string }>
  createSession(input: NewSession): Promise<SessionRecord>
  createServerSession(input: NewServerSession): Promise<{ id: string }>
  createServerRun(input: NewServerRun): Promise<{ id: string }>
  updateServerRun(id: string, change: RunChange): Promise<void>
  /** Appends `server_logs` events, in order, in one transaction; returns their ids. */
  appendLogEvents(events: readonly NewLogEvent[]): Promise<string[]>
  /** Records the error that ended a run: the error, its `server_run_error` event, the run failed. */
  recordServerRunError(input: NewRunError): Promise<{ id: string; eventId: string }>
}

/** What an Idempotency-Key holds: the answer of the first request that came with it. */
export interface KeptAnswer {
  status: number
  /** The resource a success answered with: a session, run or event id. */
  resourceId: string | null
  /** A refusal's body, as it was sent. */
  refusal: string | null
}

/** The answers kept for Idempotency-Keys, outside the writes that keep them (idempotency.ts). */
export interface IdempotencyKeys {
  /**
   * Keeps a refusal (a 4xx: nothing was written) as the key's answer, unless the key has one
   * already: then that one is returned and nothing is kept (an IdempotencyKeyReusedError when it
   * is another request's).
   */
  keepRefusal(claim: Omit<IdempotencyClaim, 'status'>, status: number, body: string): Promise<KeptAnswer | undefined>
  /** Removes the answers made before `before` (default: 24 hours ago, KEEP_MS); returns how many. */
  expire(before?: Date): Promise<number>
}

/** The store that openStore opens. */
export interface Store {
  readonly dialect: DialectName
  /** The database underneath: for migrations, tests and operators' scripts. */
  readonly db: Kysely<Database>
  readonly reader: StoreReader
  /** The API's write operations. */
  readonly writer: StoreWriter
  /** Instances and keys. */
  readonly admin: AdminWriter
  /** The seed's rows. */
  readonly seeding: SeedWriter
  /** The answers to requests sent with an Idempotency-Key. */
  readonly idempotencyKeys: IdempotencyKeys
  /** Wake-ups for followers of a session, from this process and any other. */
  readonly feed: EventFeed
  /** A rate limiter shared by every process over this store; undefined: one per process will do. */
  readonly rateLimiter: ((options: { points: number; durationSeconds: number }) => RateLimiterAbstract) | undefined
  /** The cap on streams per API key that every process over this store shares; undefined: one per process will do. */
  readonly streamSlots?: ((perKey: number) => StreamCap) | undefined
  /**
   * How long the oldest request waiting for a database connection has waited, ms (0: none
   * waits); undefined where requests never wait for one (SQLite, PGlite).
   */
  readonly connectionWaitMs?: (() => number) | undefined
  /** Throws when the store does not answer. */
  ping(): Promise<void>
  close(): Promise<void>
}
