import { parseDatabaseUrl } from './store/open.js'
import type { RateLimitOptions } from './rate-limit.js'

// The settings of the server, all from the environment. A bad one stops the server at start
// with a message that says which and why.

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export interface Config {
  host: string
  port: number
  databaseUrl: string | undefined
  seed: boolean
  demoApiKey: string
  rateLimit: false | RateLimitOptions
  logLevel: string
}

export const DEFAULT_DEMO_API_KEY = 'metorial_sk_demo0000000000000000000000000000000000'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function bool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback
  if (/^(1|true|yes|on)$/i.test(value)) return true
  if (/^(0|false|no|off)$/i.test(value)) return false
  throw new ConfigError(`${name} must be true or false (got "${value}")`)
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const host = env.HOST || '127.0.0.1'
  const portText = env.PORT || '3000'
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
    throw new ConfigError(`PORT must be a whole number from 0 to 65535 (got "${portText}")`)
  }
  try {
    parseDatabaseUrl(env.DATABASE_URL)
  } catch (error) {
    throw new ConfigError((error as Error).message)
  }
  const demoApiKey = env.DEMO_API_KEY || DEFAULT_DEMO_API_KEY
  if (!/^metorial_sk_[0-9A-Za-z_]{8,200}$/.test(demoApiKey)) {
    throw new ConfigError('DEMO_API_KEY must look like a secret key: metorial_sk_ followed by at least 8 letters or digits')
  }
  let rateLimit: Config['rateLimit'] = { points: 1200, durationSeconds: 60 }
  const perMinute = env.RATE_LIMIT_PER_MINUTE
  if (perMinute !== undefined && perMinute !== '') {
    if (/^(0|off|false)$/i.test(perMinute)) rateLimit = false
    else if (/^\d+$/.test(perMinute)) rateLimit = { points: Number(perMinute), durationSeconds: 60 }
    else throw new ConfigError(`RATE_LIMIT_PER_MINUTE must be a whole number, or off (got "${perMinute}")`)
  }
  const logLevel = env.LOG_LEVEL || 'info'
  if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`)
  return {
    host,
    port: Number(portText),
    databaseUrl: env.DATABASE_URL || undefined,
    seed: bool('SEED', env.SEED, true),
    demoApiKey,
    rateLimit,
    logLevel,
  }
}
