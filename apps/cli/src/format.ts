// How events and sessions look in a terminal: one row per event or session in a list, every
// field for a single event, or one line per log line (as `kubectl logs` and `heroku logs` print
// them), coloured when the terminal can show it.
import { stripVTControlCharacters, styleText } from 'node:util'
import type { Session, SessionEvent } from '@session-events/client'

const COLUMNS = [
  { title: 'ID', width: 28 },
  { title: 'CREATED', width: 26 },
  { title: 'TYPE', width: 18 },
  { title: 'SERVER', width: 18 },
  { title: 'DETAIL', width: 0 },
] as const

/** The header of the event table. Columns have fixed widths, so pages can be printed as they come. */
export function tableHeader(maxWidth?: number): string {
  return fit(COLUMNS.map((column) => pad(column.title, column.width)).join(''), maxWidth)
}

/** One event as a row of the table; cut to `maxWidth` when the terminal's width is known. */
export function tableRow(event: SessionEvent, maxWidth?: number): string {
  const cells = [event.id, event.created_at, event.type, event.server_run?.server.name ?? '-', summary(event)]
  return fit(cells.map((cell, i) => pad(clean(cell), COLUMNS[i]!.width)).join(''), maxWidth)
}

const SESSION_COLUMNS = [
  { title: 'ID', width: 28 },
  { title: 'STATUS', width: 10 },
  { title: 'CREATED', width: 26 },
  { title: 'METADATA', width: 0 },
] as const

/** The header of the session table. */
export function sessionTableHeader(maxWidth?: number): string {
  return fit(SESSION_COLUMNS.map((column) => pad(column.title, column.width)).join(''), maxWidth)
}

/** One session as a row of the table: its metadata as JSON, `-` when it has none. */
export function sessionTableRow(session: Session, maxWidth?: number): string {
  const metadata = Object.keys(session.metadata).length === 0 ? '-' : JSON.stringify(session.metadata)
  const cells = [session.id, session.status, session.created_at, metadata]
  return fit(cells.map((cell, i) => pad(clean(cell), SESSION_COLUMNS[i]!.width)).join(''), maxWidth)
}

/** Every field of one event that a person reads, then its log lines. */
export function eventDetail(event: SessionEvent): string {
  const run = event.server_run
  const fields: [string, string | undefined][] = [
    ['id', event.id],
    ['type', event.type],
    ['created at', event.created_at],
    ['session', event.session_id],
  ]
  if (run) {
    const session = run.server_session
    const client = session.mcp.client
    fields.push(
      ['server', `${run.server.name} (${run.server.id}, ${run.server.type})`],
      ['deployment', `${run.server_deployment.name ?? '(unnamed)'} (${run.server_deployment.id})`],
      ['server run', `${run.id} (${run.type}, ${run.status})`],
      ['run started', run.started_at ?? '-'],
      ['run stopped', run.stopped_at ?? '-'],
      [
        'server session',
        `${session.id} (${session.mcp.connection_type}, MCP ${session.mcp.version}` +
          `${client ? `, client ${client.name} ${client.version}` : ''})`,
      ],
    )
  }
  const error = event.server_run_error
  if (error) fields.push(['error', `${error.code}: ${error.message}`], ['error id', error.id])
  fields.push(['log lines', String(event.log_lines.length)])
  const width = Math.max(...fields.map(([name]) => name.length)) + 2
  const lines = fields.map(([name, value]) => `${pad(name, width)}${clean(value ?? '-')}`)
  for (const line of event.log_lines) lines.push(`  ${pad(line.type, 8)}${clean(line.line)}`)
  return lines.join('\n')
}

/**
 * An event as lines of text, one per log line: its time, its server, the stream (`stdout` or
 * `stderr`, so that stderr shows without colour too) and the line; a `server_run_error` event is
 * one line that says `error`. Every line of a batch is shown. With `colour`, stderr and errors are
 * red, and the time and server dim and cyan.
 */
export function eventLines(event: SessionEvent, colour = false): string[] {
  // Whether to colour was decided by the caller (colourFor): styleText is not to check again.
  const paint = colour ? (format: Style, text: string) => styleText(format, text, { validateStream: false }) : undefined
  const server = pad(cleanLine(event.server_run?.server.name ?? '-'), SERVER_WIDTH)
  const start = paint ? `${paint('dim', event.created_at)}  ${paint('cyan', server)}` : `${event.created_at}  ${server}`
  const line = (stream: string, text: string, style?: Style) => {
    const rest = `${pad(stream, STREAM_WIDTH)}${cleanLine(text)}`
    return `${start}${paint && style ? paint(style, rest) : rest}`
  }
  const error = event.server_run_error
  if (error) return [line('error', `${error.code}: ${error.message}`, ['red', 'bold'])]
  if (event.log_lines.length === 0) return [line('-', '(no log lines)')]
  return event.log_lines.map(({ type, line: text }) => line(type, text, type === 'stderr' ? 'red' : undefined))
}

type Style = Parameters<typeof styleText>[0]
// The line view's columns between the time and the line.
const SERVER_WIDTH = 18
const STREAM_WIDTH = 8

/**
 * Whether to colour what is written to `stream`: `FORCE_COLOR` (but `0`) forces it, as it does
 * for most CLIs and Node itself; else `NO_COLOR` (https://no-color.org) turns it off; else only
 * a terminal that shows colours gets them (not a pipe, a file, or `TERM=dumb`).
 */
export function colourFor(
  stream: { isTTY?: boolean; hasColors?: () => boolean },
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  const force = env.FORCE_COLOR
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false'
  if (env.NO_COLOR) return false
  return stream.isTTY === true && (stream.hasColors?.() ?? false)
}

/** What an event says, in one line: its error, or its first log line. */
function summary(event: SessionEvent): string {
  const error = event.server_run_error
  if (error) return `${error.code}: ${error.message}`
  const [first, ...rest] = event.log_lines
  if (!first) return '(no log lines)'
  const more = rest.length > 0 ? `  (+${rest.length} more)` : ''
  return `${first.type === 'stderr' ? 'stderr: ' : ''}${first.line}${more}`
}

// Log lines come from servers: control characters (escape sequences, carriage returns) must not
// reach the terminal.
function clean(text: string): string {
  // oxlint-disable-next-line no-control-regex -- control characters are what it removes
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
}

// A log line (or a server's name) in the line view: its own escape sequences (colours, cursor moves, a window
// title) are removed whole rather than shown as debris, then any control character left is made
// a space, as in clean(). Tabs stay: they only move the cursor to the next column.
function cleanLine(text: string): string {
  // oxlint-disable-next-line no-control-regex -- control characters are what it removes
  return stripVTControlCharacters(text).replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, ' ')
}

function pad(text: string, width: number): string {
  if (width === 0) return text
  // Two spaces always separate a cell from the next.
  return (text.length <= width - 2 ? text : `${text.slice(0, width - 3)}…`).padEnd(width)
}

function fit(line: string, maxWidth: number | undefined): string {
  const trimmed = line.trimEnd()
  if (maxWidth === undefined || trimmed.length <= maxWidth) return trimmed
  return `${trimmed.slice(0, maxWidth - 1)}…`
}
