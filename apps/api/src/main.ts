#!/usr/bin/env node
import pino from 'pino'
import { createApp } from './app.js'
import { ConfigError, loadConfig, settingsHelp } from './config.js'
import { seed } from './seed.js'
import { serve } from './server.js'
import { openStore } from './store/open.js'
import { schedulePruning } from './store/prune-schedule.js'
import { hashSecret } from './api-keys.js'

const HELP = `session-events-api: serves the Session Events API.

Usage: npm start            (from the repository root: builds what it needs, then serves)
       node apps/api/dist/main.js [--help]

Settings, from the environment (an unset or empty one is its default):
${settingsHelp()}

Endpoints: the API (see /docs), the page that watches a session live (/), /openapi.json,
/healthz, /readyz.
Retention: every few minutes one of the processes over the store prunes the events older than
EVENT_RETENTION (or than their instance's own: npm run -s admin -- instances set-retention),
the sessions left with no events and idle that long (a GET of one is then 404), and the
Idempotency-Key answers older than a day. after=, a cursor or Last-Event-ID naming a pruned
event goes on with the next live one. npm run -s admin -- prune prunes now; docs/scaling.md
says how to size it.
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
  const store = await openStore(config.databaseUrl, config)

  if (config.seed && (await store.isEmpty())) {
    logger.info('empty store: seeding demo data')
    await seed(store, { secretKey: config.demoApiKey })
  }

  // Aborted on SIGTERM: open streams end first, so that their clients reconnect to another process.
  const shutdown = new AbortController()
  const app = createApp({ store, config, logger, shutdown: shutdown.signal })
  const running = await serve({ app, host: config.host, port: config.port })
  logger.info({ url: running.url, store: store.dialect }, 'listening')
  // Retention: every few minutes one process of those over the store prunes (store/prune-schedule.ts).
  const pruning = schedulePruning({ store, defaultRetentionMs: config.eventRetentionMs, logger })

  const demoKey = await store.reader.findApiKey(hashSecret(config.demoApiKey))
  const demoSession = demoKey && (await store.firstSession(demoKey.instance_id))
  console.log(`\nSession Events API on ${running.url} (docs: ${running.url}/docs)`)
  if (demoSession) {
    console.log('Try it:\n')
    console.log(
      `  curl -H 'Authorization: Bearer ${config.demoApiKey}' '${running.url}/sessions/${demoSession}/events?limit=2'\n`,
    )
    // The page (apps/web) asks for the key itself: a key never goes into a URL.
    console.log(
      `Or watch it live in a browser (it asks for the key above):\n\n  ${running.url}/?session=${demoSession}\n`,
    )
  } else {
    console.log(`Watch a session live in a browser: ${running.url}/\n`)
  }

  let stopping = false
  const stop = async (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping: ending streams, finishing requests in flight')
    shutdown.abort()
    await running.close()
    await pruning.stop()
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
