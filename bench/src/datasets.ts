import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { openStore, seed } from '@session-events/api'
import { hashSecret } from '@session-events/api/internal/api-keys.js'
import { dataDir } from './paths.js'
import { ensureSchema, schemaHolds, usedSchema, vacuumSchema } from './pg.js'

// Datasets are seeded once through the API's own seed (the store's write path) into SQLite files
// under bench/.data/, or into a schema of their own on the machine's PostgreSQL server
// (`bench_<name>`, pg.ts), with a sidecar under bench/.data/ that says what is in them; a later
// run reuses them (the schemas only when the run before kept them: a run drops the schemas it
// used unless given --keep-data, main.ts). A PostgreSQL dataset is vacuumed and analysed before
// every use, as autovacuum would keep it (the machine's server runs without autovacuum).

const FORMAT = 1

export interface DatasetShape {
  name: string
  instances: number
  /** Sessions per instance. */
  sessions: number
  /** `server_logs` events per session (the seed adds a run error event or two). */
  events: number
}

export interface Dataset extends DatasetShape {
  format: number
  /** Absent from sidecars written before PostgreSQL datasets: SQLite. */
  store?: 'sqlite' | 'postgres'
  /** The SQLite file; for PostgreSQL, the schema. */
  file: string
  databaseUrl: string
  secretKey: string
  seeding: { events: number; seconds: number; eventsPerS: number; at: string; node: string }
  sessionList: { id: string; events: number; middleEventId: string }[]
  /** Whether this run seeded it (false: reused from an earlier run). */
  seededNow: boolean
}

const sameShape = (a: DatasetShape, b: DatasetShape) =>
  a.instances === b.instances && a.sessions === b.sessions && a.events === b.events

/** The dataset, seeded now unless a complete one of the same shape is there (or `fresh`). */
export async function ensureDataset(
  shape: DatasetShape,
  options: { fresh?: boolean; log?: (line: string) => void; store?: 'sqlite' | 'postgres' } = {},
): Promise<Dataset> {
  mkdirSync(dataDir, { recursive: true })
  const postgres = options.store === 'postgres'
  const schema = `bench_${shape.name.replace(/[^a-z0-9]/g, '_')}`
  const file = postgres ? schema : join(dataDir, `${shape.name}.db`)
  const sidecar = join(dataDir, postgres ? `pg-${shape.name}.json` : `${shape.name}.json`)
  if (!options.fresh && existsSync(sidecar) && (postgres || existsSync(file))) {
    const known = JSON.parse(readFileSync(sidecar, 'utf8')) as Dataset
    if (known.format === FORMAT && sameShape(known, shape)) {
      if (!postgres) return { ...known, store: 'sqlite', file, databaseUrl: `sqlite:${file}`, seededNow: false }
      // A schema can change behind the sidecar's back (another run, a person): it must still hold what was seeded.
      if (await schemaHolds(schema, { events: known.seeding.events, secretHash: hashSecret(known.secretKey) })) {
        usedSchema(schema)
        await vacuumSchema(schema)
        return { ...known, seededNow: false }
      }
    }
  }

  const log = options.log ?? (() => {})
  const partial = join(dataDir, `${shape.name}.partial.db`)
  if (!postgres)
    for (const path of [file, sidecar, partial])
      for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  rmSync(sidecar, { force: true })
  const databaseUrl = postgres ? await ensureSchema(schema, { fresh: true }) : `sqlite:${file}`

  const total = shape.instances * shape.sessions * shape.events
  log(
    `seeding ${shape.name}${postgres ? ` into PostgreSQL (schema ${schema})` : ''}: ${shape.instances} instance(s) × ${shape.sessions} session(s) × ${shape.events.toLocaleString('en')} events`,
  )
  const store = await openStore(postgres ? databaseUrl : `sqlite:${partial}`)
  let reported = 0
  const started = performance.now()
  const summary = await seed(store, {
    instances: shape.instances,
    sessions: shape.sessions,
    events: shape.events,
    onProgress: (written) => {
      if (total >= 200_000 && written - reported >= total / 5) {
        reported = written
        const rate = written / ((performance.now() - started) / 1000)
        log(
          `  ${written.toLocaleString('en')} / ${total.toLocaleString('en')} events (${Math.round(rate).toLocaleString('en')} events/s)`,
        )
      }
    },
  })
  const seconds = (performance.now() - started) / 1000
  const events = summary.instances.reduce((n, i) => n + i.sessions.reduce((m, s) => m + s.events, 0), 0)

  // The event at the middle of each session: where a "deep" page starts.
  const sessionList = []
  for (const session of summary.instances[0]!.sessions) {
    const middle = await store.db
      .selectFrom('session_events')
      .select('id')
      .where('session_id', '=', session.id)
      .orderBy('id', 'asc')
      .offset(Math.floor(session.events / 2))
      .limit(1)
      .executeTakeFirstOrThrow()
    sessionList.push({ id: session.id, events: session.events, middleEventId: middle.id })
  }
  await store.close()
  if (postgres) await vacuumSchema(schema)
  // Closing checkpoints the WAL; should one remain, it moves with its database.
  if (!postgres)
    for (const suffix of ['-wal', '-shm', ''])
      if (existsSync(partial + suffix)) renameSync(partial + suffix, file + suffix)

  const dataset: Dataset = {
    ...shape,
    format: FORMAT,
    store: postgres ? 'postgres' : 'sqlite',
    file,
    databaseUrl,
    secretKey: summary.instances[0]!.secret_key,
    seeding: { events, seconds, eventsPerS: events / seconds, at: new Date().toISOString(), node: process.version },
    sessionList,
    seededNow: true,
  }
  writeFileSync(sidecar, `${JSON.stringify(dataset, null, 2)}\n`)
  log(
    `  seeded ${events.toLocaleString('en')} events in ${seconds.toFixed(1)} s (${Math.round(events / seconds).toLocaleString('en')} events/s)`,
  )
  return dataset
}
