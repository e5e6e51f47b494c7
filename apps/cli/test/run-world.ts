// What the tests of `session-events run` share (run.test.ts, run-order.test.ts): the API server
// process with a TCP proxy before it, a client of it, small node scripts in a temporary folder
// for the CLI to run, and readers of what a run recorded. useRunWorld() sets it up for a file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type LogLine,
  type SessionEvent,
  type SessionEventsClient,
  createSessionEventsClient,
} from '@session-events/client'
import { afterAll, beforeAll } from 'vitest'
import { type ApiServer, type Run, type Started, cliMain, runNode, startApiServer, startNode } from './processes.js'
import { type TcpProxy, startTcpProxy } from './tcp-proxy.js'

export let api: ApiServer
export let proxy: TcpProxy
export let client: SessionEventsClient
export let env: NodeJS.ProcessEnv
export let otherSessionId: string
export let scripts: string

/** Sets the shared world up before the file's tests and takes it down after them. */
export function useRunWorld(): void {
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
}

/**
 * Writes a node script (an ES module) into the temporary folder; returns its path. Its `print(fd,
 * text)` writes to fd 1 or 2 at once, in the order called: process.stdout and process.stderr are
 * two handles, each queueing its own writes while a pipe is full, so their order between them is
 * not the order of the calls.
 */
export function script(name: string, source: string): string {
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

export const cli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}, input = ''): Promise<Run> =>
  runNode([cliMain, ...args], { ...env, ...extraEnv }, input)
export const startCli = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Started =>
  startNode([cliMain, ...args], { ...env, ...extraEnv })

/** The session and run that `run` names on stderr at its start. */
export function idsOf(stderr: string): { sessionId: string; serverRunId: string } {
  const match = /session (ses_\w{22}), server run (srr_\w{22})/.exec(stderr)
  if (!match) throw new Error(`no ids on stderr:\n${stderr}`)
  return { sessionId: match[1]!, serverRunId: match[2]! }
}

export async function eventsOf(sessionId: string, serverRunId: string): Promise<SessionEvent[]> {
  const events: SessionEvent[] = []
  for await (const event of client.events.iterate(sessionId, { server_run_id: [serverRunId] })) events.push(event)
  return events
}

export const linesOf = (events: SessionEvent[]): LogLine[] => events.flatMap((e) => e.log_lines)
export const out = (line: string): LogLine => ({ type: 'stdout', line })
export const err = (line: string): LogLine => ({ type: 'stderr', line })

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Waits until the run has recorded this line: the command has printed it and it was appended. */
export async function waitForLine(started: Started, line: string): Promise<void> {
  const [, sessionId, serverRunId] = (await started.printed(
    /session (ses_\w{22}), server run (srr_\w{22})/,
  )) as unknown as [string, string, string]
  for (;;) {
    const events = await eventsOf(sessionId, serverRunId)
    if (linesOf(events).some((l) => l.line === line)) return
    await sleep(20)
  }
}
