import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import SQLite from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { Database } from './db.js'
import { asStoreError, reportingUnavailable } from './dialect.js'
import { sqliteAppend } from './append.js'
import { PollingFeed } from './feed.js'
import type { FastRead } from './prepared.js'
import { SqlStore } from './sql-store.js'

// Embedded SQLite (better-sqlite3): the default store. What only SQLite has lives here: its
// settings, the way around Kysely's driver for reads, and the runs' version.

export function openSqlite(path: string): SqlStore {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const database = new SQLite(path)
  database.pragma('journal_mode = WAL')
  database.pragma('synchronous = NORMAL')
  database.pragma('foreign_keys = ON')
  database.pragma('busy_timeout = 5000')
  const db = new Kysely<Database>({
    dialect: reportingUnavailable(new SqliteDialect({ database: reusingStatements(database) })),
  })
  return new SqlStore({
    dialect: 'sqlite',
    db,
    fastRead: fastSqliteRead(database),
    append: sqliteAppend(database, db),
    runsVersion: { runsVersion: sqliteRunsVersion(database) },
    // Commits of other connections (other processes) change data_version; this process's own
    // writes wake their followers directly. An in-memory database has no other connection.
    ...(path !== ':memory:' && {
      feed: new PollingFeed(() => (database.open ? database.pragma('data_version', { simple: true }) : undefined)),
    }),
  })
}

/**
 * What changes whenever something a run shows is written, by this connection or any other: the
 * count that migration 3's triggers keep in the writing transactions. One row read by its
 * primary key, against a query of four joined tables; appending events leaves it alone, so the
 * runs stay cached while sessions are being written to.
 */
function sqliteRunsVersion(database: SQLite.Database): () => string | undefined {
  let statement: SQLite.Statement | undefined
  return () => {
    if (database.inTransaction || !database.open) return undefined
    try {
      statement ??= database.prepare('SELECT n FROM run_changes WHERE id = 1').pluck()
      return String(statement.get())
    } catch (error) {
      throw asStoreError(error)
    }
  }
}

/**
 * The hot reads, run on the statement itself: better-sqlite3 is synchronous, and Kysely's driver
 * wraps each query in a connection, a mutex and promises that cost about as much again as the
 * query. Rows come back as arrays (raw mode), or as values when there is one column (pluck), which
 * better-sqlite3 makes much faster than objects, and become objects here, with the same keys in
 * the same order. While a transaction is open (its statements interleave with awaits), or once
 * the database is closed, a read goes through Kysely instead: it waits for the transaction as
 * before, and fails the same way after close.
 */
function fastSqliteRead(database: SQLite.Database): FastRead {
  // Statements of their own: raw mode is a setting of the statement, and Kysely's expect objects.
  const reads = new Map<string, { statement: SQLite.Statement; columns: string[] }>()
  return (sql, parameters) => {
    if (database.inTransaction || !database.open) return undefined
    try {
      let read = reads.get(sql)
      if (!read) {
        if (reads.size >= 1000) reads.clear()
        const statement = database.prepare(sql)
        if (!statement.reader) return undefined
        const columns = statement.columns().map((c) => c.name)
        // One column (a page's ids): its values alone, not an array around each.
        read = { statement: columns.length === 1 ? statement.pluck(true) : statement.raw(true), columns }
        reads.set(sql, read)
      }
      const { statement, columns } = read
      const rows = statement.all(parameters) as unknown[]
      // oxlint-disable-next-line unicorn/no-new-array -- sized once, filled by index: the hot path of every read
      const objects: Record<string, unknown>[] = new Array(rows.length)
      if (columns.length === 1) {
        const column = columns[0]!
        for (let r = 0; r < rows.length; r++) objects[r] = { [column]: rows[r] }
        return objects
      }
      for (let r = 0; r < rows.length; r++) {
        const row = rows[r] as unknown[]
        const object: Record<string, unknown> = {}
        for (let i = 0; i < columns.length; i++) object[columns[i]!] = row[i]
        objects[r] = object
      }
      return objects
    } catch (error) {
      throw asStoreError(error)
    }
  }
}

/**
 * Kysely's SQLite driver prepares every query it runs, and preparing costs about as much as
 * running a page query. better-sqlite3 statements can be run again and again (the driver only
 * calls all() and run(), never iterates two at once), so each SQL text is prepared once.
 */
function reusingStatements(database: SQLite.Database): { close(): void; prepare(sql: string): SQLite.Statement } {
  const statements = new Map<string, SQLite.Statement>()
  return {
    close: () => database.close(),
    prepare(sql: string) {
      let statement = statements.get(sql)
      if (!statement) {
        // Bounded: statements of one-off SQL (migrations, batch inserts of odd sizes) come and go.
        if (statements.size >= 1000) statements.clear()
        statement = database.prepare(sql)
        statements.set(sql, statement)
      }
      return statement
    },
  }
}
