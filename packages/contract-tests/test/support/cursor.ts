// Metorial's cursor, written from the wire contract rather than imported from the server, so that
// the suites check the server against the contract and not against itself: `cur_` followed by
// the base-62 (0-9A-Za-z) of the UTF-8 JSON `["after" | "before", eventId]`, read as one
// big-endian number.

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

export function base62(bytes: Uint8Array): string {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  let out = ''
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out
    n /= 62n
  }
  return out || '0'
}

function unbase62(text: string): Uint8Array | null {
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

/** A cursor holding any JSON value: real ones hold `[direction, eventId]`, forged ones anything. */
export const cursorOf = (value: unknown): string => `cur_${base62(new TextEncoder().encode(JSON.stringify(value)))}`

/** What a cursor stands for, or null when it stands for nothing (the server must refuse it). */
export function readCursor(text: string, eventIdPattern: RegExp): { direction: 'after' | 'before'; id: string } | null {
  if (!text.startsWith('cur_')) return null
  const bytes = unbase62(text.slice(4))
  if (!bytes) return null
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return null
  }
  if (!Array.isArray(value) || value.length !== 2) return null
  const [direction, id] = value
  if ((direction !== 'after' && direction !== 'before') || typeof id !== 'string' || !eventIdPattern.test(id))
    return null
  return { direction, id }
}
