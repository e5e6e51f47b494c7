import { createApp, loadConfig, openStore, serve } from '@session-events/api'
import type { StoreReader } from '@session-events/api/internal/store/types.js'

// A diagnostic, not a peer: the API exactly as it runs, but with the reads of its store answered
// from memory after the first time. What it costs is everything but the store (HTTP, Hono,
// validation, authentication, serialisation, logging), so the API's cost minus this one is the
// store's. Usage: DATABASE_URL=sqlite:… node api-memoised-store.js FIXTURES PORT

const READS = new Set<PropertyKey>(['findApiKey', 'sessionInstance', 'listEventIds', 'sessionEvents', 'serverRuns'])

const real = await openStore(process.env.DATABASE_URL)
const answers = new Map<string, unknown>()
const reader = new Proxy(real.reader, {
  get(target, property, receiver) {
    const value: unknown = Reflect.get(target, property, receiver)
    if (typeof value !== 'function') return value
    if (!READS.has(property)) return value.bind(target)
    return (...args: unknown[]) => {
      const key = `${String(property)} ${JSON.stringify(args)}`
      if (!answers.has(key)) answers.set(key, value.apply(target, args))
      return answers.get(key)
    }
  },
}) as StoreReader
const store = new Proxy(real, {
  get: (target, property) => (property === 'reader' ? reader : Reflect.get(target, property)),
})

const app = createApp({ store, config: { ...loadConfig(), rateLimit: false, shedLoadAfterMs: false } })
await serve({ app, host: '127.0.0.1', port: Number(process.argv[3]) })
