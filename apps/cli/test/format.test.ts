// The table and the detail view, on real events: the API's demo data, read in-process.
import { createApp, openStore, seed } from '@session-events/api'
import { type SessionEvent, createSessionEventsClient } from '@session-events/client'
import { beforeAll, describe, expect, it } from 'vitest'
import { stripVTControlCharacters } from 'node:util'
import { colourFor, eventDetail, eventLines, tableHeader, tableRow } from '../src/format.js'

process.env.LOG_LEVEL = 'silent' // the app's request log

let logsEvent: SessionEvent
let errorEvent: SessionEvent

beforeAll(async () => {
  const store = await openStore('sqlite::memory:')
  const { instances } = await seed(store, { sessions: 1, events: 20 })
  const app = createApp({ store, config: { logLevel: 'silent', rateLimit: false, shedLoadAfterMs: false } })
  const client = createSessionEventsClient({
    apiKey: instances[0]!.secret_key,
    fetch: (input, init) => app.fetch(new Request(input, init)),
  })
  const { items } = await client.sessionEvents.list(instances[0]!.sessions[0]!.id, { limit: 100 })
  logsEvent = items.find((e) => e.type === 'server_logs' && e.log_lines.length > 1)!
  errorEvent = items.find((e) => e.type === 'server_run_error')!
})

describe('table', () => {
  it('lines the columns up under the header', () => {
    const header = tableHeader()
    const row = tableRow(logsEvent)
    for (const title of ['CREATED', 'TYPE', 'SERVER', 'DETAIL']) {
      const column = header.indexOf(title)
      expect(row[column - 1]).toBe(' ')
      expect(row[column]).not.toBe(' ')
    }
    const first = logsEvent.log_lines[0]!
    expect(row).toContain(`${first.line}  (+${logsEvent.log_lines.length - 1} more)`)
    const error = errorEvent.server_run_error!
    expect(tableRow(errorEvent)).toContain(`${error.code}: ${error.message}`)
  })

  it('cuts rows to the terminal width', () => {
    expect(tableRow(errorEvent, 80)).toHaveLength(80)
    expect(tableRow(errorEvent, 80).endsWith('…')).toBe(true)
  })

  it('never lets control characters from a log line reach the terminal', () => {
    const hostile: SessionEvent = {
      ...logsEvent,
      log_lines: [{ type: 'stdout', line: 'ok\u001b[2J\rgone\u0007' }],
    }
    // oxlint-disable-next-line no-control-regex -- control characters are what must not be there
    expect(tableRow(hostile)).not.toMatch(/[\u0000-\u001f]/)
    // oxlint-disable-next-line no-control-regex -- control characters are what must not be there
    expect(eventDetail(hostile)).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/)
  })
})

describe('detail', () => {
  it('shows the fields a person reads, then every log line', () => {
    const text = eventDetail(logsEvent)
    const run = logsEvent.server_run!
    expect(text).toMatch(new RegExp(`^id\\s+${logsEvent.id}$`, 'm'))
    expect(text).toContain(`${run.server.name} (${run.server.id}, ${run.server.type})`)
    expect(text).toContain(`${run.id} (${run.type}, ${run.status})`)
    expect(text).toMatch(new RegExp(`^log lines\\s+${logsEvent.log_lines.length}$`, 'm'))
    for (const line of logsEvent.log_lines) expect(text).toContain(`  ${line.type.padEnd(8)}${line.line}`)
    expect(eventDetail(errorEvent)).toMatch(new RegExp(`^error\\s+${errorEvent.server_run_error!.code}: `, 'm'))
  })
})

describe('line view', () => {
  const batch = (): SessionEvent => ({
    ...logsEvent,
    log_lines: [
      { type: 'stdout', line: 'listening on stdio' },
      { type: 'stderr', line: 'warning: no config, using defaults' },
      { type: 'stdout', line: '\tindented by a tab' },
    ],
  })

  it('prints every line of an event, each with its time, server and stream: stderr shows without colour', () => {
    const server = logsEvent.server_run!.server.name
    expect(eventLines(batch())).toEqual([
      `${logsEvent.created_at}  ${server.padEnd(18)}stdout  listening on stdio`,
      `${logsEvent.created_at}  ${server.padEnd(18)}stderr  warning: no config, using defaults`,
      `${logsEvent.created_at}  ${server.padEnd(18)}stdout  \tindented by a tab`,
    ])
  })

  it("prints a run's error as a line of its own", () => {
    const error = errorEvent.server_run_error!
    const lines = eventLines(errorEvent)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(new RegExp(`^${errorEvent.created_at}  \\S.{17}error   `))
    expect(lines[0]!.endsWith(`${error.code}: ${error.message}`)).toBe(true)
  })

  it('colours stderr and errors red, and nothing else of the line, only when asked', () => {
    const [out, err] = eventLines(batch(), true)
    expect(err).toContain('\u001b[31mstderr  warning: no config, using defaults\u001b[39m')
    expect(out).not.toContain('\u001b[31m')
    expect(eventLines(errorEvent, true)[0]).toContain('\u001b[31m\u001b[1merror   ')
    // Without colour there is no escape sequence at all; with it, taking ours away leaves the same text.
    expect(eventLines(batch()).join('\n')).not.toContain('\u001b')
    expect(eventLines(batch(), true).map((line) => stripVTControlCharacters(line))).toEqual(eventLines(batch()))
  })

  it("never lets a log line's control sequences reach the terminal: they are removed, not shown as debris", () => {
    const hostile: SessionEvent = {
      ...logsEvent,
      server_run: { ...logsEvent.server_run!, server: { ...logsEvent.server_run!.server, name: 'evil\u001b[2J' } },
      log_lines: [
        // Clear the screen, move the cursor up, set the window's title, ring the bell, go back
        // over the line, an 8-bit CSI, its own colours.
        { type: 'stderr', line: 'ok\u001b[2J\u001b[1A\u001b]0;pwned\u0007\r\bgone\u009b2J \u001b[31mred\u001b[0m' },
      ],
    }
    const [plain] = eventLines(hostile)
    // oxlint-disable-next-line no-control-regex -- control characters are what must not be there
    expect(plain).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/)
    // The carriage return and the backspace became spaces; the sequences went whole.
    expect(plain).toMatch(/ evil {14}stderr {2}ok {2}gone red$/)
    // In colour, the only sequences are ours, in order: the time dim, the server cyan, stderr red.
    const [coloured] = eventLines(hostile, true)
    // oxlint-disable-next-line no-control-regex -- escape sequences are what is counted
    const sequences = /\u001b\[[\d;]*m/g
    expect([...coloured!.matchAll(sequences)].map(([sequence]) => sequence)).toEqual(
      ['2', '22', '36', '39', '31', '39'].map((code) => `\u001b[${code}m`),
    )
    expect(coloured!.replace(sequences, '')).toBe(plain)
  })

  it('colours a terminal that shows colours; never a pipe, unless FORCE_COLOR; never with NO_COLOR', () => {
    const terminal = { isTTY: true, hasColors: () => true }
    expect(colourFor(terminal, {})).toBe(true)
    expect(colourFor(terminal, { NO_COLOR: '1' })).toBe(false)
    // no-color.org: an empty NO_COLOR does not count.
    expect(colourFor(terminal, { NO_COLOR: '' })).toBe(true)
    expect(colourFor(terminal, { FORCE_COLOR: '0' })).toBe(false)
    // A terminal without colours (TERM=dumb): hasColors() says so.
    expect(colourFor({ isTTY: true, hasColors: () => false }, {})).toBe(false)
    // This test's own stdout, a pipe to vitest.
    expect(process.stdout.isTTY).toBeFalsy()
    expect(colourFor(process.stdout, {})).toBe(false)
    expect(colourFor(process.stdout, { FORCE_COLOR: '1' })).toBe(true)
    expect(colourFor(process.stdout, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(true)
  })
})
