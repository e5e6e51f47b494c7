// The built CLI (dist/main.js) run as a process against the API server run as a process, over a
// SQLite file seeded by the API's seed-cli.js.
import type { SessionEvent, SessionEventList, SessionList } from '@session-events/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiServer, type Run, cliMain, runNode, startApiServer } from './processes.js'

let api: ApiServer
let sessionId: string
let otherSessionId: string
let eventCount: number
let env: NodeJS.ProcessEnv
/** Every event of the session, as `--all --json` printed them. */
let everything: SessionEvent[]

beforeAll(async () => {
  api = await startApiServer({ sessions: 1, events: 150 })
  const [a, b] = api.summary.instances
  sessionId = a!.sessions[0]!.id
  otherSessionId = b!.sessions[0]!.id
  eventCount = a!.sessions[0]!.events
  env = { SESSION_EVENTS_API_KEY: a!.secret_key, SESSION_EVENTS_BASE_URL: api.url }
  everything = await allEvents(['--limit', '40'])
})

afterAll(async () => {
  await api?.stop()
})

const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
  runNode([cliMain, ...args], { ...env, ...extraEnv })

function jsonLines(stdout: string): SessionEvent[] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as SessionEvent)
}

async function allEvents(args: string[] = []): Promise<SessionEvent[]> {
  const run = await cli(['events', 'list', sessionId, '--all', '--json', ...args])
  expect(run.code, run.stderr).toBe(0)
  return jsonLines(run.stdout)
}

describe('session-events sessions list', () => {
  it("prints a table of the instance's sessions, newest first, and --json the page", async () => {
    const run = await cli(['sessions', 'list'])
    expect(run.code, run.stderr).toBe(0)
    const [header, ...rows] = run.stdout.trimEnd().split('\n')
    expect(header).toMatch(/^ID\s+STATUS\s+CREATED\s+METADATA$/)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatch(new RegExp(`^${sessionId}\\s+active\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+\\S`))
    const json = await cli(['sessions', 'list', '--json', '--status', 'active'])
    expect(json.code, json.stderr).toBe(0)
    const page = JSON.parse(json.stdout) as SessionList
    expect(page.__typename).toBe('list')
    expect(page.items.map((s) => s.id)).toEqual([sessionId])
    expect(page.items.some((s) => s.id === otherSessionId)).toBe(false)
  })

  it('walks every page with --all (--json: one session per line) and says how to go on after one page', async () => {
    const created: string[] = []
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${api.url}/sessions`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${env.SESSION_EVENTS_API_KEY}` },
      })
      created.push(((await res.json()) as { id: string }).id)
    }
    const page = await cli(['sessions', 'list', '--limit', '1'])
    expect(page.code, page.stderr).toBe(0)
    expect(page.stdout).toContain(created[1])
    expect(page.stderr).toMatch(/More sessions follow: add --cursor cur_\w+ for the next page, or --all/)
    const all = await cli(['sessions', 'list', '--all', '--limit', '1', '--json'])
    expect(all.code, all.stderr).toBe(0)
    const ids = all.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id)
    expect(ids).toEqual([created[1], created[0], sessionId])
    const table = await cli(['sessions', 'list', '--all', '--status', 'deleted'])
    expect(table.stdout.trim()).toBe('No sessions.')
  })

  it('refuses a status the spec does not allow', async () => {
    const run = await cli(['sessions', 'list', '--status', 'gone'])
    expect(run.code).not.toBe(0)
    expect(run.stderr).toMatch(/Allowed: active, deleted/)
  })
})

describe('session-events events list', () => {
  it('prints a table of the first page, and on stderr how to get the next', async () => {
    const run = await cli(['events', 'list', sessionId, '--limit', '5'])
    expect(run.code, run.stderr).toBe(0)
    const [header, ...rows] = run.stdout.trimEnd().split('\n')
    expect(header).toMatch(/^ID\s+CREATED\s+TYPE\s+SERVER\s+DETAIL$/)
    expect(rows).toHaveLength(5)
    for (const row of rows)
      expect(row).toMatch(/^sev_\w{22}\s+\d{4}-\d\d-\d\dT[\d:.]+Z\s+(server_logs|server_run_error)\s+\S/)
    expect(run.stderr).toMatch(/--cursor cur_\w+ for the next page, or --all/)
  })

  it('prints the page as JSON with --json', async () => {
    const run = await cli(['events', 'list', sessionId, '--limit', '3', '--order', 'desc', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const page = JSON.parse(run.stdout) as SessionEventList
    expect(page.__typename).toBe('list')
    expect(page.items).toHaveLength(3)
    const ids = page.items.map((e) => e.id)
    expect(ids).toEqual([...ids].sort().reverse())
    expect(page.pagination).toMatchObject({ has_more_after: true, has_more_before: false })
  })

  it('follows --cursor to the next page', async () => {
    const first = JSON.parse(
      (await cli(['events', 'list', sessionId, '--limit', '4', '--json'])).stdout,
    ) as SessionEventList
    const run = await cli([
      'events',
      'list',
      sessionId,
      '--limit',
      '4',
      '--json',
      '--cursor',
      first.pagination.next_cursor!,
    ])
    const second = JSON.parse(run.stdout) as SessionEventList
    expect([...first.items, ...second.items].map((e) => e.id)).toEqual(everything.slice(0, 8).map((e) => e.id))
  })

  it('prints every event once, one JSON object per line, with --all --json', () => {
    const ids = everything.map((e) => e.id)
    expect(ids).toHaveLength(eventCount)
    expect(new Set(ids).size).toBe(eventCount)
    expect(ids).toEqual([...ids].sort())
    expect(everything.every((e) => e.object === 'session.event' && e.session_id === sessionId)).toBe(true)
  })

  it('prints every event as a table with --all, then how many', async () => {
    const run = await cli(['events', 'list', sessionId, '--all'])
    expect(run.code, run.stderr).toBe(0)
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ID\s+CREATED/)
    expect(lines.filter((line) => line.startsWith('sev_'))).toHaveLength(eventCount)
    expect(lines.at(-1)).toBe(`${eventCount} events.`)
  })

  it('prints every log line of every event with --all --lines, and an error as a line of its own', async () => {
    const run = await cli(['events', 'list', sessionId, '--all', '--lines'])
    expect(run.code, run.stderr).toBe(0)
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines.pop()).toBe(`${eventCount} events.`)
    // Time, server (18 columns), stream (8), the line: what the JSON of the same events holds.
    const printed = lines.map((line) => {
      const [, time, server, stream, text] = /^(\S+) {2}(.{18})(.{8})(.*)$/.exec(line)!
      return [time, server!.trimEnd(), stream!.trimEnd(), text]
    })
    const expected = everything.flatMap((event) => {
      const at = (stream: string, text: string) => [event.created_at, event.server_run!.server.name, stream, text]
      const error = event.server_run_error
      return error ? [at('error', `${error.code}: ${error.message}`)] : event.log_lines.map((l) => at(l.type, l.line))
    })
    expect(printed).toEqual(expected)
    expect(new Set(printed.map(([, , stream]) => stream))).toEqual(new Set(['stdout', 'stderr', 'error']))
  })

  it('prints one page as lines with --lines, and refuses --lines with --json', async () => {
    const page = await cli(['events', 'list', sessionId, '--limit', '5', '--lines'])
    expect(page.code, page.stderr).toBe(0)
    const lineCount = everything.slice(0, 5).reduce((sum, e) => sum + (e.server_run_error ? 1 : e.log_lines.length), 0)
    expect(page.stdout.trimEnd().split('\n')).toHaveLength(lineCount)
    expect(page.stderr).toMatch(/--cursor cur_\w+ for the next page/)
    const both = await cli(['events', 'list', sessionId, '--lines', '--json'])
    expect(both.code).toBe(1)
    expect(both.stderr).toMatch(/'--lines' cannot be used with option '--json'/)
  })

  it('filters by --type and by repeated --server-run', async () => {
    const errors = await allEvents(['--type', 'server_run_error'])
    expect(errors.map((e) => e.id)).toEqual(everything.filter((e) => e.type === 'server_run_error').map((e) => e.id))

    const runs = [...new Set(everything.map((e) => e.server_run!.id))]
    expect(runs.length).toBeGreaterThan(1)
    const chosen = runs.slice(0, 2)
    const ofRuns = await allEvents(['--server-run', chosen[0]!, '--server-run', chosen[1]!, '--order', 'desc'])
    const expected = everything.filter((e) => chosen.includes(e.server_run!.id)).map((e) => e.id)
    expect(ofRuns.map((e) => e.id)).toEqual(expected.reverse())
  })
})

describe('session-events events get', () => {
  it('shows one event, as text and as JSON', async () => {
    const listed = everything.find((e) => e.type === 'server_run_error')
    const text = await cli(['events', 'get', sessionId, listed!.id])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`^id\\s+${listed!.id}$`, 'm'))
    expect(text.stdout).toMatch(/^type\s+server_run_error$/m)
    expect(text.stdout).toContain(listed!.server_run_error!.message)

    const json = await cli(['events', 'get', sessionId, listed!.id, '--json'])
    expect(JSON.parse(json.stdout)).toEqual(listed)
  })
})

describe('failures: the message on stderr, exit code 1', () => {
  it('a session of another instance is not found', async () => {
    const run = await cli(['events', 'list', otherSessionId])
    expect(run).toMatchObject({ code: 1, stdout: '' })
    expect(run.stderr).toContain('The requested session could not be found.')
    expect(run.stderr).toMatch(/HTTP 404, not_found, request req_\w{22}/)
  })

  it('an unknown event is not found', async () => {
    const run = await cli(['events', 'get', sessionId, 'sev_0000000000000000000000'])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('The requested session-event could not be found.')
  })

  it('a bad key is refused, from --api-key over the environment', async () => {
    const run = await cli(['events', 'list', sessionId, '--api-key', 'metorial_sk_wrong000000000000'])
    expect(run).toMatchObject({ code: 1, stdout: '' })
    expect(run.stderr).toContain('Invalid API key')
  })

  it('a limit the API refuses names the field', async () => {
    const run = await cli(['events', 'list', sessionId, '--limit', '1000'])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('The provided data is invalid.')
    expect(run.stderr).toMatch(/^ {2}limit: /m)
  })

  it('no API key at all', async () => {
    const run = await cli(['events', 'list', sessionId], { SESSION_EVENTS_API_KEY: '' })
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('pass --api-key or set SESSION_EVENTS_API_KEY')
  })

  it('an API that cannot be reached', async () => {
    const run = await cli(['events', 'list', sessionId, '--base-url', 'http://127.0.0.1:9', '--max-retries', '0'])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('Could not reach the Session Events API')
  })

  it('an argument the spec does not allow', async () => {
    const type = await cli(['events', 'list', sessionId, '--type', 'server_crash'])
    expect(type.code).toBe(1)
    expect(type.stderr).toContain('Allowed: server_logs, server_run_error')
    const order = await cli(['events', 'list', sessionId, '--order', 'newest'])
    expect(order.code).toBe(1)
    expect(order.stderr).toContain('asc, desc')
  })
})

describe('--help', () => {
  it.each([
    [[], ['events', 'run', '--api-key', 'SESSION_EVENTS_API_KEY', '--base-url', 'https://api.metorial.com']],
    [['events'], ['list', 'get', 'append']],
    [
      ['events', 'list'],
      ['<sessionId>', '--limit', '--order', '--type', '--server-run', '--all', '--json', '--api-key'],
    ],
    [
      ['events', 'get'],
      ['<sessionId>', '<eventId>', '--json', 'SESSION_EVENTS_BASE_URL'],
    ],
    [
      ['events', 'append'],
      ['<sessionId>', '--run <id>', '--stream', '--json', '--max-outage', 'exit code is 1'],
    ],
    [
      ['run'],
      [
        '-- <command> [args...]',
        '--session',
        '--server',
        '--max-outage',
        '--quiet',
        'stopped with SIGTERM',
        '128 + the signal',
      ],
    ],
  ])('session-events %j --help', async (command, mentions) => {
    const run = await cli([...command, '--help'])
    expect(run.code).toBe(0)
    for (const mention of mentions) expect(run.stdout).toContain(mention)
  })
})
