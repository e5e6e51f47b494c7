#!/usr/bin/env node
import pino from 'pino'
import { createApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { seed } from './seed.js'
import { serve } from './server.js'
import { openStore } from './store/open.js'
import { hashSecret } from './store/sql-store.js'

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

Endpoints: the API (see /docs), /openapi.json, /healthz, /readyz.
SIGTERM or SIGINT stops it gracefully: requests in flight are answered, then it exits 0.`

async function main() {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(HELP)
    return
  }
  const config = loadConfig()
  const logger = pino({ level: config.logLevel })
  const store = await openStore(config.databaseUrl)

  if (config.seed && (await store.isEmpty())) {
    logger.info('empty store: seeding demo data')
    await seed(store, { secretKey: config.demoApiKey })
  }

  const app = createApp({ store, rateLimit: config.rateLimit, logger })
  const running = await serve({ app, host: config.host, port: config.port })
  logger.info({ url: running.url, store: store.dialect }, 'listening')

  const demoKey = await store.findApiKey(hashSecret(config.demoApiKey))
  const demoSession = demoKey && (await store.firstSession(demoKey.instance_id))
  console.log(`\nSession Events API on ${running.url} (docs: ${running.url}/docs)`)
  if (demoSession) {
    console.log('Try it:\n')
    console.log(`  curl -H 'Authorization: Bearer ${config.demoApiKey}' '${running.url}/sessions/${demoSession}/events?limit=2'\n`)
  }

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping: finishing requests in flight')
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
