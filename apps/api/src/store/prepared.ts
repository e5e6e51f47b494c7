import { CompiledQuery, type Compilable, type Kysely } from 'kysely'
import { LRUCache } from 'lru-cache'

// Kysely builds and compiles a query on every call, which costs more than running it on a hot
// path. A query of a fixed shape is compiled here once, with a named slot where each value goes,
// and run after that with the values alone: the same builder, the same SQL, no second copy.

const SLOT = '\u0000slot:'

/** Puts a named value into a query: a slot while the shape compiles, the value otherwise. */
export type Bind = <T>(name: string) => T

/**
 * Runs compiled SQL synchronously, straight on the database, or returns undefined when it cannot
 * now (then the query goes through Kysely). Errors are the store's (StoreUnavailableError…).
 */
export type FastRead = (sql: string, parameters: readonly unknown[]) => unknown[] | undefined

/**
 * Shapes kept compiled. A request chooses its shape (how many ids in each filter, the order, the
 * page size…), so there are millions of possible ones: the most recently used are kept, and one
 * seen again after it was dropped is compiled again.
 */
export const MAX_SHAPES = 1000

export class PreparedQueries {
  readonly #db: Kysely<any>
  readonly #fastRead: FastRead | undefined
  readonly #shapes = new LRUCache<string, { sql: string; names: (string | undefined)[]; fixed: readonly unknown[] }>({
    max: MAX_SHAPES,
  })

  /** `fastRead`: an embedded database's way around Kysely's connection machinery, for reads. */
  constructor(db: Kysely<any>, fastRead?: FastRead) {
    this.#db = db
    this.#fastRead = fastRead
  }

  /**
   * Runs the query `build` makes with `values`. `shape` names everything about the query that is
   * not a value (which filters, how many ids in a list, the order): one compilation per shape.
   */
  async execute<R>(shape: string, values: Record<string, unknown>, build: (bind: Bind) => Compilable<R>): Promise<R[]> {
    let prepared = this.#shapes.get(shape)
    if (!prepared) {
      const compiled = build(<T>(name: string) => `${SLOT}${name}` as T).compile()
      prepared = {
        sql: compiled.sql,
        names: compiled.parameters.map((p) =>
          typeof p === 'string' && p.startsWith(SLOT) ? p.slice(SLOT.length) : undefined,
        ),
        fixed: compiled.parameters,
      }
      for (const name of Object.keys(values)) {
        if (!prepared.names.includes(name)) throw new Error(`query shape ${shape} has no slot for ${name}`)
      }
      this.#shapes.set(shape, prepared)
    }
    const { sql, names, fixed } = prepared
    const parameters = names.map((name, i) => (name === undefined ? fixed[i] : values[name]))
    const rows = this.#fastRead?.(sql, parameters) as R[] | undefined
    if (rows !== undefined) return rows
    return (await this.#db.executeQuery<R>(CompiledQuery.raw(sql, parameters))).rows
  }

  /** How many shapes are compiled now. */
  get size(): number {
    return this.#shapes.size
  }
}

/** A Bind that puts the values in directly: for compiling one query with its own values (EXPLAIN). */
export const bindValues =
  (values: Record<string, unknown>): Bind =>
  <T>(name: string) =>
    values[name] as T
