import { resolve } from 'node:path'
import { parseRetention } from './store/retention.js'

// The settings of the server. Each one is written here once, in SETTINGS: the environment
// variable it comes from, its default, what --help says of it, and how its text becomes a value.
// This module is the only reader of the environment (node-postgres reads its own PG* variables,
// PGPASSWORD, PGSSLMODE…, as psql does); the rest of the code takes the Config it is given:
//
//   loadConfig()             the environment, as `npm start` reads it, once, at start; a bad
//                            value stops the server with a message that says which and why
//   defaultConfig({ … })     the settings an embedder or a test gives, the defaults for the rest
//
// A new setting is one more field of Config and one more entry of SETTINGS (TypeScript asks for
// both); --help lists it, and a test checks that the README's table does.

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export interface Config {
  /** HOST: the address to listen on. */
  host: string
  /** PORT: the port to listen on; 0 picks a free one. */
  port: number
  /** DATABASE_URL, as given; undefined means the embedded SQLite file under `cwd`. */
  databaseUrl: string | undefined
  /** Where relative SQLite paths are: the directory npm was run from (INIT_CWD), else this process's. */
  cwd: string
  /** DATABASE_POOL_MAX: PostgreSQL connections this process opens at most. */
  databasePoolMax: number
  /** DATABASE_POOL_TIMEOUT_MS: how long a request waits for a connection before it gets a 503. */
  databasePoolTimeoutMs: number
  /** DATABASE_IDLE_TIMEOUT_MS: an idle connection is closed after this long. */
  databaseIdleTimeoutMs: number
  /** DATABASE_STATEMENT_TIMEOUT_MS: PostgreSQL cancels a statement that runs longer (0: never). */
  databaseStatementTimeoutMs: number
  /** PGAPPNAME: PostgreSQL's application_name for this process's connections. */
  applicationName: string
  /** SEED: seed demo data into an empty store at start. */
  seed: boolean
  /** DEMO_API_KEY: the demo instance's secret key. */
  demoApiKey: string
  /** RATE_LIMIT_PER_MINUTE: requests per API key in a window; false: no limit. */
  rateLimit: false | { points: number; durationSeconds: number }
  /** LOG_LEVEL: pino's level (`silent` … `trace`). */
  logLevel: string
  /** CACHE_MB: the read cache's memory budget, in bytes (0: no cache). */
  cacheBytes: number
  /** KEY_CACHE_SECONDS: how long an API key lookup, a session's instance and an event are cached, in ms (a revocation, or a session or event pruned, takes this long at most to be seen). */
  keyCacheMs: number
  /** STREAMS_PER_KEY: streams (the live tail) an API key may hold open at once (all processes over one PostgreSQL database). */
  streamsPerKey: number
  /** SHED_LOAD_AFTER_MS: new requests get a 503 while the event loop lags, or a request waits for a database connection, more than this (false: never). */
  shedLoadAfterMs: number | false
  /** SHED_LOAD_IN_FLIGHT: new requests get a 503 while this many are being answered (false: no bound). */
  shedLoadInFlight: number | false
  /** EVENT_RETENTION: how long events are kept, in ms, where an instance has no retention of its own (Infinity: off). */
  eventRetentionMs: number
}

interface Setting<T> {
  /** The environment variable. */
  variable: string
  /** The default, written as it would be in the environment ('': unset); a function when computed at load. */
  default: string | (() => string)
  /** What --help says of it (the default is added); none: not shown (INIT_CWD is npm's). */
  help?: string
  /** The value of the variable's text, or a ConfigError that says what is wrong with it. */
  parse(text: string, variable: string): T
}

/** Where the embedded store is when DATABASE_URL is unset, under the working directory. */
export const DEFAULT_SQLITE_PATH = 'data/session-events.db'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
const MIB = 1024 * 1024
const OFF = /^(off|false)$/i

function wholeNumber(text: string, variable: string, min = 0, max?: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`
    throw new ConfigError(`${variable} must be a whole number ${range} (got "${text}")`)
  }
  return value
}

const text = (value: string) => value

export const SETTINGS: { readonly [K in keyof Config]: Setting<Config[K]> } = {
  host: { variable: 'HOST', default: '127.0.0.1', help: 'address to listen on', parse: text },
  port: {
    variable: 'PORT',
    default: '3000',
    help: 'port to listen on; 0 picks a free one',
    parse: (value, variable) => wholeNumber(value, variable, 0, 65535),
  },
  databaseUrl: {
    variable: 'DATABASE_URL',
    default: '',
    help:
      `the store: unset = embedded SQLite in ./${DEFAULT_SQLITE_PATH}, sqlite:PATH = another SQLite file, ` +
      'sqlite::memory: = in memory, postgres://USER@HOST:PORT/DB = PostgreSQL',
    parse: (value) => {
      parseDatabaseUrl(value)
      return value || undefined
    },
  },
  cwd: { variable: 'INIT_CWD', default: () => process.cwd(), parse: text },
  seed: {
    variable: 'SEED',
    default: 'true',
    help: 'seed demo data into an empty store; false turns it off',
    parse: (value, variable) => {
      if (/^(1|true|yes|on)$/i.test(value)) return true
      if (/^(0|false|no|off)$/i.test(value)) return false
      throw new ConfigError(`${variable} must be true or false (got "${value}")`)
    },
  },
  demoApiKey: {
    variable: 'DEMO_API_KEY',
    default: 'metorial_sk_demo0000000000000000000000000000000000',
    help: "the demo instance's secret key",
    parse: (value, variable) => {
      if (!/^metorial_sk_[0-9A-Za-z_]{8,200}$/.test(value)) {
        throw new ConfigError(
          `${variable} must look like a secret key: metorial_sk_ followed by at least 8 letters or digits`,
        )
      }
      return value
    },
  },
  rateLimit: {
    variable: 'RATE_LIMIT_PER_MINUTE',
    default: '1200',
    help: 'requests per API key per minute; off or 0 turns it off',
    parse: (value, variable) =>
      OFF.test(value) || value === '0' ? false : { points: wholeNumber(value, variable, 1), durationSeconds: 60 },
  },
  logLevel: {
    variable: 'LOG_LEVEL',
    default: 'info',
    help: `the level of the JSON logs: ${LOG_LEVELS.join(', ')}`,
    parse: (value, variable) => {
      if (!LOG_LEVELS.includes(value))
        throw new ConfigError(`${variable} must be one of ${LOG_LEVELS.join(', ')} (got "${value}")`)
      return value
    },
  },
  databasePoolMax: {
    variable: 'DATABASE_POOL_MAX',
    default: '10',
    help: 'PostgreSQL connections per process',
    parse: (value, variable) => wholeNumber(value, variable, 1),
  },
  databasePoolTimeoutMs: {
    variable: 'DATABASE_POOL_TIMEOUT_MS',
    default: '5000',
    help: 'how long a request waits for a PostgreSQL connection before it gets a 503',
    parse: (value, variable) => wholeNumber(value, variable, 1),
  },
  databaseIdleTimeoutMs: {
    variable: 'DATABASE_IDLE_TIMEOUT_MS',
    default: '30000',
    help: 'an idle PostgreSQL connection is closed after this long',
    parse: wholeNumber,
  },
  databaseStatementTimeoutMs: {
    variable: 'DATABASE_STATEMENT_TIMEOUT_MS',
    default: '15000',
    help: 'PostgreSQL cancels a statement that runs longer; 0 = never',
    parse: wholeNumber,
  },
  cacheBytes: {
    variable: 'CACHE_MB',
    default: '48',
    help: 'memory for the events, runs, sessions and keys read before; 0 = no cache',
    parse: (value, variable) => wholeNumber(value, variable) * MIB,
  },
  keyCacheMs: {
    variable: 'KEY_CACHE_SECONDS',
    default: '5',
    help:
      "how long a key lookup, a session's instance and an event read by id are kept: a revoked key works, and a " +
      'pruned session or event answers, this long at most',
    parse: (value, variable) => wholeNumber(value, variable) * 1000,
  },
  streamsPerKey: {
    variable: 'STREAMS_PER_KEY',
    default: '100',
    help:
      'live-tail streams one API key may hold open at once: over every process on one PostgreSQL database, ' +
      'per process on SQLite',
    parse: (value, variable) => wholeNumber(value, variable, 1),
  },
  shedLoadAfterMs: {
    variable: 'SHED_LOAD_AFTER_MS',
    default: '200',
    help:
      'new requests get 503 + Retry-After while the event loop lags, or a request has waited for a PostgreSQL ' +
      'connection, more than this; off turns it off',
    parse: (value, variable) => (OFF.test(value) ? false : wholeNumber(value, variable, 10)),
  },
  shedLoadInFlight: {
    variable: 'SHED_LOAD_IN_FLIGHT',
    default: '32',
    help:
      'new requests get 503 + Retry-After while this many are being answered (a stream counts while it opens); ' +
      'off turns it off',
    parse: (value, variable) => (OFF.test(value) ? false : wholeNumber(value, variable, 1)),
  },
  eventRetentionMs: {
    variable: 'EVENT_RETENTION',
    default: '30d',
    help:
      'how long events are kept (30d, 12h, 90m, 45s; off keeps everything), unless an operator gave an instance ' +
      'its own; older events and idle sessions are pruned every few minutes',
    parse: (value, variable) => {
      try {
        return parseRetention(value)
      } catch (error) {
        throw new ConfigError(`${variable} ${(error as Error).message}`)
      }
    },
  },
  applicationName: {
    variable: 'PGAPPNAME',
    default: 'session-events-api',
    help: 'PostgreSQL application_name of the connections',
    parse: text,
  },
}

/** Every setting from the environment: an unset or empty variable is its default. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = {}
  for (const [key, setting] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const given = env[setting.variable]
    const value = given === undefined || given === '' ? defaultText(setting) : given
    config[key] = setting.parse(value, setting.variable)
  }
  return config as unknown as Config
}

/** The settings given (an embedder's, a test's), each one not given at its default. */
export function defaultConfig(settings: Partial<Config> = {}): Config {
  const given = Object.entries(settings).filter(([, value]) => value !== undefined)
  return { ...loadConfig({}), ...Object.fromEntries(given) }
}

function defaultText(setting: Setting<unknown>): string {
  return typeof setting.default === 'function' ? setting.default() : setting.default
}

/** The settings as --help lists them: the variable, what it does, its default; 100 columns wide. */
export function settingsHelp(): string {
  const settings = (Object.values(SETTINGS) as Setting<unknown>[]).filter((setting) => setting.help !== undefined)
  const indent = 4 + Math.max(...settings.map((setting) => setting.variable.length))
  const lines: string[] = []
  for (const setting of settings) {
    const shown = defaultText(setting)
    const words = [...setting.help!.split(' '), ...(shown === '' ? [] : [`(default ${shown})`])]
    let line = `  ${setting.variable}`.padEnd(indent)
    for (const word of words) {
      if (line.length + word.length > 100 && line.length > indent) {
        lines.push(line.trimEnd())
        line = ' '.repeat(indent)
      }
      line += `${word} `
    }
    lines.push(line.trimEnd())
  }
  return lines.join('\n')
}

/**
 * What DATABASE_URL names: `sqlite:PATH`, `sqlite::memory:`, or `postgres://…`; unset, the
 * embedded store in DEFAULT_SQLITE_PATH under `cwd`.
 */
export function parseDatabaseUrl(
  url: string | undefined,
  cwd: string = process.cwd(),
): { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string } {
  if (url === undefined || url === '') return { kind: 'sqlite', path: resolve(cwd, DEFAULT_SQLITE_PATH) }
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path === '')
      throw new ConfigError('DATABASE_URL "sqlite:" needs a path, such as sqlite:./data/events.db or sqlite::memory:')
    return { kind: 'sqlite', path: path === ':memory:' ? ':memory:' : resolve(cwd, path) }
  }
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: 'postgres', url }
  throw new ConfigError(
    `DATABASE_URL must start with sqlite: or postgres:// (got "${url.replace(/\/\/[^@]*@/, '//***@')}")`,
  )
}
