// `session-events events tail <sessionId>`: follows a session as it is written, until Ctrl-C,
// reconnecting by itself (client.events.tail resumes after the last event it printed).
import type { SessionEvent, SessionEventsClient, StreamSessionEventsQuery } from '@session-events/client'
import { tableHeader, tableRow } from './format.js'

export interface TailOptions {
  client: SessionEventsClient
  sessionId: string
  filters: Omit<StreamSessionEventsQuery, 'after' | 'tail'>
  tail?: number | undefined
  json: boolean
  /** Ends the tail (Ctrl-C, or the run it follows is over). */
  signal: AbortSignal
  /** Where the events go; default stdout. */
  write?: (text: string) => void
  /** Called with each event printed. */
  onEvent?: (event: SessionEvent) => void
}

/** Prints the session's events as they come, as table rows or JSON Lines, until `signal` aborts. */
export async function tailEvents(options: TailOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stdout.write(text))
  const width = process.stdout.isTTY ? process.stdout.columns : undefined
  let count = 0
  try {
    for await (const event of options.client.events.tail(options.sessionId, {
      filters: options.filters,
      ...(options.tail !== undefined && { tail: options.tail }),
      signal: options.signal,
    })) {
      if (options.json) write(`${JSON.stringify(event)}\n`)
      else write(`${count === 0 ? `${tableHeader(width)}\n` : ''}${tableRow(event, width)}\n`)
      count++
      options.onEvent?.(event)
    }
  } catch (error) {
    if (!options.signal.aborted) throw error
  }
  return count
}
