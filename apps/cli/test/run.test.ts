// `session-events run` and `session-events events append`, the built CLI run as a process
// around real child processes (small node scripts in a temporary folder), against the API
// server process; a TCP proxy between them makes the API unreachable for a while.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type LogLine,
  type SessionEvent,
  type SessionEventsClient,
  createSessionEventsClient,
} from '@session-events/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ApiServer, type Run, type Started, cliMain, runNode, startApiServer, startNode } from './processes.js'
import { type TcpProxy, startTcpProxy } from './tcp-proxy.js'

let api: ApiServer
let proxy: TcpProxy
let client: SessionEventsClient
let env: NodeJS.ProcessEnv
let otherSessionId: string
let scripts: string

beforeAll(async () => {
  api = await startApiServer({ sessions: 1, events: 0 })
  proxy = await startTcpProxy(api.url)
  const [a, b] = api.summary.instances
  otherSessionId = b!.sessions[0]!.id
  client = createSessionEventsClient({ apiKey: a!.secret_key, baseUrl: api.url })
  env = { SESSION_EVENTS_API_KEY: a!.secret_key, SESSION_EVENTS_BASE_URL: api.url }
  scripts = mkdtempSync(join(tmpdir(), 'session-events-run-'))
})

afterAll(async () => {
  await proxy?.close()
  await api?.stop()
  if (scripts) rmSync(scripts, { recursive: true, force: true })
})

/**
 * Writes a node script (an ES module) into the temporary folder; returns its path. Its `print(fd,
 * text)` writes to fd 1 or 2 at once, in the order called: process.stdout and process.stderr are
 * two handles, each queueing its own writes while a pipe is full, so their order between them is
 * not the order of the calls.
 */
function script(name: string, source: string): string {
  const path = join(scripts, `${name}.mjs`)
  writeFileSync(path, `${PRELUDE}\n${source}`)
  return path
}

const PRELUDE = `import { writeSync } from 'node:fs'
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
function print(fd, text) {
  let bytes = Buffer.from(text)
  while (bytes.length > 0) {
    try {
      bytes = bytes.subarray(writeSync(fd, bytes))
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error
    }
  }
}`

/**
 * For a child script: `await storedLines(n)` waits until the session named by RUN_SESSION holds
 * n log lines, read through the API, so that what the child printed before has been read by run.
 */
const STORED_LINES = `
async function storedLines(n) {
  const deadline = Date.now() + 20_000
  for (;;) {
    let count = 0
    let after
    for (;;) {
      const url = new URL(\`\${process.env.SESSION_EVENTS_BASE_URL}/sessions/\${process.env.RUN_SESSION}/events\`)
      url.searchParams.set('limit', '100')
      if (after) url.searchParams.set('after', after)
      const res = await fetch(url, { headers: { authorization: \`Bearer \${process.env.SESSION_EVENTS_API_KEY}\` } })
      // A server under load sheds with 503 (and Retry-After): asked again, as the client would.
      if (res.status === 503 || res.status === 429) {
        await sleep(Number(res.headers.get('retry-after') ?? 1) * 1000)
        continue
      }
      if (!res.ok) throw new Error(\`\${res.status} \${await res.text()}\`)
      const page = await res.json()
      for (const event of page.items) count += event.log_lines.length
      if (!page.pagination.has_more_after) break
      after = page.items.at(-1).id
    }
    if (count >= n) return
    if (Date.now() > deadline) throw new Error(\`\${count} of \${n} lines stored after 20 s\`)
    await sleep(10)
  }
}
`

const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> =>
  runNode([cliMain, ...args], { ...env, ...extraEnv }, input)
const startCli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Started =>
  startNode([cliMain, ...args], { ...env, ...extraEnv })

/** The session and run that `run` names on stderr at its start. */
function idsOf(stderr: string): { sessionId: string; serverRunId: string } {
  const match = /session (ses_\w{22}), server run (srr_\w{22})/.exec(stderr)
  if (!match) throw new Error(`no ids on stderr:\n${stderr}`)
  return { sessionId: match[1]!, serverRunId: match[2]! }
}

async function eventsOf(sessionId: string, serverRunId: string): Promise<SessionEvent[]> {
  const events: SessionEvent[] = []
  for await (const event of client.events.iterate(sessionId, { server_run_id: [serverRunId] })) events.push(event)
  return events
}

const linesOf = (events: SessionEvent[]): LogLine[] => events.flatMap((e) => e.log_lines)
const out = (line: string): LogLine => ({ type: 'stdout', line })
const err = (line: string): LogLine => ({ type: 'stderr', line })

describe('session-events run', () => {
  it('records every line once, in the order printed where the command waits for it to be read, and exits with the command’s code', async () => {
    // Two pipes carry no order between them: the child waits until its earlier lines are stored
    // (so read) before it prints on the other stream, which makes the order across them observable.
    const session = await client.sessions.create()
    const long = `${'a'.repeat(65_536)}${'b'.repeat(65_536)}${'c'.repeat(100)}`
    const child = script(
      'interleaved',
      `${STORED_LINES}
      let printed = 0
      for (let i = 0; i < 12; i++) {
        const fd = i % 3 === 1 ? 2 : 1
        await storedLines(printed)
        print(fd, \`\${fd === 2 ? 'err' : 'out'} \${i}\\n\`)
        printed += 1
      }
      await storedLines(printed)
      print(2, ${JSON.stringify(`${long}\n`)})
      printed += 3 // cut into three lines
      await storedLines(printed)
      for (let i = 0; i < 2500; i++) print(1, \`burst \${i}\\n\`)
      printed += 2500
      await storedLines(printed)
      print(2, 'café ☕ \\r\\n')
      printed += 1
      await storedLines(printed)
      print(1, 'the last line, without a line break')
      process.exitCode = 3
      `,
    )
    const run = await cli(['run', '--session', session.id, '--', process.execPath, child], { RUN_SESSION: session.id })

    expect(run.code, run.stderr).toBe(3)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    expect(run.stderr).toContain(`follow it: session-events events tail ${sessionId}`)
    // The command's output is copied to ours.
    expect(run.stdout).toContain('out 0\nout 2\n')
    expect(run.stdout).toContain('burst 2499\n')
    expect(run.stderr).toContain('err 1\n')

    const events = await eventsOf(sessionId, serverRunId)
    const expected: LogLine[] = [
      ...Array.from({ length: 12 }, (_, i) => (i % 3 === 1 ? err(`err ${i}`) : out(`out ${i}`))),
      err('a'.repeat(65_536)),
      err('b'.repeat(65_536)),
      err('c'.repeat(100)),
      ...Array.from({ length: 2500 }, (_, i) => out(`burst ${i}`)),
      err('café ☕ '),
      out('the last line, without a line break'),
    ]
    expect(linesOf(events)).toEqual(expected)

    const logs = events.filter((e) => e.type === 'server_logs')
    expect(logs.map((e) => e.id)).toEqual(events.slice(0, -1).map((e) => e.id))
    expect(Math.max(...logs.map((e) => e.log_lines.length))).toBeLessThanOrEqual(1_000)
    expect(logs.length).toBeGreaterThanOrEqual(3 + 2)

    const error = events.at(-1)!
    expect(error.type).toBe('server_run_error')
    expect(error.server_run_error).toMatchObject({
      code: 'process_exited',
      metadata: { exit_code: 3 },
    })
    const serverRun = await client.serverRuns.get(sessionId, serverRunId)
    expect(serverRun).toMatchObject({
      status: 'failed',
      type: 'external',
      server: { name: 'node' },
    })
    expect(serverRun.stopped_at).not.toBeNull()
    expect(run.stderr).toContain(
      `server run ${serverRunId} failed (The process exited with code 3.): ${expected.length} lines in ${logs.length} events`,
    )
  })

  it('keeps each stream’s lines in the order printed, every line once, when the command does not wait', async () => {
    const child = script('racing', `for (let i = 0; i < 3000; i++) print(i % 3 === 0 ? 2 : 1, \`line \${i}\\n\`)`)
    const run = await cli(['run', '--quiet', '--', process.execPath, child])
    expect(run.code, run.stderr).toBe(0)
    const { sessionId, serverRunId } = idsOf(run.stderr)
    const lines = linesOf(await eventsOf(sessionId, serverRunId))
    const printed = Array.from({ length: 3000 }, (_, i) => (i % 3 === 0 ? err(`line ${i}`) : out(`line ${i}`)))
    expect(lines).toHaveLength(printed.length)
    // Each stream in its own order; across the two, whatever order they were read in.
    expect(lines.filter((l) => l.type === 'stdout')).toEqual(printed.filter((l) => l.type === 'stdout'))
    expect(lines.filter((l) => l.type === 'stderr')).toEqual(printed.filter((l) => l.type === 'stderr'))
  })

  it('keeps one exact order across both streams with --merge-stderr, every line as stdout', async () => {
    const child = script(
      'merged',
      `
      for (let i = 0; i < 3000; i++) print(i % 3 === 0 ? 2 : 1, \`line \${i}\\n\`)
      for (let i = 0; i < 2500; i++) print(1, \`burst \${i}\\n\`)
      print(2, 'café ☕ \\r\\n')
      process.exitCode = 4
      `,
    )
    const run = await cli(['run', '--merge-stderr', '--', process.execPath, child])
    expect(run.code, run.stderr).toBe(4)
    // The merged output is copied to our stdout.
    expect(run.stdout).toContain('line 0\nline 1\n')
    const { sessionId, serverRunId } = idsOf(run.stderr)
    const events = await eventsOf(sessionId, serverRunId)
    expect(linesOf(events)).toEqual([
      ...Array.from({ length: 3000 }, (_, i) => out(`line ${i}`)),
      ...Array.from({ length: 2500 }, (_, i) => out(`burst ${i}`)),
      out('café ☕ '),
    ])
    // The process is the command's own (the shell exec'd it): its exit code, not the shell's.
    expect(events.at(-1)!.server_run_error).toMatchObject({ code: 'process_exited', metadata: { exit_code: 4 } })

    const missing = await cli(['run', '--quiet', '--merge-stderr', '--', join(scripts, 'no-such-command')])
    expect(missing.code, missing.stderr).toBe(127)
    const ids = idsOf(missing.stderr)
    const failed = await eventsOf(ids.sessionId, ids.serverRunId)
    expect(failed.map((e) => e.server_run_error?.code)).toEqual(['process_not_started'])
  })

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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Waits until the run has recorded this line: the command has printed it and it was appended. */
async function waitForLine(started: Started, line: string): Promise<void> {
  const [, sessionId, serverRunId] = (await started.printed(
    /session (ses_\w{22}), server run (srr_\w{22})/,
  )) as unknown as [string, string, string]
  for (;;) {
    const events = await eventsOf(sessionId, serverRunId)
    if (linesOf(events).some((l) => l.line === line)) return
    await sleep(20)
  }
}
