import type { LogLine, Mcp, Metadata, SessionEventType } from '@session-events/server-stubs'
import type {
  ApiKeyTable,
  ServerDeploymentTable,
  ServerRunTable,
  ServerSessionTable,
  ServerTable,
  SessionEventTable,
} from './db.js'

/** The store cannot be reached for now (a database that is down, a pool that is exhausted). */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
}

export type ApiKeyRecord = ApiKeyTable

/** An event row with its error, if it has one. */
export interface EventRecord extends SessionEventTable {
  error_code: string | null
  error_message: string | null
  error_metadata_json: string | null
  error_created_at: string | null
}

/** A server run with everything its preview shows, read in one query. */
export interface RunRecord {
  run: ServerRunTable
  server: ServerTable
  deployment: ServerDeploymentTable
  serverSession: ServerSessionTable
}

export type Order = 'asc' | 'desc'

export interface ListEventsQuery {
  sessionId: string
  limit: number
  order: Order
  /** Where the page starts: right after or right before this event id, in `order`. */
  position?: { direction: 'after' | 'before'; id: string } | undefined
  serverRunIds?: readonly string[] | undefined
  serverSessionIds?: readonly string[] | undefined
  types?: readonly SessionEventType[] | undefined
}

export interface EventPage {
  /** In the requested order. */
  events: EventRecord[]
  /** The runs of those events, by id. */
  runs: Map<string, RunRecord>
  hasMoreBefore: boolean
  hasMoreAfter: boolean
}

export interface NewLogEvent {
  serverRunId: string
  lines: LogLine[]
  at?: Date
}

/**
 * Everything the API reads and writes. Handlers, the seed, the tests and later ingestion all go
 * through this interface; SQL lives only in its implementation.
 */
export interface Store {
  readonly dialect: 'sqlite' | 'postgres'

  /** Throws when the store does not answer. */
  ping(): Promise<void>
  close(): Promise<void>
  isEmpty(): Promise<boolean>

  // Reads of the API.
  findApiKey(secretHash: string): Promise<ApiKeyRecord | undefined>
  sessionInstance(sessionId: string): Promise<string | undefined>
  listSessionEvents(query: ListEventsQuery): Promise<EventPage>
  getSessionEvent(sessionId: string, eventId: string): Promise<{ event: EventRecord; run: RunRecord | undefined } | undefined>
  firstSession(instanceId: string): Promise<string | undefined>

  // The write path: the seed, the tests and ingestion.
  createInstance(input: { name: string; at?: Date }): Promise<{ id: string }>
  createApiKey(input: {
    instanceId: string
    kind: 'secret' | 'publishable'
    secret?: string
    revoked?: boolean
    expiresAt?: Date | null
    at?: Date
  }): Promise<{ id: string; secret: string }>
  revokeApiKey(id: string, at?: Date): Promise<void>
  createServer(input: { name: string; description: string | null; type: 'public' | 'custom'; at?: Date }): Promise<{ id: string }>
  createServerVersion(input: { serverId: string; at?: Date }): Promise<{ id: string }>
  createServerDeployment(input: {
    instanceId: string
    serverId: string
    name: string | null
    description: string | null
    metadata?: Metadata
    at?: Date
  }): Promise<{ id: string }>
  createSession(input: { instanceId: string; at?: Date }): Promise<{ id: string }>
  createServerSession(input: {
    sessionId: string
    serverDeploymentId: string
    mcp: Mcp
    clientMessageCount?: number
    serverMessageCount?: number
    at?: Date
  }): Promise<{ id: string }>
  createServerRun(input: {
    serverSessionId: string
    serverVersionId: string
    type: 'hosted' | 'external'
    status?: 'active' | 'failed' | 'completed'
    startedAt?: Date | null
    at?: Date
  }): Promise<{ id: string }>
  updateServerRun(
    id: string,
    change: { status?: 'active' | 'failed' | 'completed'; startedAt?: Date | null; stoppedAt?: Date | null; at?: Date },
  ): Promise<void>
  /** Appends `server_logs` events, in order, in one transaction; returns their ids. */
  appendLogEvents(events: readonly NewLogEvent[]): Promise<string[]>
  /** Records the error that ended a run: the error, its `server_run_error` event, the run failed. */
  recordServerRunError(input: {
    serverRunId: string
    code: string
    message: string
    metadata?: Metadata
    at?: Date
  }): Promise<{ id: string; eventId: string }>
}
