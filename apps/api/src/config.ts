import { parseDatabaseUrl } from './store/open.js'
import { DEFAULT_POOL_SETTINGS, type PoolSettings } from './store/postgres.js'

// The settings of the server, all from the environment, read here and nowhere else, once, at
// start. A bad one stops the server with a message that says which and why. The rest of the
// code takes what it needs of the Config as arguments.

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export interface Config {
  host: string
  port: number
  /** As given; unset means the embedded SQLite file under `cwd`. */
  databaseUrl: string | undefined
  /** Where relative SQLite paths are: the directory npm was run from (INIT_CWD), else this process's. */
  cwd: string
  pool: PoolSettings
  /** PostgreSQL's application_name for this process (PGAPPNAME). */
  applicationName: string
  seed: boolean
  demoApiKey: string
  /** Requests per API key per minute; false: no limit. */
  rateLimitPerMinute: number | false
  logLevel: string
  /** The read cache's memory budget, in bytes (0: no cache). */
  cacheBytes: number
  /** How long an API key lookup is cached, in milliseconds (a revocation takes this long at most). */
  keyCacheMs: number
  /** Streams (the live tail) an API key may hold open at once, per process. */
  streamsPerKey: number
  /** New requests get a 503 while the event loop lags more than this (false: never). */
  shedLoadAfterMs: number | false
}

export const DEFAULT_DEMO_API_KEY = 'metorial_sk_demo0000000000000000000000000000000000'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new ConfigError(`${name} must be true or false (got "${value}")`)
}

function wholeNumber(name: string, value: string | undefined, fallback: number, min = 0): number {
  if (value === undefined || value === '') return fallback
  if (!/^\d+$/.test(value) || Number(value) < min)
    throw new ConfigError(`${name} must be a whole number of at least ${min} (got "${value}")`)
  return Number(value)
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const host = env.HOST || '127.0.0.1'
  const port = wholeNumber('PORT', env.PORT, 3000)
  if (port > 65535) throw new ConfigError(`PORT must be a whole number from 0 to 65535 (got "${env.PORT}")`)
  const cwd = env.INIT_CWD || process.cwd()
  try {
    parseDatabaseUrl(env.DATABASE_URL, cwd)
  } catch (error) {
    throw new ConfigError((error as Error).message)
  }
  const demoApiKey = env.DEMO_API_KEY || DEFAULT_DEMO_API_KEY
  if (!/^metorial_sk_[0-9A-Za-z_]{8,200}$/.test(demoApiKey)) {
    throw new ConfigError(
      'DEMO_API_KEY must look like a secret key: metorial_sk_ followed by at least 8 letters or digits',
    )
  }
  const perMinute = env.RATE_LIMIT_PER_MINUTE
  const rateLimitPerMinute =
    perMinute !== undefined && /^(0|off|false)$/i.test(perMinute)
      ? false
      : wholeNumber('RATE_LIMIT_PER_MINUTE', perMinute, 1200, 1)
  const logLevel = env.LOG_LEVEL || 'info'
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`)
  return {
    host,
    port,
    databaseUrl: env.DATABASE_URL || undefined,
    cwd,
    pool: {
      max: wholeNumber('DATABASE_POOL_MAX', env.DATABASE_POOL_MAX, DEFAULT_POOL_SETTINGS.max, 1),
      acquireTimeoutMs: wholeNumber(
        'DATABASE_POOL_TIMEOUT_MS',
        env.DATABASE_POOL_TIMEOUT_MS,
        DEFAULT_POOL_SETTINGS.acquireTimeoutMs,
        1,
      ),
      idleTimeoutMs: wholeNumber(
        'DATABASE_IDLE_TIMEOUT_MS',
        env.DATABASE_IDLE_TIMEOUT_MS,
        DEFAULT_POOL_SETTINGS.idleTimeoutMs,
      ),
      statementTimeoutMs: wholeNumber(
        'DATABASE_STATEMENT_TIMEOUT_MS',
        env.DATABASE_STATEMENT_TIMEOUT_MS,
        DEFAULT_POOL_SETTINGS.statementTimeoutMs,
      ),
    },
    applicationName: env.PGAPPNAME || 'session-events-api',
    seed: bool('SEED', env.SEED, true),
    demoApiKey,
    rateLimitPerMinute,
    logLevel,
    cacheBytes: wholeNumber('CACHE_MB', env.CACHE_MB, 48) * 1024 * 1024,
    keyCacheMs: wholeNumber('KEY_CACHE_SECONDS', env.KEY_CACHE_SECONDS, 5) * 1000,
    streamsPerKey: wholeNumber('STREAMS_PER_KEY', env.STREAMS_PER_KEY, 100, 1),
    shedLoadAfterMs:
      env.SHED_LOAD_AFTER_MS !== undefined && /^(off|false)$/i.test(env.SHED_LOAD_AFTER_MS)
        ? false
        : wholeNumber('SHED_LOAD_AFTER_MS', env.SHED_LOAD_AFTER_MS, 200, 10),
  }
}
