// @session-events/api: the Session Events API server, for embedding and for tests.

// The app, its settings and its HTTP server.
export { createApp, type App, type AppOptions } from './app.js'
export { defaultConfig, loadConfig, ConfigError, type Config } from './config.js'
export { serve, type RunningServer, type ServeOptions } from './server.js'
export { API_VERSION, respond } from './respond.js'
export type { AppEnv } from './env.js'

// Its middleware, to mount on an app of one's own.
export { requestContext } from './middleware/request-context.js'
export { authenticate, requireScope } from './middleware/auth.js'
export { rateLimit, type RateLimitOptions } from './middleware/rate-limit.js'
export { ApiError, errors } from './errors.js'

// The store.
export { openStore, openPgliteStore } from './store/open.js'
export { CachingReader, type ReadCacheOptions } from './store/cached-reader.js'
export { hashSecret, type StoreWriter, type NewLogEvent } from './store/writer.js'
export { StoreUnavailableError, type Store, type StoreReader, type ListEventsQuery } from './store/types.js'
export type { SqlStore } from './store/sql-store.js'
export { seed, type SeedOptions, type SeedSummary } from './seed.js'
