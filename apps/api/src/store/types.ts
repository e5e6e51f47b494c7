import type { z } from '@hono/zod-openapi'
import type { Routes } from '@session-events/server-stubs'
import type { Kysely } from 'kysely'
import type { RateLimiterAbstract } from 'rate-limiter-flexible'
import type { ServerRunJson, SessionEventJson } from '../serialize.js'
import type {
  ApiKeyTable,
  Database,
  ServerDeploymentTable,
  ServerRunErrorTable,
  ServerRunTable,
  ServerSessionTable,
  ServerTable,
  SessionEventTable,
} from './db.js'
import type { EventFeed } from './feed.js'
import type { IdempotencyKeys } from './idempotency.js'
import type { StoreWriter } from './writer.js'

// What the store is to the rest of the API: a reader (what the API's reads need), a writer (what
// the seed, the operators and the write operations need), and the database underneath for
// migrations and tests. The records are rows of the tables (db.ts); the reader hands out events
// and runs already serialised (serialize.ts), which is what lets one decorator cache them
// (cached-reader.ts).

/** The store cannot be reached for now (a database that is down, a pool that is exhausted). */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
}

/**
 * A write names something that is not there for it (a run of another session, a server of
 * another instance…): the request's fault, answered with a 400 that names the field.
 */
export class InvalidReferenceError extends Error {
  override name = 'InvalidReferenceError'
  constructor(
    readonly path: (string | number)[],
    message: string,
  ) {
    super(message)
  }
}

/** A write that the state of what it writes to refuses (a stopped run): a 409. */
export class WriteConflictError extends Error {
  override name = 'WriteConflictError'
}

export type ApiKeyRecord = ApiKeyTable

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

/** The query of listSessionEvents as the generated route validates it, defaults applied. */
type ListQuery = z.output<Routes['listSessionEvents']['request']['query']>

/** A page to read: the validated query of listSessionEvents, its position resolved. */
export interface ListEventsQuery {
  sessionId: string
  limit: number
  order: NonNullable<ListQuery['order']>
  /** Where the page starts: right after or right before this event id, in `order`. */
  position?: { direction: 'after' | 'before'; id: string } | undefined
  serverRunIds?: readonly string[] | undefined
  serverSessionIds?: readonly string[] | undefined
  types?: ListQuery['type']
}

/** The ids of a page, in the requested order, and whether more lie on either side. */
export interface EventIdPage {
  ids: string[]
  hasMoreBefore: boolean
  hasMoreAfter: boolean
  /** The runs' version (runsVersion), when the store read it with the page, in the same query. */
  runsVersion?: string | undefined
}

/**
 * Everything the API's reads ask of the store. The SQL reader (reader.ts) asks the database every
 * time; the caching reader (cached-reader.ts) implements the same interface around it.
 */
export interface StoreReader {
  findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined>
  /** The instance a session belongs to; undefined when there is no such session. */
  sessionInstance(sessionId: string): Promise<string | undefined>
  /** The ids of one page of a session's events (an index-only read). */
  listEventIds(query: ListEventsQuery): Promise<EventIdPage>
  /** The events of a session with these ids, in the order of `ids`; ids of no event of the session are left out. */
  sessionEvents(sessionId: string, ids: readonly string[]): Promise<SessionEventJson[]>
  /**
   * Runs as they are now, by id; unknown ids are left out. `version`: the runs' version the
   * caller read already (with a page), which a cache may use rather than read it again.
   */
  serverRuns(ids: readonly string[], version?: string): Promise<ServerRunJson[]>
  /**
   * A value that changes whenever something a run shows (the run, its server session, its
   * deployment or its server) is written, by this process or any other; undefined when the
   * store cannot tell, and runs must then be read every time. Synchronous where the store can
   * read it so (embedded SQLite).
   */
  runsVersion(): string | undefined | Promise<string | undefined>
}

/** The store that openStore opens. */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres'
  /** The database underneath: for migrations, tests and operators' scripts. */
  readonly db: Kysely<Database>
  readonly reader: StoreReader
  readonly writer: StoreWriter
  /** The answers to requests sent with an Idempotency-Key. */
  readonly idempotencyKeys: IdempotencyKeys
  /** Wake-ups for followers of a session, from this process and any other. */
  readonly feed: EventFeed
  /** A rate limiter shared by every process over this store; undefined: one per process will do. */
  readonly rateLimiter: ((options: { points: number; durationSeconds: number }) => RateLimiterAbstract) | undefined
  /** Throws when the store does not answer. */
  ping(): Promise<void>
  close(): Promise<void>
}
