#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { ConfigError, DEFAULT_SQLITE_PATH, loadConfig, SETTINGS } from './config.js'
import { openStore } from './store/open.js'

// Operators' commands: instances and their keys, written to the store that DATABASE_URL names,
// through the same writer as the API and the seed.

const HELP = `Manages instances and API keys in the store that DATABASE_URL names (default: ./${DEFAULT_SQLITE_PATH}).

Usage: npm run -s admin -- instances create --name NAME [--json]
       npm run -s admin -- keys revoke KEY

  instances create   a new instance with a secret and a publishable key; the secret is shown
                     once, here, and stored only as its hash. --json prints one line:
                     {"instance_id","secret_key","publishable_key"}
  keys revoke KEY    revokes the key with this secret (it stops working within the API's key
                     cache time, KEY_CACHE_SECONDS, ${SETTINGS.keyCacheMs.default} by default); exits 1 when no
                     such live key exists
  --help             this text`

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const [noun, verb, argument] = positionals
  if (values.help || noun === undefined) {
    console.log(HELP)
    return values.help ? 0 : 2
  }
  const command = `${noun} ${verb ?? ''}`.trim()
  if (command !== 'instances create' && command !== 'keys revoke') {
    console.error(`admin: unknown command "${command}"\n\n${HELP}`)
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
