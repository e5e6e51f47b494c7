import { sql, type AliasedRawBuilder } from 'kysely'
import type { Database } from './db.js'
import type { EventRecord, RunRecord } from './types.js'

// Row mappers. A query that joins tables names each table's columns with the table's alias in
// front (`r__status`, `s__status`), so that columns of the same name do not collide; the mapper
// takes them apart again. The column lists are the tables' own (db.ts), checked to be complete.

/** Every column of a table, once: a missing or unknown column is a compile error. */
function columnsOf<T>() {
  return <const L extends readonly (keyof T & string)[]>(
    list: L & ([Exclude<keyof T, L[number]>] extends [never] ? unknown : never),
  ): L => list
}

export const COLUMNS = {
  session_events: columnsOf<Database['session_events']>()([
    'id',
    'session_id',
    'server_run_id',
    'server_session_id',
    'type',
    'server_run_error_id',
    'log_lines_json',
    'created_at',
  ]),
  server_run_errors: columnsOf<Database['server_run_errors']>()([
    'id',
    'server_run_id',
    'code',
    'message',
    'metadata_json',
    'created_at',
  ]),
  server_runs: columnsOf<Database['server_runs']>()([
    'id',
    'server_session_id',
    'server_deployment_id',
    'server_version_id',
    'type',
    'status',
    'created_at',
    'updated_at',
    'started_at',
    'stopped_at',
  ]),
  server_sessions: columnsOf<Database['server_sessions']>()([
    'id',
    'session_id',
    'server_deployment_id',
    'status',
    'mcp_json',
    'client_message_count',
    'server_message_count',
    'created_at',
    'updated_at',
  ]),
  server_deployments: columnsOf<Database['server_deployments']>()([
    'id',
    'instance_id',
    'server_id',
    'name',
    'description',
    'metadata_json',
    'created_at',
    'updated_at',
  ]),
  servers: columnsOf<Database['servers']>()(['id', 'name', 'description', 'type', 'created_at', 'updated_at']),
} as const

type Table = keyof typeof COLUMNS

/** `alias.column as alias__column` for every column of `table`. */
export function prefixed(table: Table, alias: string): AliasedRawBuilder<unknown, string>[] {
  return COLUMNS[table].map((column) => sql`${sql.ref(`${alias}.${column}`)}`.as(`${alias}__${column}`))
}

/** The columns of one table out of a joined row; null when the join found none (its id is null). */
function unprefixed<T>(row: Record<string, unknown>, table: Table, alias: string): T | null {
  if (row[`${alias}__id`] == null) return null
  const out: Record<string, unknown> = {}
  for (const column of COLUMNS[table]) out[column] = row[`${alias}__${column}`]
  return out as T
}

/** The columns of an event read with its error (reader.ts, `e` and `x`). */
export const EVENT_COLUMNS = () => [...prefixed('session_events', 'e'), ...prefixed('server_run_errors', 'x')]

export function eventFromRow(row: Record<string, unknown>): EventRecord {
  return {
    event: unprefixed(row, 'session_events', 'e')!,
    error: unprefixed(row, 'server_run_errors', 'x'),
  }
}

/** The columns of a run read with its previews (reader.ts, `r`, `ss`, `d` and `s`). */
export const RUN_COLUMNS = () => [
  ...prefixed('server_runs', 'r'),
  ...prefixed('server_sessions', 'ss'),
  ...prefixed('server_deployments', 'd'),
  ...prefixed('servers', 's'),
]

export function runFromRow(row: Record<string, unknown>): RunRecord {
  const serverSession = unprefixed<RunRecord['serverSession']>(row, 'server_sessions', 'ss')!
  return {
    run: unprefixed(row, 'server_runs', 'r')!,
    // PostgreSQL's int8 and SQLite's integers both arrive as numbers (open.ts); counts stay numbers.
    serverSession: {
      ...serverSession,
      client_message_count: Number(serverSession.client_message_count),
      server_message_count: Number(serverSession.server_message_count),
    },
    deployment: unprefixed(row, 'server_deployments', 'd')!,
    server: unprefixed(row, 'servers', 's')!,
  }
}
