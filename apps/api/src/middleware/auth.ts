import { timingSafeEqual } from 'node:crypto'
import type { MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { errors } from '../errors.js'
import { hashSecret } from '../api-keys.js'
import type { StoreReader } from '../store/types.js'

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i

/**
 * Authentication: `Authorization: Bearer <secret key>`. Keys are stored as sha256 hashes and
 * looked up by hash (the caching reader keeps lookups for a few seconds); the stored hash is
 * compared in constant time. Sets the key's instance, id and scopes on the context.
 */
export function authenticate(reader: Pick<StoreReader, 'findApiKey'>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization')
    if (header === undefined || header.trim() === '') throw errors.missingAuthorization()
    const match = BEARER.exec(header)
    if (!match || match[1]!.length > 512) throw errors.malformedAuthorization()
    const hash = hashSecret(match[1]!)
    const key = await reader.findApiKey(hash)
    if (!key || !timingSafeEqual(Buffer.from(key.secret_hash, 'hex'), Buffer.from(hash, 'hex')))
      throw errors.invalidKey()
    if (key.revoked_at !== null || (key.expires_at !== null && key.expires_at <= new Date().toISOString())) {
      throw errors.revokedKey()
    }
    c.set('instanceId', key.instance_id)
    c.set('apiKeyId', key.id)
    c.set('scopes', key.scopes)
    await next()
  }
}

/** Authorisation: the key must have `scope` (secret keys read and write sessions; publishable keys do neither). */
export function requireScope(scope: 'sessions:read' | 'sessions:write'): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (!c.get('scopes').split(' ').includes(scope)) throw errors.forbidden()
    await next()
  }
}
