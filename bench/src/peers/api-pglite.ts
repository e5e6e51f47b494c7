import { writeFileSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { createApp, loadConfig, seed, serve } from '@session-events/api'
import { openPgliteStore } from '@session-events/api/internal/store/open.js'

// The API on PGlite (PostgreSQL compiled to WebAssembly, in the API's own process): the PostgreSQL
// rows of the peers suite when there is no PostgreSQL server to reach. The store is in memory, so
// the dataset is seeded here, with the same shape as the throughput dataset, before it serves;
// what the driver needs of it (the key, the sessions and their middle events) is written to
// DATASET_JSON first. The app is the API's own (createApp), as main.js makes it, with its settings
// from the environment, without the rate limit and load shedding. No peer can share the database: PGlite is one process's.
// Usage: node api-pglite.js PORT SESSIONS EVENTS DATASET_JSON

const [port, sessions, events, out] = process.argv.slice(2)
if (!port || !sessions || !events || !out)
  throw new Error('usage: node api-pglite.js PORT SESSIONS EVENTS DATASET_JSON')

const store = await openPgliteStore(new PGlite())
const started = performance.now()
const summary = await seed(store, { instances: 1, sessions: Number(sessions), events: Number(events) })
const seconds = (performance.now() - started) / 1000
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
const total = sessionList.reduce((n, s) => n + s.events, 0)
writeFileSync(
  out,
  JSON.stringify({
    secretKey: summary.instances[0]!.secret_key,
    sessionList,
    seeding: {
      events: total,
      seconds,
      eventsPerS: total / seconds,
      at: new Date().toISOString(),
      node: process.version,
    },
  }),
)

const app = createApp({ store, config: { ...loadConfig(), rateLimit: false, shedLoadAfterMs: false } })
await serve({ app, host: '127.0.0.1', port: Number(port) })
