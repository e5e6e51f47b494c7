import {
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
} from 'kysely'

// A Kysely dialect over PGlite (PostgreSQL compiled to WebAssembly, in process): the test
// suite's PostgreSQL when no server is at hand. Kysely's own PostgreSQL adapter, compiler and
// introspector; only the driver is ours. PGlite is one session, so the driver hands out one
// connection at a time, and a transaction holds it from BEGIN to COMMIT.

/** What the driver needs of a PGlite instance; structural, so production code never imports PGlite. */
export interface PGliteLike {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[]; affectedRows?: number }>
  close(): Promise<void>
  readonly closed: boolean
}

class PGliteConnection implements DatabaseConnection {
  constructor(readonly pglite: PGliteLike) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.pglite.query<R>(query.sql, [...query.parameters])
    const kind = query.query.kind
    const writes =
      kind === 'InsertQueryNode' ||
      kind === 'UpdateQueryNode' ||
      kind === 'DeleteQueryNode' ||
      kind === 'MergeQueryNode'
    return {
      rows: result.rows,
      ...(writes && result.affectedRows !== undefined && { numAffectedRows: BigInt(result.affectedRows) }),
    }
  }

  // oxlint-disable-next-line require-yield -- Kysely's driver interface asks for a generator; this one only refuses
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not supported over PGlite')
  }
}

/**
 * One lock per PGlite: it is one session, however many stores (and drivers) share it. The lock
 * is kept on the PGlite object itself, so it lives and dies with it.
 */
const SESSION_LOCK = Symbol.for('session-events.pglite.session-lock')
type Locked = PGliteLike & { [SESSION_LOCK]?: { free: Promise<void> } }

class PGliteDriver implements Driver {
  readonly #connection: PGliteConnection
  readonly #closeOnDestroy: boolean
  readonly #searchPath: string | undefined
  readonly #session: { free: Promise<void> }
  #release: (() => void) | undefined

  constructor(pglite: PGliteLike, options: PGliteDialectOptions) {
    this.#connection = new PGliteConnection(pglite)
    this.#closeOnDestroy = options.closeOnDestroy ?? true
    this.#searchPath = options.schema
    this.#session = (pglite as Locked)[SESSION_LOCK] ??= { free: Promise.resolve() }
  }

  async init() {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.#session.free
    let release!: () => void
    this.#session.free = new Promise<void>((resolve) => (release = resolve))
    await previous
    this.#release = release
    // Several stores may share one PGlite, each in its own schema; the session is theirs in turn.
    if (this.#searchPath !== undefined) {
      try {
        await this.#connection.pglite.query(`set search_path to "${this.#searchPath.replaceAll('"', '""')}"`)
      } catch (error) {
        await this.releaseConnection()
        throw error
      }
    }
    return this.#connection
  }

  async beginTransaction(connection: DatabaseConnection) {
    await (connection as PGliteConnection).pglite.query('begin')
  }

  async commitTransaction(connection: DatabaseConnection) {
    await (connection as PGliteConnection).pglite.query('commit')
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    await (connection as PGliteConnection).pglite.query('rollback')
  }

  async releaseConnection() {
    const release = this.#release
    this.#release = undefined
    release?.()
  }

  async destroy() {
    await this.#session.free
    const pglite = this.#connection.pglite
    if (this.#closeOnDestroy && !pglite.closed) await pglite.close()
  }
}

export interface PGliteDialectOptions {
  /** Close PGlite when Kysely is destroyed (default true). */
  closeOnDestroy?: boolean
  /** Work in this schema (its search_path), so that several stores can share one PGlite. */
  schema?: string
}

/** Kysely over a PGlite instance. */
export function pgliteDialect(pglite: PGliteLike, options: PGliteDialectOptions = {}): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new PGliteDriver(pglite, options),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db) => new PostgresIntrospector(db),
  }
}
