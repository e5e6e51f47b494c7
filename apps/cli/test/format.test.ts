// The table and the detail view, on real events: the API's demo data, read in-process.
import { createApp, openStore, seed } from '@session-events/api'
import { type SessionEvent, createSessionEventsClient } from '@session-events/client'
import { beforeAll, describe, expect, it } from 'vitest'
import { eventDetail, tableHeader, tableRow } from '../src/format.js'

process.env.LOG_LEVEL = 'silent' // the app's request log

let logsEvent: SessionEvent
let errorEvent: SessionEvent

beforeAll(async () => {
  const store = await openStore('sqlite::memory:')
  const { instances } = await seed(store, { sessions: 1, events: 20 })
  const app = createApp({ store, logLevel: 'silent', rateLimit: false })
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
