#!/usr/bin/env node
import pino from 'pino'
import { createApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { seed } from './seed.js'
import { serve } from './server.js'
import { openStore } from './store/open.js'
import { hashSecret } from './store/writer.js'

const HELP = `session-events-api: serves the Session Events API.

Usage: npm start            (from the repository root: builds what it needs, then serves)
       node apps/api/dist/main.js [--help]

Settings, from the environment:
  HOST                    address to listen on (default 127.0.0.1)
  PORT                    port to listen on (default 3000; 0 picks a free one)
  DATABASE_URL            the store: unset = embedded SQLite in ./data/session-events.db,
                          sqlite:PATH = another SQLite file, sqlite::memory: = in memory,
                          postgres://USER@HOST:PORT/DB = PostgreSQL
  SEED                    seed demo data into an empty store (default true; false turns it off)
  DEMO_API_KEY            the demo instance's secret key (default ${'metorial_sk_demo000…'})
  RATE_LIMIT_PER_MINUTE   requests per API key per minute (default 1200; off turns it off)
  DATABASE_POOL_MAX, DATABASE_POOL_TIMEOUT_MS, DATABASE_IDLE_TIMEOUT_MS,
  DATABASE_STATEMENT_TIMEOUT_MS
                          PostgreSQL pool: connections (10), wait for one before a 503 (5000),
                          idle close (30000), statement timeout (15000; 0 = none)
  LOG_LEVEL               fatal, error, warn, info (default), debug, trace or silent
  CACHE_MB                memory for events, runs, sessions and keys read before (default 48; 0 = none)
  KEY_CACHE_SECONDS       how long a key lookup is cached: a revoked key works this long at most (default 5)
  SHED_LOAD_AFTER_MS      new requests get 503 + Retry-After while the event loop lags more than
                          this (default 200; off turns it off)
  STREAMS_PER_KEY         live-tail streams one API key may hold open at once, per process (default 100)
  PGAPPNAME               PostgreSQL application_name of the connections (default session-events-api)

Endpoints: the API (see /docs), /openapi.json, /healthz, /readyz.
SIGTERM or SIGINT stops it gracefully: streams end (their clients reconnect elsewhere),
requests in flight are answered, then it exits 0.`

async function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(HELP)
    return
  }
  const config = loadConfig()
  // Log lines are written asynchronously, in chunks (pino's recommendation for speed), and flushed
  // when the process stops, however it stops.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 })
  const logger = pino({ level: config.logLevel }, destination)
  process.on('exit', () => {
    try {
      destination.flushSync()
    } catch {
      // Not open yet: nothing was written to flush.
    }
  })
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception')
    process.exit(1)
  })
  const store = await openStore(config.databaseUrl, {
    cwd: config.cwd,
    pool: config.pool,
    applicationName: config.applicationName,
  })

  if (config.seed && (await store.isEmpty())) {
    logger.info('empty store: seeding demo data')
    await seed(store, { secretKey: config.demoApiKey })
  }

  // Aborted on SIGTERM: open streams end first, so that their clients reconnect to another process.
  const shutdown = new AbortController()
  const app = createApp({
    store,
    logger,
    shutdown: shutdown.signal,
    streamsPerKey: config.streamsPerKey,
    loadShedding: config.shedLoadAfterMs !== false && { maxEventLoopDelayMs: config.shedLoadAfterMs },
    rateLimit: config.rateLimitPerMinute === false ? false : { points: config.rateLimitPerMinute, durationSeconds: 60 },
    cache: config.cacheBytes > 0 && { maxBytes: config.cacheBytes, keyTtlMs: config.keyCacheMs },
  })
  const running = await serve({ app, host: config.host, port: config.port })
  logger.info({ url: running.url, store: store.dialect }, 'listening')

  const demoKey = await store.reader.findApiKey(hashSecret(config.demoApiKey))
  const demoSession = demoKey && (await store.firstSession(demoKey.instance_id))
  console.log(`\nSession Events API on ${running.url} (docs: ${running.url}/docs)`)
  if (demoSession) {
    console.log('Try it:\n')
    console.log(
      `  curl -H 'Authorization: Bearer ${config.demoApiKey}' '${running.url}/sessions/${demoSession}/events?limit=2'\n`,
    )
  }

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping: ending streams, finishing requests in flight')
    shutdown.abort()
    await running.close()
    await store.close()
    logger.info('stopped')
    process.exit(0)
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(`session-events-api: bad setting: ${error.message}`)
  else console.error(`session-events-api: could not start: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
