import { randomBytes } from 'node:crypto'

// Ids are `<prefix>_<22 characters>`: 9 base-36 characters of the creation time in milliseconds,
// then 13 random base-62 characters, so ids of one kind sort by creation time. Within one
// millisecond the random part counts up from the previous id (as ULIDs do), so ids that one
// process makes in one millisecond keep the order they were made in.

export const ID_PREFIXES = {
  session: 'ses',
  sessionEvent: 'sev',
  serverRun: 'srr',
  serverRunError: 'sre',
  server: 'srv',
  serverVersion: 'sve',
  serverDeployment: 'svd',
  serverSession: 'srs',
  instance: 'ins',
  apiKey: 'apk',
  request: 'req',
} as const
export type IdKind = keyof typeof ID_PREFIXES

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
const TIME_LENGTH = 9
const RANDOM_LENGTH = 13

/** Random base-62 characters, from a pooled buffer so that ids stay cheap on the hot path. */
let pool = randomBytes(4096)
let poolAt = 0
export function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    if (poolAt >= pool.length) {
      pool = randomBytes(4096)
      poolAt = 0
    }
    const byte = pool[poolAt++]!
    // 248 = 62 * 4: rejecting the rest keeps every character equally likely.
    if (byte < 248) out += BASE62[byte % 62]
  }
  return out
}

const last = new Map<string, { time: number; random: number[] }>()

function increment(digits: number[]): boolean {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 61) {
      digits[i]! += 1
      return true
    }
    digits[i] = 0
  }
  return false
}

/** A new id of the given kind, made at `now` (milliseconds since the epoch). */
export function newId(kind: IdKind, now: number = Date.now()): string {
  const prefix = ID_PREFIXES[kind]
  const previous = last.get(prefix)
  let time = now
  let random: number[]
  if (previous && previous.time === time) {
    // The same millisecond: count up from the last id.
    random = previous.random.slice()
    if (!increment(random)) {
      time += 1
      random = [...randomBase62(RANDOM_LENGTH)].map((c) => BASE62.indexOf(c))
    }
  } else {
    random = [...randomBase62(RANDOM_LENGTH)].map((c) => BASE62.indexOf(c))
  }
  last.set(prefix, { time, random })
  return `${prefix}_${time.toString(36).padStart(TIME_LENGTH, '0')}${random.map((d) => BASE62[d]).join('')}`
}

/** The creation time encoded in an id. */
export function idTime(id: string): Date {
  const underscore = id.indexOf('_')
  return new Date(parseInt(id.slice(underscore + 1, underscore + 1 + TIME_LENGTH), 36))
}

const ID_PATTERNS = new Map<IdKind, RegExp>()
/** Whether `value` is an id of the given kind. */
export function isId(kind: IdKind, value: string): boolean {
  let pattern = ID_PATTERNS.get(kind)
  if (!pattern) {
    pattern = new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-z]{${TIME_LENGTH}}[0-9A-Za-z]{${RANDOM_LENGTH}}$`)
    ID_PATTERNS.set(kind, pattern)
  }
  return pattern.test(value)
}

/** Base-62 of bytes, read as one big-endian number (Metorial's cursor encoding). */
export function bytesToBase62(bytes: Uint8Array): string {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  if (n === 0n) return '0'
  let out = ''
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out
    n /= 62n
  }
  return out
}

/** The inverse of bytesToBase62; null when `text` is not base-62. */
export function base62ToBytes(text: string): Uint8Array | null {
  let n = 0n
  for (const ch of text) {
    const d = BASE62.indexOf(ch)
    if (d < 0) return null
    n = n * 62n + BigInt(d)
  }
  const bytes: number[] = []
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn))
    n >>= 8n
  }
  return Uint8Array.from(bytes)
}
