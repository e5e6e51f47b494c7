// @session-events/api: the Session Events API server, to run inside a process of one's own. One
// Config (config.ts) opens the store, makes the app and serves it, as main.ts does:
//
//   const config = loadConfig()          // the environment, as `npm start` reads it; or
//                                        // defaultConfig({ databaseUrl: 'sqlite::memory:' })
//   const store = await openStore(config.databaseUrl, config)
//   const app = createApp({ store, config })
//   const server = await serve({ app, host: config.host, port: config.port })
//
// Nothing here is only for tests or the benchmark: the test suites of the other workspaces and
// bench/ reach the modules they take apart through the `./internal/*.js` subpath (package.json),
// which maps to the built files, so that they run what `npm start` runs.

export { createApp, type App, type AppOptions } from './app.js'
export { ConfigError, defaultConfig, loadConfig, type Config } from './config.js'
export { serve, type RunningServer, type ServeOptions } from './server.js'
export { openStore } from './store/open.js'
export type { SqlStore } from './store/sql-store.js'
export type { Store } from './store/types.js'
// The demo data that `npm start` writes into an empty store when SEED is on.
export { seed, type SeedOptions, type SeedSummary } from './seed.js'
