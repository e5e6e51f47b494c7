import { createHash } from 'node:crypto'
import { randomBase62 } from './ids.js'

// API keys, as authentication (middleware/auth.ts) and the operators' writes (store/admin-writer.ts)
// both see them: a secret is stored and looked up as its sha256, never as itself.

/** What the store keeps of a secret, and looks a key up by: its sha256, hex. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/** A new secret of a kind of key: `metorial_sk_…` (secret) or `metorial_pk_…` (publishable). */
export function newSecret(kind: 'secret' | 'publishable'): string {
  return `metorial_${kind === 'secret' ? 'sk' : 'pk'}_${randomBase62(40)}`
}

/** The scopes of a secret key: it reads and writes its instance's sessions. A publishable key has none. */
export const SECRET_KEY_SCOPES = 'sessions:read sessions:write'
