import { base62ToBytes, bytesToBase62, isSessionEventId } from './ids.js'

// Cursors are Metorial's: `cur_` + base-62 of the JSON `["after" | "before", eventId]`, so a
// cursor from Metorial works here and ours there. They are opaque to clients; anything that
// does not decode to that exact shape with a real event id is refused.

export type CursorDirection = 'after' | 'before'
export interface Cursor {
  direction: CursorDirection
  id: string
}

export function encodeCursor(cursor: Cursor): string {
  return `cur_${bytesToBase62(new TextEncoder().encode(JSON.stringify([cursor.direction, cursor.id])))}`
}

/** The cursor, or null when `text` is not one (malformed, forged or of another kind of id). */
export function decodeCursor(text: string): Cursor | null {
  if (!text.startsWith('cur_') || text.length > 204) return null
  const bytes = base62ToBytes(text.slice(4))
  if (!bytes) return null
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return null
  }
  if (!Array.isArray(value) || value.length !== 2) return null
  const [direction, id] = value
  if ((direction !== 'after' && direction !== 'before') || typeof id !== 'string') return null
  if (!isSessionEventId(id)) return null
  return { direction, id }
}
