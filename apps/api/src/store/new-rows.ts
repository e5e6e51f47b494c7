import type { LogLine } from '@session-events/server-stubs'
import { hashSecret, newSecret, SECRET_KEY_SCOPES } from '../api-keys.js'
import { newId } from '../ids.js'
import type {
  ApiKeyTable,
  InstanceTable,
  ServerDeploymentTable,
  ServerRunErrorTable,
  ServerRunTable,
  ServerSessionTable,
  ServerTable,
  ServerVersionTable,
  SessionEventTable,
  SessionTable,
} from './db.js'
import type {
  AdminWriter,
  NewServer,
  NewServerDeployment,
  NewServerRun,
  NewServerSession,
  NewServerVersion,
  NewSession,
} from './types.js'

// One builder per table: the row a write inserts, made in one place whoever writes it (the API's
// writes, the operators', the seed's). Each takes the time it is made at (`at`, default now), and
// a new id of that time.

const isoOrNull = (at: Date | null | undefined) => (at ? at.toISOString() : null)

export function instanceRow(input: { name: string; at?: Date }): InstanceTable {
  const at = input.at ?? new Date()
  return { id: newId('instance', at.getTime()), name: input.name, created_at: at.toISOString() }
}

/** A key's row, and its secret: returned once, stored only as its hash. */
export function apiKeyRow(input: Parameters<AdminWriter['createApiKey']>[0]): { row: ApiKeyTable; secret: string } {
  const at = input.at ?? new Date()
  const secret = input.secret ?? newSecret(input.kind)
  const created = at.toISOString()
  return {
    secret,
    row: {
      id: newId('apiKey', at.getTime()),
      instance_id: input.instanceId,
      kind: input.kind,
      secret_hash: hashSecret(secret),
      secret_preview: secret.slice(0, 16),
      scopes: input.kind === 'secret' ? SECRET_KEY_SCOPES : '',
      revoked_at: input.revoked ? created : null,
      expires_at: isoOrNull(input.expiresAt),
      created_at: created,
    },
  }
}

export function serverRow(input: NewServer): ServerTable {
  const at = input.at ?? new Date()
  const created = at.toISOString()
  return {
    id: newId('server', at.getTime()),
    name: input.name,
    description: input.description,
    type: input.type,
    created_at: created,
    updated_at: created,
  }
}

export function serverVersionRow(input: NewServerVersion): ServerVersionTable {
  const at = input.at ?? new Date()
  return { id: newId('serverVersion', at.getTime()), server_id: input.serverId, created_at: at.toISOString() }
}

export function serverDeploymentRow(input: NewServerDeployment): ServerDeploymentTable {
  const at = input.at ?? new Date()
  const created = at.toISOString()
  return {
    id: newId('serverDeployment', at.getTime()),
    instance_id: input.instanceId,
    server_id: input.serverId,
    name: input.name,
    description: input.description,
    metadata_json: JSON.stringify(input.metadata ?? {}),
    created_at: created,
    updated_at: created,
  }
}

export function sessionRow(input: NewSession): SessionTable {
  const at = input.at ?? new Date()
  const created = at.toISOString()
  return {
    id: newId('session', at.getTime()),
    instance_id: input.instanceId,
    status: 'active',
    metadata_json: JSON.stringify(input.metadata ?? {}),
    created_at: created,
    updated_at: created,
  }
}

export function serverSessionRow(input: NewServerSession): ServerSessionTable {
  const at = input.at ?? new Date()
  const created = at.toISOString()
  return {
    id: newId('serverSession', at.getTime()),
    session_id: input.sessionId,
    server_deployment_id: input.serverDeploymentId,
    status: 'active',
    mcp_json: JSON.stringify(input.mcp),
    client_message_count: input.clientMessageCount ?? 0,
    server_message_count: input.serverMessageCount ?? 0,
    created_at: created,
    updated_at: created,
  }
}

/** A run's row; its deployment is its server session's. */
export function serverRunRow(input: NewServerRun & { serverDeploymentId: string }): ServerRunTable {
  const at = input.at ?? new Date()
  const created = at.toISOString()
  return {
    id: newId('serverRun', at.getTime()),
    server_session_id: input.serverSessionId,
    server_deployment_id: input.serverDeploymentId,
    server_version_id: input.serverVersionId,
    type: input.type,
    status: input.status ?? 'active',
    created_at: created,
    updated_at: created,
    started_at: input.startedAt === undefined ? created : isoOrNull(input.startedAt),
    stopped_at: null,
  }
}

export function serverRunErrorRow(input: {
  serverRunId: string
  code: string
  message: string
  metadata?: Record<string, unknown> | undefined
  at: Date
}): ServerRunErrorTable {
  return {
    id: newId('serverRunError', input.at.getTime()),
    server_run_id: input.serverRunId,
    code: input.code,
    message: input.message,
    metadata_json: JSON.stringify(input.metadata ?? {}),
    created_at: input.at.toISOString(),
  }
}

/** The lines of a `server_logs` event as they are stored: each line's type and text, nothing else. */
export function logLinesJson(lines: readonly LogLine[]): string {
  // A line's own fields only, in the spec's order; those a line may leave out (its time, level
  // and trace, from OTLP) only when it has them.
  return JSON.stringify(
    lines.map(({ type, line, time, severity_text, trace_id, span_id }) =>
      time === undefined && severity_text === undefined && trace_id === undefined && span_id === undefined
        ? { type, line }
        : { type, line, time, severity_text, trace_id, span_id },
    ),
  )
}

/**
 * An event's row. Its id comes from the session's order (event-log.ts, allocateEventIds), never
 * from here; its run and server session from the run's place.
 */
export function sessionEventRow(input: {
  id: string
  run: { id: string; session_id: string; server_session_id: string }
  at: Date
  event: { type: 'server_logs'; linesJson: string } | { type: 'server_run_error'; errorId: string }
}): SessionEventTable {
  return {
    id: input.id,
    session_id: input.run.session_id,
    server_run_id: input.run.id,
    server_session_id: input.run.server_session_id,
    type: input.event.type,
    server_run_error_id: input.event.type === 'server_run_error' ? input.event.errorId : null,
    log_lines_json: input.event.type === 'server_logs' ? input.event.linesJson : '[]',
    created_at: input.at.toISOString(),
  }
}
