// `session-events run` and `session-events events append`, the built CLI run as a process
// around real child processes (small node scripts in a temporary folder), against the API
// server process; a TCP proxy between them makes the API unreachable for a while. The order in
// which `run` records lines: run-order.test.ts.
import { join } from 'node:path'
import type { SessionEvent } from '@session-events/client'
import { describe, expect, it } from 'vitest'
import {
  cli,
  client,
  err,
  eventsOf,
  idsOf,
  linesOf,
  otherSessionId,
  out,
  proxy,
  script,
  scripts,
  sleep,
  startCli,
  useRunWorld,
  waitForLine,
} from './run-world.js'

useRunWorld()

describe('session-events run', () => {
  it('runs in a given session, under a given server name, and completes on exit code 0', async () => {
    const session = await client.sessions.create()
    const child = script('ok', `console.log('hello')`)
    const run = await cli([
      'run',
      '--session',
      session.id,
      '--server',
      'my-server',
      '--quiet',
      '--',
      process.execPath,
      child,
    ])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toBe('') // --quiet
    const { sessionId, serverRunId } = idsOf(run.stderr)
    expect(sessionId).toBe(session.id)
    const serverRun = await client.serverRuns.get(sessionId, serverRunId)
    expect(serverRun).toMatchObject({ status: 'completed', server: { name: 'my-server' } })
    expect(linesOf(await eventsOf(sessionId, serverRunId))).toEqual([out('hello')])
  })

  it('passes SIGTERM on to the command, which exits on it with its own code', async () => {
    const child = script(
      'waits',
      `
      process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(143) })
      console.log('ready')
      setInterval(() => {}, 1000)
      `,
    )
    const started = startCli(['run', '--quiet', '--', process.execPath, child])
    await started.printed(/server run srr_\w{22}/)
    await waitForLine(started, 'ready')
    started.child.kill('SIGTERM')
    const run = await started.finished
    expect(run.code).toBe(143)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    expect(linesOf(await eventsOf(sessionId, serverRunId))).toEqual([out('ready'), out('got SIGTERM')])
    const events = await eventsOf(sessionId, serverRunId)
    expect(events.at(-1)!.server_run_error).toMatchObject({
      code: 'process_exited',
      metadata: { exit_code: 143 },
    })
  })

  it('stops the run as process_killed when a signal kills the command', async () => {
    const child = script('killed', `console.log('ready'); setInterval(() => {}, 1000)`)
    const started = startCli(['run', '--quiet', '--', process.execPath, child])
    await waitForLine(started, 'ready')
    started.child.kill('SIGINT')
    const run = await started.finished
    expect(run.code).toBe(130)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    const events = await eventsOf(sessionId, serverRunId)
    expect(events.at(-1)!.server_run_error).toMatchObject({
      code: 'process_killed',
      message: 'The process was killed by SIGINT.',
      metadata: { signal: 'SIGINT' },
    })
  })

  it('fails the run as process_not_started, exit code 127, for a command that does not exist', async () => {
    const run = await cli(['run', '--quiet', '--', join(scripts, 'no-such-command')])
    expect(run.code, run.stderr).toBe(127)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    const events = await eventsOf(sessionId, serverRunId)
    expect(events.map((e) => e.server_run_error?.code)).toEqual(['process_not_started'])
  })

  it('loses and repeats nothing while the API is away for a while', async () => {
    const child = script('steady', `for (let i = 0; i < 120; i++) { console.log(\`line \${i}\`); await sleep(20) }`)
    const cutBefore = proxy.cut
    const started = startCli(['run', '--quiet', '--max-retries', '0', '--', process.execPath, child], {
      SESSION_EVENTS_BASE_URL: proxy.url,
    })
    await started.printed(/server run srr_\w{22}/)
    await waitForLine(started, 'line 20')
    // Requests reach the API but their answers are lost: the retries must not write twice.
    proxy.mode = 'drop-answers'
    await sleep(500)
    // Then nothing reaches it at all.
    proxy.mode = 'refuse'
    await sleep(800)
    proxy.mode = 'pass'
    const run = await started.finished

    expect(run.code, run.stderr).toBe(0)
    // Both faults happened: answers lost after the API had the request, connections refused.
    expect(proxy.cut.answersLost).toBeGreaterThan(cutBefore.answersLost)
    expect(proxy.cut.refused).toBeGreaterThan(cutBefore.refused)
    expect(run.stderr).toMatch(/the API is not answering \(.+\); retrying for up to 300 s/)
    expect(run.stderr).toMatch(/the API answers again, after \d+\.\d s/)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    expect(linesOf(await eventsOf(sessionId, serverRunId))).toEqual(
      Array.from({ length: 120 }, (_, i) => out(`line ${i}`)),
    )
    expect((await client.serverRuns.get(sessionId, serverRunId)).status).toBe('completed')
  })

  it('gives up after --max-outage: stops the command and exits 1', async () => {
    const child = script('endless', `console.log('ready'); setInterval(() => console.log('tick'), 50)`)
    const started = startCli(
      ['run', '--quiet', '--max-retries', '0', '--max-outage', '1', '--', process.execPath, child],
      { SESSION_EVENTS_BASE_URL: proxy.url },
    )
    await waitForLine(started, 'ready')
    proxy.mode = 'refuse'
    try {
      const run = await started.finished
      expect(run.code).toBe(1)
      expect(run.stderr).toContain('The API did not answer for 1 s (--max-outage)')
      expect(run.stderr).toContain('stopping the command (SIGTERM)')
    } finally {
      proxy.mode = 'pass'
    }
  })

  it('stops the command and exits 1 when the API refuses the lines (the run was stopped)', async () => {
    const child = script('stopped-under-it', `console.log('ready'); setInterval(() => console.log('tick'), 50)`)
    const started = startCli(['run', '--quiet', '--', process.execPath, child])
    const [, sessionId, serverRunId] = (await started.printed(
      /session (ses_\w{22}), server run (srr_\w{22})/,
    )) as unknown as [string, string, string]
    await waitForLine(started, 'ready')
    await client.serverRuns.stop(sessionId, serverRunId, { status: 'completed' })
    const run = await started.finished
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/HTTP 409, conflict/)
    expect(run.stderr).toContain('stopping the command (SIGTERM)')
  })

  it('refuses a session of another instance before it starts the command', async () => {
    const marker = join(scripts, 'started')
    const child = script('marker', `(await import('node:fs')).writeFileSync(${JSON.stringify(marker)}, '')`)
    const run = await cli(['run', '--session', otherSessionId, '--', process.execPath, child])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain('The requested session could not be found.')
    expect(run.stderr).toMatch(/HTTP 404, not_found/)
    await expect(import('node:fs').then((fs) => fs.existsSync(marker))).resolves.toBe(false)
  })
})

describe('session-events events append', () => {
  async function activeRun(): Promise<{ sessionId: string; serverRunId: string }> {
    const session = await client.sessions.create()
    const serverRun = await client.serverRuns.start(session.id, {
      type: 'external',
      server: { name: 'from-stdin' },
    })
    return { sessionId: session.id, serverRunId: serverRun.id }
  }

  it('appends the lines of stdin in batches, printing each event’s id', async () => {
    const { sessionId, serverRunId } = await activeRun()
    const lines = Array.from({ length: 2_345 }, (_, i) => `line ${i}`)
    const long = 'x'.repeat(70_000)
    const run = await cli(
      ['events', 'append', sessionId, '--run', serverRunId],
      {},
      `${lines.join('\n')}\n${long}\n\nlast`,
    )
    expect(run.code, run.stderr).toBe(0)
    const ids = run.stdout.trim().split('\n')
    const events = await eventsOf(sessionId, serverRunId)
    expect(ids).toEqual(events.map((e) => e.id))
    expect(ids.length).toBeGreaterThanOrEqual(3)
    expect(linesOf(events)).toEqual([
      ...lines.map(out),
      out('x'.repeat(65_536)),
      out('x'.repeat(70_000 - 65_536)),
      out(''),
      out('last'),
    ])
  })

  it('prints the events as JSON lines with --json, and takes --stream stderr', async () => {
    const { sessionId, serverRunId } = await activeRun()
    const run = await cli(
      ['events', 'append', sessionId, '--run', serverRunId, '--stream', 'stderr', '--json'],
      {},
      'one\ntwo\n',
    )
    expect(run.code, run.stderr).toBe(0)
    const printed = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as SessionEvent)
    expect(printed).toEqual(await eventsOf(sessionId, serverRunId))
    expect(linesOf(printed)).toEqual([err('one'), err('two')])
  })

  it('says why, exit code 1, when the API refuses the lines', async () => {
    const { sessionId, serverRunId } = await activeRun()
    await client.serverRuns.stop(sessionId, serverRunId, { status: 'completed' })
    const run = await cli(['events', 'append', sessionId, '--run', serverRunId], {}, 'late\n')
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/HTTP 409, conflict/)
  })

  it('needs --run', async () => {
    const run = await cli(['events', 'append', 'ses_0000000000000000000000'])
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("required option '--run <id>' not specified")
  })
})
