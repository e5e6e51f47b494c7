#!/usr/bin/env node
import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import { ConfigError, DEFAULT_SQLITE_PATH, loadConfig } from './config.js'
import { SEED_DEFAULTS, seed } from './seed.js'
import { openStore } from './store/open.js'

const HELP = `Adds demo data to the store that DATABASE_URL names (default: ./${DEFAULT_SQLITE_PATH}).

Usage: npm run seed -- [--sessions N] [--events N] [--instances N] [--json]

  --sessions N    sessions per instance (default ${SEED_DEFAULTS.sessions})
  --events N      server_logs events per session (default ${SEED_DEFAULTS.events})
  --instances N   instances, each with a secret, a publishable and a revoked key (default ${SEED_DEFAULTS.instances})
  --json          print only the summary, as one line of JSON
  --help          this text`

function count(name: keyof typeof SEED_DEFAULTS, value: string | undefined): number {
  if (value === undefined) return SEED_DEFAULTS[name]
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a whole number (got "${value}")`)
  return Number(value)
}

async function main() {
  const { values } = parseArgs({
    options: {
      sessions: { type: 'string' },
      events: { type: 'string' },
      instances: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(HELP)
    return
  }
  const sessions = count('sessions', values.sessions)
  const events = count('events', values.events)
  const instances = count('instances', values.instances)

  const config = loadConfig()
  const store = await openStore(config.databaseUrl, config)
  const bar = values.json
    ? undefined
    : new cliProgress.SingleBar(
        { format: 'seeding [{bar}] {percentage}% | {value}/{total} events | {rate} events/s', stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
  const started = performance.now()
  bar?.start(instances * sessions * events, 0, { rate: 0 })
  const summary = await seed(store, {
    sessions,
    events,
    instances,
    onProgress: (written) =>
      bar?.update(written, { rate: Math.round(written / ((performance.now() - started) / 1000)) }),
  })
  bar?.stop()
  await store.close()

  if (values.json) {
    console.log(JSON.stringify(summary))
    return
  }
  const seconds = (performance.now() - started) / 1000
  const total = summary.instances.reduce((n, i) => n + i.sessions.reduce((m, s) => m + s.events, 0), 0)
  console.log(`Seeded ${total} events in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} events/s).`)
  for (const instance of summary.instances) {
    console.log(`\ninstance ${instance.id}`)
    console.log(`  secret key       ${instance.secret_key}`)
    console.log(`  publishable key  ${instance.publishable_key}`)
    console.log(`  revoked key      ${instance.revoked_key}`)
    for (const session of instance.sessions) console.log(`  session ${session.id} (${session.events} events)`)
  }
}

main().catch((error: unknown) => {
  console.error(
    `seed: ${error instanceof ConfigError ? 'bad setting: ' : ''}${error instanceof Error ? error.message : String(error)}`,
  )
  process.exit(1)
})
