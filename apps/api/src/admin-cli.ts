#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ConfigError, DEFAULT_SQLITE_PATH, loadConfig, SETTINGS } from './config.js'
import { openStore } from './store/open.js'
import { Lease } from './store/prune-lease.js'
import { prune } from './store/prune.js'
import { formatRetention, parseRetention, RetentionError, setInstanceRetention } from './store/retention.js'

// Operators' commands, on the store that DATABASE_URL names: instances and their keys (through
// the same writer as the API and the seed), an instance's retention, and a prune now (the same
// prune as the server's, under the same lease).

const HELP = `Manages the store that DATABASE_URL names (default: ./${DEFAULT_SQLITE_PATH}).

Usage: npm run -s admin -- instances create --name NAME [--json]
       npm run -s admin -- instances set-retention INSTANCE_ID DURATION|default [--json]
       npm run -s admin -- keys revoke KEY
       npm run -s admin -- prune [--older-than DURATION] [--json]

  instances create          a new instance with a secret and a publishable key; the secret is
                            shown once, here, and stored only as its hash. --json prints one line:
                            {"instance_id","secret_key","publishable_key"}
  instances set-retention   how long this instance's events are kept, in place of EVENT_RETENTION
                            (${String(SETTINGS.eventRetentionMs.default)} by default): a duration such as 30d, 12h, 90m or 45s, or off to
                            keep everything; default: back to EVENT_RETENTION. The next prune
                            applies it; no other instance is touched. --json prints one line:
                            {"instance_id","event_retention"} (null: EVENT_RETENTION); exits 1
                            when there is no such instance
  keys revoke KEY           revokes the key with this secret (it stops working within the API's
                            key cache time, KEY_CACHE_SECONDS, ${String(SETTINGS.keyCacheMs.default)} by default); exits 1 when
                            no such live key exists
  prune                     prunes now, as the server does every few minutes: the events older
                            than their instance's retention, the sessions left with no events and
                            nothing done in them within it (with their runs), the Idempotency-Key
                            answers older than a day. --older-than DURATION removes, besides,
                            every event older than that, whatever the retention. Waits while
                            another process prunes. --json prints one line:
                            {"events_deleted","sessions_deleted","idempotency_keys_deleted"}
  --help                    this text`

const COMMANDS = ['instances create', 'instances set-retention', 'keys revoke', 'prune']

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      'older-than': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const [noun, verb, argument, value] = positionals
  if (values.help || noun === undefined) {
    console.log(HELP)
    return values.help ? 0 : 2
  }
  const command = noun === 'prune' ? noun : `${noun} ${verb ?? ''}`.trim()
  if (!COMMANDS.includes(command) || (command === 'prune' && verb !== undefined)) {
    console.error(`admin: unknown command "${positionals.join(' ')}"\n\n${HELP}`)
    return 2
  }
  if (command === 'instances create' && !values.name?.trim()) {
    console.error('admin: instances create needs --name NAME')
    return 2
  }
  if (command === 'keys revoke' && !argument) {
    console.error('admin: keys revoke needs the KEY to revoke')
    return 2
  }
  // A duration is checked before the store is opened: a typo changes nothing.
  let retentionMs: number | null = null
  let olderThanMs: number | undefined
  try {
    if (command === 'instances set-retention') {
      if (!argument || !value) {
        console.error('admin: instances set-retention needs INSTANCE_ID and DURATION (or default)')
        return 2
      }
      retentionMs = value === 'default' ? null : parseRetention(value)
    }
    if (command === 'prune' && values['older-than'] !== undefined) {
      olderThanMs = parseRetention(values['older-than'])
      if (olderThanMs === Infinity) throw new RetentionError('--older-than off would remove nothing: leave it out')
    }
  } catch (error) {
    if (!(error instanceof RetentionError)) throw error
    const what = command === 'prune' ? '--older-than' : 'DURATION'
    console.error(`admin: ${what} ${error.message}`)
    return 2
  }

  const config = loadConfig()
  const store = await openStore(config.databaseUrl, config)
  try {
    if (command === 'instances create') {
      const instance = await store.admin.createInstance({ name: values.name!.trim() })
      const secret = await store.admin.createApiKey({ instanceId: instance.id, kind: 'secret' })
      const publishable = await store.admin.createApiKey({ instanceId: instance.id, kind: 'publishable' })
      if (values.json) {
        console.log(
          JSON.stringify({ instance_id: instance.id, secret_key: secret.secret, publishable_key: publishable.secret }),
        )
      } else {
        console.log(`instance ${instance.id} (${values.name!.trim()})`)
        console.log(`  secret key       ${secret.secret}`)
        console.log(`  publishable key  ${publishable.secret}`)
        console.log('The secret key is shown only now: keep it.')
      }
      return 0
    }
    if (command === 'instances set-retention') {
      if (!(await setInstanceRetention(store.db, argument!, retentionMs))) {
        console.error(`admin: no instance ${argument}`)
        return 1
      }
      const shown = retentionMs === null ? null : formatRetention(retentionMs)
      if (values.json) console.log(JSON.stringify({ instance_id: argument, event_retention: shown }))
      else {
        const kept =
          shown === null
            ? `as EVENT_RETENTION says (${formatRetention(config.eventRetentionMs)} here)`
            : shown === 'off'
              ? 'for ever (off)'
              : `for ${shown}`
        console.log(`instance ${argument} keeps its events ${kept}; the next prune applies it`)
      }
      return 0
    }
    if (command === 'prune') {
      const lease = new Lease(store.db)
      let told = false
      while (!(await lease.take())) {
        if (!told) console.error('admin: another process is pruning; waiting for it to finish')
        told = true
        await new Promise((resolve) => setTimeout(resolve, 1000))
      }
      const started = performance.now()
      let ran = false
      try {
        const result = await prune(store, {
          defaultRetentionMs: config.eventRetentionMs,
          ...(olderThanMs !== undefined && { olderThanMs }),
          step: () => lease.renew(),
        })
        ran = true
        if (values.json) console.log(JSON.stringify(result))
        else
          console.log(
            `pruned ${result.events_deleted} events, ${result.sessions_deleted} sessions and ` +
              `${result.idempotency_keys_deleted} Idempotency-Key answers in ${((performance.now() - started) / 1000).toFixed(1)} s`,
          )
      } finally {
        await lease.give({ ran })
      }
      return 0
    }
    const revoked = await store.admin.revokeApiKey(argument!)
    if (!revoked) {
      console.error('admin: no live key with this secret (unknown, or revoked before)')
      return 1
    }
    console.log('revoked')
    return 0
  } finally {
    await store.close()
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(
      `admin: ${error instanceof ConfigError ? 'bad setting: ' : ''}${error instanceof Error ? error.message : String(error)}`,
    )
    process.exit(1)
  },
)
