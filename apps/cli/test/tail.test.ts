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

  it('prints table rows, and says why when the API refuses', async () => {
    const session = await client.sessions.create()
    const run = await client.serverRuns.start(session.id, { type: 'external', server: { name: 'rows' } })
    const tail = startNode([cliMain, 'events', 'tail', session.id], env)
    await new Promise((r) => setTimeout(r, 500))
    await client.events.append(session.id, { server_run_id: run.id, log_lines: [{ type: 'stdout', line: 'a row' }] })
    await tail.printed(/a row/)
    expect(tail.output.stdout).toMatch(/^ID\s+CREATED\s+TYPE/)
    tail.child.kill('SIGTERM')
    expect((await tail.finished).code).toBe(0)
    const refused = await runNode([cliMain, 'events', 'tail', 'ses_0000000000000000000000'], env)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/could not be found/)
  })
})

describe('session-events run --follow', () => {
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
