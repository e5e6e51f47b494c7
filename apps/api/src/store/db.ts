import type {
  ServerPreview,
  ServerRun,
  ServerSessionPreview,
  Session,
  SessionEventType,
} from '@session-events/server-stubs'
import type { ColumnType } from 'kysely'

// The tables, as Kysely sees them. Timestamps are ISO 8601 strings in UTC with milliseconds
// (the wire format), so both dialects store, compare and return them alike. JSON columns hold
// text that was serialised once, at write time, and is copied into responses as it is.

export interface InstanceTable {
  id: string
  name: string
  created_at: string
  /**
   * How long its events are kept (`7d`, `off`: retention.ts); null: EVENT_RETENTION. Migration 7.
   * Optional: a new instance has none, and only the operators' command sets it.
   */
  event_retention?: string | null
}

export interface ApiKeyTable {
  id: string
  instance_id: string
  kind: 'secret' | 'publishable'
  /** sha256 of the secret, hex: the secret itself is never stored. */
  secret_hash: string
  /** The first characters of the secret, to recognise a key in a list. */
  secret_preview: string
  /** Space-separated scopes, such as `sessions:read`. */
  scopes: string
  revoked_at: string | null
  expires_at: string | null
  created_at: string
}

export interface SessionTable {
  id: string
  instance_id: string
  status: Session['status']
  metadata_json: string
  created_at: string
  /** Null only for a row that a writer older than migration 4 wrote after it ran. */
  updated_at: string | null
}

/**
 * The answer to a request sent with an Idempotency-Key (store/idempotency.ts), kept small: the
 * key and the request as hashes, the time as milliseconds since the epoch (8 bytes where an ISO
 * string takes 24), the answer as the resource it named (a success) or the body it sent (a
 * refusal).
 */
export interface IdempotencyAnswerTable {
  /** When the answer was made: it is kept for a day (KEEP_MS). */
  created_ms: number
  status: number
  /** The instance's id and the key: 16 bytes of their sha256, or a time and 10 (store/idempotency.ts). */
  key_hash: Uint8Array
  /** The first 16 bytes of the request's sha256 (method, path, body): a retry must send the same. */
  fingerprint: Uint8Array
  /** The session, run or event a success answered with. */
  resource_id: string | null
  /** The body of a refusal, as it was sent. */
  refusal: string | null
}

/** One row: since when the keys that tell their time are kept in time order (migration 11). */
export interface IdempotencyKeyOrderTable {
  since_ms: number
}

export interface ServerTable {
  id: string
  name: string
  description: string | null
  type: ServerPreview['type']
  created_at: string
  updated_at: string
}

export interface ServerVersionTable {
  id: string
  server_id: string
  created_at: string
}

export interface ServerDeploymentTable {
  id: string
  instance_id: string
  server_id: string
  name: string | null
  description: string | null
  metadata_json: string
  created_at: string
  updated_at: string
}

export interface ServerSessionTable {
  id: string
  session_id: string
  server_deployment_id: string
  status: ServerSessionPreview['status']
  mcp_json: string
  client_message_count: number
  server_message_count: number
  created_at: string
  updated_at: string
}

export interface ServerRunTable {
  id: string
  server_session_id: string
  server_deployment_id: string
  server_version_id: string
  type: ServerRun['type']
  status: ServerRun['status']
  created_at: string
  updated_at: string
  started_at: string | null
  stopped_at: string | null
}

export interface ServerRunErrorTable {
  id: string
  server_run_id: string
  code: string
  message: string
  metadata_json: string
  created_at: string
}

export interface SessionEventTable {
  id: string
  session_id: string
  server_run_id: string | null
  /** The run's server session, kept on the event so that filtering by it is one index scan. */
  server_session_id: string | null
  type: SessionEventType
  server_run_error_id: string | null
  log_lines_json: string
  created_at: string
}

/** One process at a time does a job (the pruner: store/prune-lease.ts); a lease whose time is past is free. */
export interface LeaseTable {
  name: string
  /** Who holds it, or held it last. */
  holder: string
  expires_at: string
  /** When the job last finished. */
  last_run_at: string
}

/** One row, counting writes to what a run shows (migration 3 on SQLite, 5 on PostgreSQL). */
export interface RunChangesTable {
  id: number
  n: number
}

export interface MigrationTable {
  version: number
  name: string
  applied_at: ColumnType<string, string, never>
}

export interface Database {
  instances: InstanceTable
  api_keys: ApiKeyTable
  sessions: SessionTable
  servers: ServerTable
  server_versions: ServerVersionTable
  server_deployments: ServerDeploymentTable
  server_sessions: ServerSessionTable
  server_runs: ServerRunTable
  server_run_errors: ServerRunErrorTable
  session_events: SessionEventTable
  idempotency_answers: IdempotencyAnswerTable
  idempotency_key_order: IdempotencyKeyOrderTable
  schema_migrations: MigrationTable
  run_changes: RunChangesTable
  leases: LeaseTable
}
