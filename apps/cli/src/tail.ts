// `session-events events tail <sessionId>`: follows a session as it is written, until Ctrl-C,
// reconnecting by itself (client.events.tail resumes after the last event it printed).
import type { SessionEvent, SessionEventsClient, StreamSessionEventsQuery } from '@session-events/client'
import { colourFor, eventLines } from './format.js'

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

/**
 * Prints the session's events as they come, until `signal` aborts: each log line on a line of
 * its own (see eventLines), or each event as JSON Lines.
 */
export async function tailEvents(options: TailOptions): Promise<number> {
  const write = options.write ?? ((text: string) => process.stdout.write(text))
  const colour = colourFor(process.stdout)
  let count = 0
  try {
    for await (const event of options.client.events.tail(options.sessionId, {
      filters: options.filters,
      ...(options.tail !== undefined && { tail: options.tail }),
      signal: options.signal,
    })) {
      if (options.json) write(`${JSON.stringify(event)}\n`)
      else write(`${eventLines(event, colour).join('\n')}\n`)
      count++
      options.onEvent?.(event)
    }
  } catch (error) {
    if (!options.signal.aborted) throw error
  }
  return count
}
