import { randomBytes } from 'node:crypto'
import { SessionEventIdSchema, SessionIdSchema } from '@session-events/server-stubs'
import * as specValues from '@session-events/server-stubs/values'

// Ids are a prefix, an underscore, base-36 characters of the creation time in milliseconds, then
// random base-62 characters, so ids of one kind sort by creation time. The prefix and the
// lengths are the spec's: each kind's are read from its pattern (specValues). Where ids must
// also keep an order within one millisecond (the events of a session), the writer makes each
// one above the last with nextId (store/event-log.ts).

interface IdFormat {
  prefix: string
  /** Base-36 characters of the creation time (0: none). */
  timeLength: number
  /** Random base-62 characters after the time. */
  randomLength: number
}

/**
 * The format a pattern of the spec gives: `^ses_[0-9a-z]{9}[0-9A-Za-z]{13}$`, a prefix, the
 * time, then random characters; or `^req_[0-9A-Za-z]{22}$` (request ids), random characters only.
 */
function idFormat(pattern: string): IdFormat {
  const timed = /^\^([a-z]+)_\[0-9a-z\]\{(\d+)\}\[0-9A-Za-z\]\{(\d+)\}\$$/.exec(pattern)
  if (timed) return { prefix: timed[1]!, timeLength: Number(timed[2]), randomLength: Number(timed[3]) }
  const random = /^\^([a-z]+)_\[0-9A-Za-z\]\{(\d+)\}\$$/.exec(pattern)
  if (random) return { prefix: random[1]!, timeLength: 0, randomLength: Number(random[2]) }
  throw new Error(`ids.ts cannot make ids of the spec's pattern ${pattern}`)
}

const { schemas } = specValues
const ID_FORMATS = {
  session: idFormat(schemas.SessionId.pattern),
  sessionEvent: idFormat(schemas.SessionEventId.pattern),
  serverRun: idFormat(schemas.ServerRunId.pattern),
  serverRunError: idFormat(schemas.ServerRunErrorId.pattern),
  server: idFormat(schemas.ServerId.pattern),
  serverVersion: idFormat(schemas.ServerVersionId.pattern),
  serverDeployment: idFormat(schemas.ServerDeploymentId.pattern),
  serverSession: idFormat(schemas.ServerSessionId.pattern),
  request: idFormat(specValues.headers.MetorialReqId.schema.pattern),
  // Never shown by the API, so not in the spec: made like a session's.
  instance: { ...idFormat(schemas.SessionId.pattern), prefix: 'ins' },
  apiKey: { ...idFormat(schemas.SessionId.pattern), prefix: 'apk' },
} satisfies Record<string, IdFormat>
export type IdKind = keyof typeof ID_FORMATS

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** An id of the kind with every character after the prefix `char`: `0` is below all, `z` above all. */
const filledId = (kind: IdKind, char: '0' | 'z') => {
  const { prefix, timeLength, randomLength } = ID_FORMATS[kind]
  return `${prefix}_${char.repeat(timeLength + randomLength)}`
}
/** Event ids below and above every real one: where a cursor or a stream stands at either end. */
export const LOWEST_EVENT_ID = filledId('sessionEvent', '0')
export const HIGHEST_EVENT_ID = filledId('sessionEvent', 'z')
/** Session ids below and above every real one, for the same at either end of the sessions. */
export const LOWEST_SESSION_ID = filledId('session', '0')
export const HIGHEST_SESSION_ID = filledId('session', 'z')

/** Random base-62 characters, every one equally likely. */
export function randomBase62(length: number): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(length + 8)) {
      // 248 = 62 * 4: rejecting the rest keeps every character equally likely.
      if (byte < 248 && out.length < length) out += BASE62[byte % 62]
    }
  }
  return out
}

/** The creation time part of an id: `now` in base 36, padded to `length`. */
const timePart = (now: number, length: number) => (length === 0 ? '' : now.toString(36).padStart(length, '0'))

/** A new id of the given kind, made at `now` (milliseconds since the epoch). */
export function newId(kind: IdKind, now: number = Date.now()): string {
  const { prefix, timeLength, randomLength } = ID_FORMATS[kind]
  return `${prefix}_${timePart(now, timeLength)}${randomBase62(randomLength)}`
}

/**
 * Ids made in bulk, one per request (request ids, appended events' ids): the random bytes come
 * from a buffer filled 4 KiB at a time rather than from one call into the system's generator per
 * id, which cost a few µs of every request (a CPU profile of getSessionEvent put randomFillSync
 * at 4%; of appends of 100 lines under load, 15 µs an append).
 */
export class IdSource {
  #pool = randomBytes(4096)
  #at = 0

  newId(kind: IdKind, now: number = Date.now()): string {
    const { prefix, timeLength, randomLength } = ID_FORMATS[kind]
    let random = ''
    while (random.length < randomLength) {
      if (this.#at >= this.#pool.length) {
        this.#pool = randomBytes(4096)
        this.#at = 0
      }
      const byte = this.#pool[this.#at++]!
      // 248 = 62 * 4: rejecting the rest keeps every character equally likely.
      if (byte < 248) random += BASE62[byte % 62]
    }
    return `${prefix}_${timePart(now, timeLength)}${random}`
  }
}

const FORMATS_BY_PREFIX = new Map<string, IdFormat>(Object.values(ID_FORMATS).map((f) => [f.prefix, f]))

/** The format of an id, by its prefix. */
function formatOf(id: string): IdFormat {
  const format = FORMATS_BY_PREFIX.get(id.slice(0, id.indexOf('_')))
  if (!format) throw new Error(`not an id of a known kind: ${id}`)
  return format
}

/** The smallest id above `id` of the same kind and time: its random part counted up by one. */
export function nextId(id: string): string {
  const { randomLength } = formatOf(id)
  const digits = Array.from(id.slice(-randomLength), (c) => BASE62.indexOf(c))
  let i = digits.length - 1
  while (i >= 0 && digits[i] === 61) digits[i--] = 0
  // 62^13 ids in one millisecond would be needed to run over: not a case to handle.
  if (i < 0) throw new Error(`no id after ${id}`)
  digits[i]! += 1
  return id.slice(0, -randomLength) + digits.map((d) => BASE62[d]).join('')
}

/** The creation time encoded in an id. */
export function idTime(id: string): Date {
  const { prefix, timeLength } = formatOf(id)
  return new Date(parseInt(id.slice(prefix.length + 1, prefix.length + 1 + timeLength), 36))
}

/** Whether `value` is a session event id, by the spec's pattern. */
export const isSessionEventId = (value: string): boolean => SessionEventIdSchema.safeParse(value).success
/** Whether `value` is a session id, by the spec's pattern. */
export const isSessionId = (value: string): boolean => SessionIdSchema.safeParse(value).success

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
