// `session-events events tail` and `run --follow`: the built CLI as a process against the API
// server process, while events are written.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type SessionEventsClient, createSessionEventsClient } from '@session-events/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiServer, cliMain, runNode, startApiServer, startNode } from './processes.js'

let api: ApiServer
let client: SessionEventsClient
let env: NodeJS.ProcessEnv
let dir: string

beforeAll(async () => {
  api = await startApiServer({ sessions: 1, events: 0 })
  const a = api.summary.instances[0]!
  client = createSessionEventsClient({ apiKey: a.secret_key, baseUrl: api.url })
  env = { SESSION_EVENTS_API_KEY: a.secret_key, SESSION_EVENTS_BASE_URL: api.url }
  dir = mkdtempSync(join(tmpdir(), 'session-events-tail-'))
})
afterAll(async () => {
  await api?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('session-events events tail', () => {
  it('prints events as they are written, as JSON Lines, filtered, until Ctrl-C', async () => {
    const session = await client.sessions.create()
    const run = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'tailed' } })
    const other = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'not tailed' } })
    await client.events.append(session.id, { server_run_id: run.id, log_lines: [{ type: 'stdout', line: 'before' }] })
    const tail = startNode(
      [cliMain, 'events', 'tail', session.id, '--server-run', run.id, '--tail', '1', '--json'],
      env,
    )
    await tail.printed(/"line":"before"/)
    await client.events.append(session.id, {
      server_run_id: other.id,
      log_lines: [{ type: 'stdout', line: 'elsewhere' }],
    })
    for (let i = 0; i < 3; i++) {
      await client.events.append(session.id, {
        server_run_id: run.id,
        log_lines: [{ type: 'stderr', line: `live ${i}` }],
      })
    }
    await tail.printed(/"line":"live 2"/)
    tail.child.kill('SIGINT')
    const done = await tail.finished
    expect(done.code).toBe(0)
    const lines = done.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { log_lines: { line: string }[] })
    expect(lines.map((e) => e.log_lines[0]!.line)).toEqual(['before', 'live 0', 'live 1', 'live 2'])
  })

  it('prints every line of every event, stderr marked, without colour (NO_COLOR); says why when the API refuses', async () => {
    const session = await client.sessions.create()
    const run = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'lines' } })
    // The tail is following once it has printed the newest event (--tail 1): the batch below is
    // written while it follows, whatever the time the CLI takes to start on a busy machine.
    const ready = await client.events.append(session.id, {
      server_run_id: run.id,
      log_lines: [{ type: 'stdout', line: 'ready' }],
    })
    const tail = startNode([cliMain, 'events', 'tail', session.id, '--tail', '1'], env)
    await tail.printed(/ready/)
    // One batch that holds both streams' lines, as `run` appends a command's output.
    const batch = await client.events.append(session.id, {
      server_run_id: run.id,
      log_lines: [
        { type: 'stdout', line: 'line 1' },
        { type: 'stderr', line: 'oops \u001b[31mred\u001b[0m' },
        { type: 'stdout', line: 'line 3' },
      ],
    })
    await tail.printed(/line 3/)
    const start = `${batch.created_at}  lines${' '.repeat(13)}`
    expect(tail.output.stdout).toBe(
      [
        `${ready.created_at}  lines${' '.repeat(13)}stdout  ready`,
        `${start}stdout  line 1`,
        `${start}stderr  oops red`,
        `${start}stdout  line 3`,
        '',
      ].join('\n'),
    )
    tail.child.kill('SIGTERM')
    expect((await tail.finished).code).toBe(0)
    const refused = await runNode([cliMain, 'events', 'tail', 'ses_0000000000000000000000'], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/could not be found/)
  })
})

describe('session-events events tail: colour', () => {
  it('colours stderr red when FORCE_COLOR says so, even into a pipe; not on a pipe otherwise', async () => {
    const session = await client.sessions.create()
    const run = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'coloured' } })
    const lines = [
      { type: 'stdout' as const, line: 'plain' },
      { type: 'stderr' as const, line: 'alarming' },
    ]
    await client.events.append(session.id, { server_run_id: run.id, log_lines: lines })
    const tailOf = async (colourEnv: NodeJS.ProcessEnv) => {
      // NO_COLOR is unset here (startNode sets it): the choice is FORCE_COLOR's, or the pipe's.
      const tail = startNode([cliMain, 'events', 'tail', session.id, '--tail', '1'], {
        ...env,
        NO_COLOR: undefined,
        ...colourEnv,
      })
      await tail.printed(/alarming/)
      tail.child.kill('SIGINT')
      return (await tail.finished).stdout
    }
    const forced = await tailOf({ FORCE_COLOR: '1' })
    expect(forced).toContain('\u001b[31mstderr  alarming\u001b[39m')
    expect(forced).toContain(`\u001b[36mcoloured${' '.repeat(10)}\u001b[39mstdout  plain\n`)
    const piped = await tailOf({ FORCE_COLOR: undefined })
    expect(piped).not.toContain('\u001b')
    expect(piped).toContain('stderr  alarming')
  })
})

describe('session-events run --follow', () => {
  it("prints the run's lines as they are stored, then its error, and exits with the command's code", async () => {
    const script = join(dir, 'lines.mjs')
    writeFileSync(
      script,
      // Apart in time, so that the order across the two pipes is certain; within one batch's 100 ms.
      "console.log('out one'); setTimeout(() => console.error('err one'), 30); setTimeout(() => console.log('out two'), 60); setTimeout(() => process.exit(3), 150)\n",
    )
    const result = await runNode(
      [cliMain, 'run', '--follow', '--server', 'wrapped', '--', process.execPath, script],
      env,
    )
    expect(result.code).toBe(3)
    const printed = result.stdout.trimEnd().split('\n')
    for (const line of printed) expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z {2}wrapped {11}/)
    // Every line, in order, however they were batched; then the error that stopped the run.
    expect(printed.map((line) => line.slice(line.indexOf('wrapped') + 18))).toEqual([
      'stdout  out one',
      'stderr  err one',
      'stdout  out two',
      'error   process_exited: The process exited with code 3.',
    ])
  })

  it("prints the run's events as they are stored, the error event included, and exits with the command's code", async () => {
    const script = join(dir, 'child.mjs')
    writeFileSync(
      script,
      "console.log('out one'); setTimeout(() => console.error('err one'), 60); setTimeout(() => { console.log('out two'); process.exit(4) }, 200)\n",
    )
    const result = await runNode([cliMain, 'run', '--follow', '--json', '--', process.execPath, script], env)
    expect(result.code).toBe(4)
    const events = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; log_lines: { line: string }[] })
    expect(events.flatMap((e) => e.log_lines.map((l) => l.line))).toEqual(['out one', 'err one', 'out two'])
    expect(events.at(-1)!.type).toBe('server_run_error')
  })
})
