import type { ServerRun, SessionEvent } from '@session-events/client'
import { plainText } from './ansi.js'

// A session's events as the page shows them: one row per log line (an event holds a batch of
// them), and one row for a `server_run_error` event; and which rows the filters let through.

/** Where a row's text came from: a log line's stream, or the error that ended a run. */
export type Stream = SessionEvent['log_lines'][number]['type'] | 'error'

export interface Row {
  event: SessionEvent
  /** The line's place in its event (0 for an error). */
  index: number
  stream: Stream
  /** The line as the server wrote it, escape sequences included; an error's `code: message`. */
  text: string
  /** The text without escape sequences, lower case, for search: made when first searched. */
  searchable?: string
}

export function rowsOf(event: SessionEvent): Row[] {
  const error = event.server_run_error
  if (error) return [{ event, index: 0, stream: 'error', text: `${error.code}: ${error.message}` }]
  return event.log_lines.map((line, index) => ({ event, index, stream: line.type, text: line.line }))
}

/** What the rows are narrowed to: one run, one stream, one type of event (undefined: all). */
export interface Filters {
  runId?: string | undefined
  stream?: Exclude<Stream, 'error'> | undefined
  type?: SessionEvent['type'] | undefined
}

/** Whether a row passes the filters. A run's error passes any stream: it is the run's, not a stream's. */
export function passes(row: Row, filters: Filters): boolean {
  if (filters.runId !== undefined && row.event.server_run?.id !== filters.runId) return false
  if (filters.type !== undefined && row.event.type !== filters.type) return false
  if (filters.stream !== undefined && row.stream !== 'error' && row.stream !== filters.stream) return false
  return true
}

/** Whether a row's text holds `query` (lower case). */
export function matches(row: Row, query: string): boolean {
  row.searchable ??= plainText(row.text).toLowerCase()
  return row.searchable.includes(query)
}

/** The runs the events show, each as it was last seen (a run's status changes while it runs). */
export class Runs {
  readonly #runs = new Map<string, ServerRun>()

  /** Keeps the newer of what is known and `run`; true when that changed something. */
  see(run: ServerRun | null): boolean {
    if (!run) return false
    const known = this.#runs.get(run.id)
    if (known && known.updated_at >= run.updated_at && known.status === run.status) return false
    if (known && known.updated_at > run.updated_at) return false
    this.#runs.set(run.id, run)
    return true
  }

  get(id: string): ServerRun | undefined {
    return this.#runs.get(id)
  }

  /** Every run, in the order the page first saw them. */
  all(): ServerRun[] {
    return [...this.#runs.values()]
  }
}

/** A run's id as a row shows it: its last characters, which tell the runs of one session apart. */
export const shortRunId = (id: string) => `…${id.slice(-6)}`
