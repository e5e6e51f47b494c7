import { timingSafeEqual } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from './env.js'
import { errors } from './errors.js'
import { hashSecret } from './store/sql-store.js'
import type { ApiKeyRecord, Store } from './store/types.js'

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i
const READ_SESSIONS = 'sessions:read'

/**
 * Authentication: `Authorization: Bearer <secret key>`. Keys are stored as sha256 hashes and
 * looked up by hash; the stored hash is compared in constant time. Lookups are cached for a few
 * seconds (a revocation takes effect within `cacheSeconds`), misses included, so that a flood of
 * bad keys does not become a flood of queries.
 */
export function authenticate(store: Store, options: { cacheSeconds?: number } = {}): MiddlewareHandler<AppEnv> {
  const ttl = (options.cacheSeconds ?? 5) * 1000
  const cache = new LRUCache<string, { key: ApiKeyRecord | null }>({ max: 10_000, ttl: Math.max(ttl, 1) })
  return async (c, next) => {
    const header = c.req.header('authorization')
    if (header === undefined || header.trim() === '') throw errors.missingAuthorization()
    const match = BEARER.exec(header)
    if (!match || match[1]!.length > 512) throw errors.malformedAuthorization()
    const hash = hashSecret(match[1]!)
    let entry = ttl > 0 ? cache.get(hash) : undefined
    if (!entry) {
      entry = { key: (await store.findApiKey(hash)) ?? null }
      if (ttl > 0) cache.set(hash, entry)
    }
    const key = entry.key
    if (!key || !timingSafeEqual(Buffer.from(key.secret_hash, 'hex'), Buffer.from(hash, 'hex'))) throw errors.invalidKey()
    if (key.revoked_at !== null || (key.expires_at !== null && key.expires_at <= new Date().toISOString())) {
      throw errors.revokedKey()
    }
    c.set('instanceId', key.instance_id)
    c.set('apiKeyId', key.id)
    c.set('scopes', key.scopes)
    await next()
  }
}

/** Authorisation: only keys with the `sessions:read` scope (secret keys) read sessions. */
export function requireScope(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.get('scopes').split(' ').includes(READ_SESSIONS)) throw errors.forbidden()
    await next()
  }
}
