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

/**
 * Base-62 of bytes, read as one big-endian number (Metorial's cursor encoding). Every page that
 * has a next or previous page encodes a cursor, so this is long division in small integers
 * rather than BigInt arithmetic, which costs several times more for the same digits: the number
 * is held in 16-bit limbs and each pass divides it by 62², giving two digits.
 */
export function bytesToBase62(bytes: Uint8Array): string {
  const limbs = new Int32Array((bytes.length + 1) >> 1)
  const odd = bytes.length & 1
  for (let i = 0; i < bytes.length; i++) {
    const j = (i + odd) >> 1
    limbs[j] = (limbs[j]! << 8) | bytes[i]!
  }
  let start = 0
  while (start < limbs.length && limbs[start] === 0) start++
  if (start === limbs.length) return '0'
  const digits: number[] = [] // lowest first
  while (start < limbs.length) {
    let remainder = 0
    for (let i = start; i < limbs.length; i++) {
      const value = remainder * 65536 + limbs[i]! // below 62² × 2¹⁶ < 2³¹
      const quotient = (value / 3844) | 0
      limbs[i] = quotient
      remainder = value - quotient * 3844
    }
    digits.push(remainder % 62, (remainder / 62) | 0)
    while (start < limbs.length && limbs[start] === 0) start++
  }
  let top = digits.length - 1
  while (top > 0 && digits[top] === 0) top--
  let out = ''
  for (let i = top; i >= 0; i--) out += BASE62[digits[i]!]
  return out
}

/** The inverse of bytesToBase62; null when `text` is not base-62. */
export function base62ToBytes(text: string): Uint8Array | null {
  // The number in bytes, lowest first: each digit multiplies it by 62 and adds itself.
  const bytes: number[] = []
  for (const ch of text) {
    const digit = BASE62.indexOf(ch)
    if (digit < 0) return null
    let carry = digit
    for (let i = 0; i < bytes.length; i++) {
      const value = bytes[i]! * 62 + carry
      bytes[i] = value & 0xff
      carry = value >> 8
    }
    for (; carry > 0; carry >>= 8) bytes.push(carry & 0xff)
  }
  return Uint8Array.from(bytes.reverse())
}
