import { base62ToBytes, bytesToBase62, isSessionEventId } from './ids.js'
import { errors } from './errors.js'

// Cursors are Metorial's: `cur_` + base-62 of the JSON `["after" | "before", id]`, so a
// cursor from Metorial works here and ours there. They are opaque to clients; anything that
// does not decode to that exact shape with an id of the list's kind is refused.

export type CursorDirection = 'after' | 'before'
export interface Cursor {
  direction: CursorDirection
  id: string
}

export function encodeCursor(cursor: Cursor): string {
  return `cur_${bytesToBase62(new TextEncoder().encode(JSON.stringify([cursor.direction, cursor.id])))}`
}

/**
 * The cursor, or null when `text` is not one (malformed, forged, or of another kind of id than
 * `isId` takes: an event's, unless a list of another kind says so).
 */
export function decodeCursor(text: string, isId: (id: string) => boolean = isSessionEventId): Cursor | null {
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
  if (!isId(id)) return null
  return { direction, id }
}

/**
 * Where a page of a list starts: `cursor`, `after` or `before`, one of them at most (a 400
 * otherwise, or for a cursor that is not one of this list's: `isId` takes its kind of id).
 */
export function positionOf(
  query: { after?: string | undefined; before?: string | undefined; cursor?: string | undefined },
  isId?: (id: string) => boolean,
): Cursor | undefined {
  if (query.after !== undefined && query.before !== undefined) {
    throw errors.badRequest('Use either `after` or `before`, not both.')
  }
  if (query.cursor !== undefined) {
    if (query.after !== undefined || query.before !== undefined) {
      throw errors.badRequest('Use either `cursor` or `after`/`before`, not both.')
    }
    const cursor = decodeCursor(query.cursor, isId)
    if (!cursor) {
      throw errors.badRequest(
        'The cursor is invalid.',
        'Pass a cursor exactly as a previous response gave it in pagination.next_cursor or pagination.previous_cursor.',
      )
    }
    return cursor
  }
  if (query.after !== undefined) return { direction: 'after', id: query.after }
  if (query.before !== undefined) return { direction: 'before', id: query.before }
  return undefined
}
