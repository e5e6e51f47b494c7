import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import SQLite from 'better-sqlite3'
import Fastify, { type FastifyReply } from 'fastify'
import { Kysely, PostgresDialect, SqliteDialect, type SelectQueryBuilder } from 'kysely'
import pg from 'pg'
import { specJson } from '../paths.js'

// The same-work peer: the API's two read operations written as a user would write them on their
// own, with Fastify and Kysely over the same database, and nothing kept between requests.
//   - the same key lookup: sha256 hex of the bearer secret in api_keys.secret_hash, revoked_at and
//     expires_at checked, the scope checked, and the session's instance_id against the key's;
//   - the same validation, from the spec's parameter schemas (Fastify's ajv);
//   - listSessionEvents: the same filters (server_run_id, server_session_id, type), the same
//     keyset pagination (after, before, Metorial's cursors, order, limit, has_more_before and
//     has_more_after): the page's events with their errors in one query, their runs with what a
//     run shows in a second (once per run, not per event: a join per event cost 0.3 ms a page
//     on SQLite, the two queries less), and a third for the other side of the position when
//     there is one;
//   - getSessionEvent: one query, the event joined with its run and what the run shows;
//   - the same JSON, serialised with JSON.stringify or with Fastify's response schemas
//     (fast-json-stringify), per operation, as told: the suite runs both and keeps the faster.
// Usage: node kysely.js DATABASE_URL PORT list=json|schema,get=json|schema
//   DATABASE_URL: sqlite:PATH or postgres://… (the pool: 10 connections, as the API's default)

const [databaseUrl, portArg, serialiseArg = 'list=json,get=json'] = process.argv.slice(2)
if (!databaseUrl || !portArg)
  throw new Error('usage: node kysely.js DATABASE_URL PORT [list=json|schema,get=json|schema]')
const serialise = Object.fromEntries(serialiseArg.split(',').map((part) => part.split('='))) as Record<
  'list' | 'get',
  'json' | 'schema'
>

// ---- the tables, as the queries below use them ----

interface Tables {
  api_keys: {
    id: string
    instance_id: string
    secret_hash: string
    scopes: string
    revoked_at: string | null
    expires_at: string | null
  }
  sessions: { id: string; instance_id: string }
  session_events: {
    id: string
    session_id: string
    server_run_id: string | null
    server_session_id: string | null
    type: 'server_logs' | 'server_run_error'
    server_run_error_id: string | null
    log_lines_json: string
    created_at: string
  }
  server_run_errors: {
    id: string
    server_run_id: string
    code: string
    message: string
    metadata_json: string
    created_at: string
  }
  server_runs: {
    id: string
    server_session_id: string
    server_deployment_id: string
    server_version_id: string
    type: string
    status: string
    created_at: string
    updated_at: string
    started_at: string | null
    stopped_at: string | null
  }
  server_sessions: {
    id: string
    session_id: string
    status: string
    mcp_json: string
    client_message_count: number
    server_message_count: number
    created_at: string
  }
  server_deployments: {
    id: string
    server_id: string
    name: string | null
    description: string | null
    metadata_json: string
    created_at: string
    updated_at: string
  }
  servers: {
    id: string
    name: string
    description: string | null
    type: string
    created_at: string
    updated_at: string
  }
}

const db = databaseUrl.startsWith('sqlite:')
  ? new Kysely<Tables>({
      dialect: new SqliteDialect({
        database: new SQLite(databaseUrl.slice('sqlite:'.length), { fileMustExist: true }),
      }),
    })
  : new Kysely<Tables>({
      dialect: new PostgresDialect({
        pool: new pg.Pool({
          connectionString: databaseUrl,
          max: 10,
          idleTimeoutMillis: 600_000,
          application_name: process.env.PGAPPNAME ?? 'bench-peer',
        }),
      }),
    })

// ---- cursors: Metorial's, `cur_` + base-62 of the JSON ["after" | "before", id] ----

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

function encodeCursor(direction: 'after' | 'before', id: string): string {
  let n = BigInt(`0x${Buffer.from(JSON.stringify([direction, id])).toString('hex')}`)
  let out = ''
  while (n > 0n) {
    out = BASE62[Number(n % 62n)]! + out
    n /= 62n
  }
  return `cur_${out || '0'}`
}

function decodeCursor(cursor: string): { direction: 'after' | 'before'; id: string } | null {
  let n = 0n
  for (const ch of cursor.slice(4)) n = n * 62n + BigInt(BASE62.indexOf(ch))
  let hex = n.toString(16)
  if (hex.length % 2) hex = `0${hex}`
  try {
    const value = JSON.parse(Buffer.from(hex, 'hex').toString('utf8')) as unknown
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      (value[0] === 'after' || value[0] === 'before') &&
      /^sev_[0-9a-z]{9}[0-9A-Za-z]{13}$/.test(value[1])
    ) {
      return { direction: value[0], id: value[1] as string }
    }
  } catch {}
  return null
}

// ---- errors, in the API's shape ----

function fail(reply: FastifyReply, status: number, code: string, message: string) {
  return reply
    .code(status)
    .type('application/json')
    .send(JSON.stringify({ __typename: 'error', ok: false, status, code, message }))
}

// ---- the queries ----

type EventQuery = SelectQueryBuilder<
  Tables & { e: Tables['session_events']; x: Tables['server_run_errors'] },
  'e' | 'x',
  object
>

/** Events with the error that a `server_run_error` event shows. */
function eventsWithErrors(): EventQuery {
  return db
    .selectFrom('session_events as e')
    .leftJoin('server_run_errors as x', 'x.id', 'e.server_run_error_id') as unknown as EventQuery
}

const EVENT_COLUMNS = [
  'e.id',
  'e.session_id',
  'e.type',
  'e.server_run_id',
  'e.log_lines_json',
  'e.created_at',
  'x.id as x_id',
  'x.code as x_code',
  'x.message as x_message',
  'x.metadata_json as x_metadata_json',
  'x.created_at as x_created_at',
] as const

/** Runs by id, with what a run shows: its server session, its deployment and its server. */
const RUN_COLUMNS = [
  'r.id',
  'r.type',
  'r.status',
  'r.server_version_id',
  'r.created_at',
  'r.updated_at',
  'r.started_at',
  'r.stopped_at',
  'ss.id as ss_id',
  'ss.session_id as ss_session_id',
  'ss.status as ss_status',
  'ss.mcp_json as ss_mcp_json',
  'ss.client_message_count as ss_client_message_count',
  'ss.server_message_count as ss_server_message_count',
  'ss.created_at as ss_created_at',
  'd.id as d_id',
  'd.name as d_name',
  'd.description as d_description',
  'd.metadata_json as d_metadata_json',
  'd.created_at as d_created_at',
  'd.updated_at as d_updated_at',
  's.id as s_id',
  's.name as s_name',
  's.description as s_description',
  's.type as s_type',
  's.created_at as s_created_at',
  's.updated_at as s_updated_at',
] as const

function runsWithPreviews() {
  return db
    .selectFrom('server_runs as r')
    .innerJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
    .innerJoin('server_deployments as d', 'd.id', 'r.server_deployment_id')
    .innerJoin('servers as s', 's.id', 'd.server_id')
    .select(RUN_COLUMNS)
}

type Row = Record<string, any>

/** `prefix`: where the run's own columns are named `r_id`, `r_status`… (a joined event row). */
function toRun(row: Row, prefix = '') {
  const server = {
    object: 'server#preview',
    id: row.s_id,
    name: row.s_name,
    description: row.s_description,
    type: row.s_type,
    created_at: row.s_created_at,
    updated_at: row.s_updated_at,
  }
  const clientCount = Number(row.ss_client_message_count)
  const serverCount = Number(row.ss_server_message_count)
  return {
    object: 'server.server_run',
    id: row[`${prefix}id`],
    type: row[`${prefix}type`],
    status: row[`${prefix}status`],
    server_version_id: row[`${prefix}server_version_id`],
    server,
    server_deployment: {
      object: 'server.server_deployment#preview',
      id: row.d_id,
      name: row.d_name,
      description: row.d_description,
      metadata: JSON.parse(row.d_metadata_json),
      server,
      created_at: row.d_created_at,
      updated_at: row.d_updated_at,
    },
    server_session: {
      object: 'session.server_session#preview',
      id: row.ss_id,
      status: row.ss_status,
      mcp: JSON.parse(row.ss_mcp_json),
      usage: {
        total_productive_message_count: clientCount + serverCount,
        total_productive_client_message_count: clientCount,
        total_productive_server_message_count: serverCount,
      },
      session_id: row.ss_session_id,
      created_at: row.ss_created_at,
    },
    created_at: row[`${prefix}created_at`],
    updated_at: row[`${prefix}updated_at`],
    started_at: row[`${prefix}started_at`],
    stopped_at: row[`${prefix}stopped_at`],
  }
}

/** The events of these rows, each with its run (read in one more query, once per run). */
async function toEvents(rows: Row[]) {
  const runIds = [...new Set(rows.map((r) => r.server_run_id as string | null).filter((id) => id !== null))]
  const runs = new Map(
    runIds.length === 0
      ? []
      : (await runsWithPreviews().where('r.id', 'in', runIds).execute()).map((r: Row) => [r.id, toRun(r)]),
  )
  return rows.map((row) => toEvent(row, row.server_run_id === null ? null : (runs.get(row.server_run_id) ?? null)))
}

function toEvent(row: Row, run: ReturnType<typeof toRun> | null) {
  return {
    object: 'session.event',
    id: row.id,
    session_id: row.session_id,
    type: row.type,
    server_run: run,
    server_run_error:
      row.x_id !== null && run
        ? {
            object: 'server.server_run.error',
            id: row.x_id,
            code: row.x_code,
            message: row.x_message,
            metadata: JSON.parse(row.x_metadata_json),
            server_run: run,
            created_at: row.x_created_at,
          }
        : null,
    log_lines: JSON.parse(row.log_lines_json),
    created_at: row.created_at,
  }
}

/** The key's instance, or the reply already sent (401, 403). */
async function authenticate(authorization: string | undefined, reply: FastifyReply): Promise<string | null> {
  const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization ?? '')
  if (!match) return (void fail(reply, 401, 'unauthorized', 'Send an API key in the Authorization header.'), null)
  const hash = createHash('sha256').update(match[1]!).digest('hex')
  const key = await db
    .selectFrom('api_keys')
    .select(['instance_id', 'scopes', 'revoked_at', 'expires_at'])
    .where('secret_hash', '=', hash)
    .executeTakeFirst()
  if (!key || key.revoked_at !== null || (key.expires_at !== null && key.expires_at <= new Date().toISOString())) {
    return (void fail(reply, 401, 'unauthorized', 'The API key is not valid.'), null)
  }
  if (!key.scopes.split(' ').includes('sessions:read'))
    return (void fail(reply, 403, 'forbidden', 'The key may not read sessions.'), null)
  return key.instance_id
}

async function sessionOfInstance(sessionId: string, instanceId: string): Promise<boolean> {
  const session = await db.selectFrom('sessions').select('instance_id').where('id', '=', sessionId).executeTakeFirst()
  return session?.instance_id === instanceId
}

// ---- the routes, validated with the spec's own parameter schemas ----

const spec = JSON.parse(readFileSync(specJson, 'utf8')) as {
  components: {
    schemas: Record<string, unknown>
    parameters: Record<string, { name: string; in: string; schema: unknown }>
  }
}
/** A schema of the spec with its $refs pointing at the schemas Fastify was given, one per component. */
const fromSpec = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value).replace(/"#\/components\/schemas\/([A-Za-z]+)"/g, '"$1#"'))
const parameters = (names: string[], where: 'path' | 'query') => ({
  type: 'object',
  properties: Object.fromEntries(
    names
      .map((n) => spec.components.parameters[n]!)
      .filter((p) => p.in === where)
      .map((p) => [p.name, fromSpec(p.schema)]),
  ),
  ...(where === 'path' && {
    required: names
      .map((n) => spec.components.parameters[n]!)
      .filter((p) => p.in === 'path')
      .map((p) => p.name),
  }),
})
const LIST_PARAMETERS = [
  'SessionId',
  'Limit',
  'After',
  'Before',
  'Cursor',
  'Order',
  'ServerRunIdFilter',
  'ServerSessionIdFilter',
  'TypeFilter',
]
const response = (operation: 'list' | 'get', schema: string) =>
  serialise[operation] === 'schema' ? { response: { 200: { $ref: `${schema}#` } } } : {}

const app = Fastify({ logger: false })
for (const [name, schema] of Object.entries(spec.components.schemas))
  app.addSchema({ $id: name, ...(fromSpec(schema) as object) })

interface ListQuery {
  limit: number
  after?: string
  before?: string
  cursor?: string
  order: 'asc' | 'desc'
  server_run_id?: string[]
  server_session_id?: string[]
  type?: ('server_logs' | 'server_run_error')[]
}

app.get<{ Params: { sessionId: string }; Querystring: ListQuery }>(
  '/sessions/:sessionId/events',
  {
    schema: {
      params: parameters(LIST_PARAMETERS, 'path'),
      querystring: parameters(LIST_PARAMETERS, 'query'),
      ...response('list', 'SessionEventList'),
    },
  },
  async (request, reply) => {
    const instanceId = await authenticate(request.headers.authorization, reply)
    if (instanceId === null) return reply
    const { sessionId } = request.params
    const query = request.query
    if (query.after !== undefined && query.before !== undefined)
      return fail(reply, 400, 'bad_request', 'Use either `after` or `before`, not both.')
    let position: { direction: 'after' | 'before'; id: string } | null = null
    if (query.cursor !== undefined) {
      if (query.after !== undefined || query.before !== undefined)
        return fail(reply, 400, 'bad_request', 'Use either `cursor` or `after`/`before`, not both.')
      position = decodeCursor(query.cursor)
      if (!position) return fail(reply, 400, 'bad_request', 'The cursor is invalid.')
    } else if (query.after !== undefined) position = { direction: 'after', id: query.after }
    else if (query.before !== undefined) position = { direction: 'before', id: query.before }
    if (!(await sessionOfInstance(sessionId, instanceId)))
      return fail(reply, 404, 'not_found', 'The session was not found.')

    // Keyset pagination: a page before the position is read backwards from it, then turned around.
    const asc = query.order === 'asc'
    const backward = position?.direction === 'before'
    const following = asc ? '>' : '<'
    const preceding = asc ? '<' : '>'
    const toward = backward ? preceding : following
    const away = backward ? following : preceding
    const scanAscending = backward ? !asc : asc
    const filtered = (q: EventQuery): EventQuery => {
      q = q.where('e.session_id', '=', sessionId)
      if (query.server_run_id?.length) q = q.where('e.server_run_id', 'in', query.server_run_id)
      if (query.server_session_id?.length) q = q.where('e.server_session_id', 'in', query.server_session_id)
      if (query.type?.length) q = q.where('e.type', 'in', query.type)
      return q
    }
    let pageQuery = filtered(eventsWithErrors()).select(EVENT_COLUMNS)
    if (position) pageQuery = pageQuery.where('e.id', toward, position.id)
    const rows: Row[] = await pageQuery
      .orderBy('e.id', scanAscending ? 'asc' : 'desc')
      .limit(query.limit + 1)
      .execute()
    const more = rows.length > query.limit
    if (more) rows.pop()
    if (backward) rows.reverse()
    let other = false
    if (position) {
      const edge = backward ? rows.at(-1)?.id : rows[0]?.id
      const found = await filtered(db.selectFrom('session_events as e') as unknown as EventQuery)
        .select('e.id')
        .where('e.id', edge === undefined ? (`${away}=` as '<=' | '>=') : away, edge ?? position.id)
        .orderBy('e.id', away === '<' ? 'desc' : 'asc')
        .limit(1)
        .executeTakeFirst()
      other = found !== undefined
    }
    const hasMoreBefore = backward ? more : other
    const hasMoreAfter = backward ? other : more
    const first = rows[0]?.id as string | undefined
    const last = rows.at(-1)?.id as string | undefined
    const lowest = `sev_${'0'.repeat(22)}`
    const highest = `sev_${'z'.repeat(22)}`
    const body = {
      __typename: 'list',
      items: await toEvents(rows),
      pagination: {
        has_more_before: hasMoreBefore,
        has_more_after: hasMoreAfter,
        next_cursor: hasMoreAfter ? encodeCursor('after', last ?? (asc ? lowest : highest)) : null,
        previous_cursor: hasMoreBefore ? encodeCursor('before', first ?? (asc ? highest : lowest)) : null,
      },
    }
    if (serialise.list === 'schema') return body
    return reply.type('application/json').send(JSON.stringify(body))
  },
)

const GET_PARAMETERS = ['SessionId', 'SessionEventId']
app.get<{ Params: { sessionId: string; sessionEventId: string } }>(
  '/sessions/:sessionId/events/:sessionEventId',
  { schema: { params: parameters(GET_PARAMETERS, 'path'), ...response('get', 'SessionEvent') } },
  async (request, reply) => {
    const instanceId = await authenticate(request.headers.authorization, reply)
    if (instanceId === null) return reply
    const { sessionId, sessionEventId } = request.params
    if (!(await sessionOfInstance(sessionId, instanceId)))
      return fail(reply, 404, 'not_found', 'The session was not found.')
    // One event: one query, joined with its run and what the run shows.
    const row: Row | undefined = await db
      .selectFrom('session_events as e')
      .leftJoin('server_run_errors as x', 'x.id', 'e.server_run_error_id')
      .leftJoin('server_runs as r', 'r.id', 'e.server_run_id')
      .leftJoin('server_sessions as ss', 'ss.id', 'r.server_session_id')
      .leftJoin('server_deployments as d', 'd.id', 'r.server_deployment_id')
      .leftJoin('servers as s', 's.id', 'd.server_id')
      // The run's own columns as r_id, r_status…: beside the event's, in one row.
      .select([
        ...EVENT_COLUMNS,
        ...RUN_COLUMNS.map((c) => (c.includes(' as ') ? c : `${c} as r_${c.slice(2)}`)),
      ] as any)
      .where('e.session_id', '=', sessionId)
      .where('e.id', '=', sessionEventId)
      .executeTakeFirst()
    if (!row) return fail(reply, 404, 'not_found', 'The session event was not found.')
    const run = row.r_id === null ? null : toRun(row, 'r_')
    const body = toEvent(row, run)
    if (serialise.get === 'schema') return body
    return reply.type('application/json').send(JSON.stringify(body))
  },
)

app.get('/healthz', async () => ({ status: 'ok' }))

await app.listen({ port: Number(portArg), host: '127.0.0.1' })
