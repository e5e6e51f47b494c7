// `session-events run -- CMD ARGS…`: runs a command as a server run of a session, appending
// its stdout and stderr lines as they come, and stops the run with the command's outcome.
import { spawn } from 'node:child_process'
import { accessSync, constants as fsConstants, statSync } from 'node:fs'
import { constants } from 'node:os'
import { basename, delimiter, join } from 'node:path'
import type { ServerRunStop, SessionEventsClient } from '@session-events/client'
import { describeFailure } from './failures.js'
import { tailEvents } from './tail.js'
import { OutageNotes, type WriteContext, appender, feedLines, write } from './writes.js'

export interface RunOptions {
  client: SessionEventsClient
  command: string
  args: string[]
  /** A session to run in; a new one is created without it. */
  sessionId?: string
  /** The server's name; default: the command's basename. */
  serverName?: string
  maxOutageMs: number
  /** Copy the command's output to our stdout and stderr too (a tee). */
  echo: boolean
  /** Print the run's events as they are stored, until the run has stopped and all are printed. */
  follow?: { json: boolean } | undefined
  /**
   * Hand the command one pipe for stdout and stderr (as `2>&1`): its lines keep one exact order
   * across both, and are all recorded as stdout. Without it, each stream keeps its own order and
   * the two are interleaved in the order they were read (two pipes carry no order between them).
   */
  mergeStderr?: boolean
}

/** The signals passed on to the command. */
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM'] as const
/** How long a command stopped with SIGTERM has before SIGKILL. */
const KILL_GRACE_MS = 10_000
/** How long the command's pipes may stay open after it exited (held by a child of its own). */
const PIPE_GRACE_MS = 1_000

/** Runs the command to its end; resolves with the exit code to exit with. */
export async function run(options: RunOptions): Promise<number> {
  const note = (message: string) => process.stderr.write(`session-events: ${message}\n`)
  const context: WriteContext = {
    client: options.client,
    maxOutageMs: options.maxOutageMs,
    notes: new OutageNotes(note, options.maxOutageMs),
  }
  const { client } = options
  const serverName = options.serverName ?? basename(options.command)

  let sessionId: string
  let serverRunId: string
  try {
    sessionId = options.sessionId ?? (await write(context, (call) => client.sessions.create(undefined, call))).id
    serverRunId = (
      await write(context, (call) =>
        client.serverRuns.start(sessionId, { type: 'external', server: { name: serverName } }, call),
      )
    ).id
  } catch (error) {
    process.stderr.write(`${describeFailure(error)}\n`)
    return 1
  }
  note(`session ${sessionId}, server run ${serverRunId} (server "${serverName}")`)
  note(`follow it: session-events events tail ${sessionId} --server-run ${serverRunId}`)

  // --follow: the run's events, read back from the API as they are stored; it ends once the
  // event that stops the run (or the last appended) has been printed.
  const following = new AbortController()
  let lastAppended: string | undefined
  let lastPrinted: string | undefined
  let followed: Promise<unknown> = Promise.resolve()
  let caughtUp: (() => void) | undefined
  if (options.follow) {
    followed = tailEvents({
      client,
      sessionId,
      filters: { server_run_id: [serverRunId] },
      json: options.follow.json,
      signal: following.signal,
      onEvent: (event) => {
        lastPrinted = event.id
        if (lastAppended !== undefined && lastPrinted >= lastAppended) caughtUp?.()
      },
    }).catch((error: unknown) => note(`--follow stopped: ${describeFailure(error)}`))
  }

  /** Waits until the follower has printed the run's last event (the one that stopped it, if any). */
  async function followToTheEnd(): Promise<void> {
    try {
      const newest = await client.events.list(sessionId, { server_run_id: [serverRunId], order: 'desc', limit: 1 })
      lastAppended = newest.items[0]?.id
      if (lastAppended !== undefined && (lastPrinted === undefined || lastPrinted < lastAppended)) {
        await new Promise<void>((resolve) => {
          caughtUp = resolve
          setTimeout(resolve, 10_000).unref()
        })
      }
    } catch (error) {
      note(`--follow could not read the run's last event: ${describeFailure(error)}`)
    }
    following.abort()
    await followed
  }

  const child = options.mergeStderr
    ? spawnMerged(options.command, options.args)
    : spawn(options.command, options.args, { stdio: ['inherit', 'pipe', 'pipe'] })
  const forward = (signal: NodeJS.Signals) => child.kill(signal)
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward)

  const batcher = appender(context, {
    sessionId,
    serverRunId,
    onFailure(error) {
      // The API refused for good (or stayed away too long): nothing more can be recorded, so
      // the command is stopped rather than left running unrecorded.
      process.stderr.write(`${describeFailure(error)}\n`)
      note('stopping the command (SIGTERM): its output can no longer be recorded')
      child.kill('SIGTERM')
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref()
    },
  })

  if (options.echo) {
    // Our stdout may be closed by its reader (`… | head`): the command runs on, unechoed.
    process.stdout.removeAllListeners('error')
    process.stdout.on('error', () => child.stdout.unpipe(process.stdout))
    child.stdout.pipe(process.stdout, { end: false })
    child.stderr?.pipe(process.stderr, { end: false })
  }
  const fed = feedLines(
    [
      { stream: child.stdout, type: 'stdout' as const },
      ...(child.stderr ? [{ stream: child.stderr, type: 'stderr' as const }] : []),
    ],
    batcher,
  )
  const outcome = await exited(child)
  // A child of the command may hold its pipes open: its lines are read a moment longer.
  const grace = setTimeout(() => {
    child.stdout.destroy()
    child.stderr?.destroy()
  }, PIPE_GRACE_MS)
  await fed
  clearTimeout(grace)
  for (const signal of FORWARDED_SIGNALS) process.off(signal, forward)

  try {
    await batcher.close()
  } catch {
    return 1 // onFailure has said why
  }

  const stop = stopOf(outcome)
  try {
    await write(context, (call) => client.serverRuns.stop(sessionId, serverRunId, stop.body, call))
  } catch (error) {
    process.stderr.write(`${describeFailure(error)}\n`)
    return 1
  }
  if (options.follow) await followToTheEnd()
  const { lines, batches } = batcher.sent
  const error = stop.body.status === 'failed' ? ` (${stop.body.error?.message})` : ''
  note(`server run ${serverRunId} ${stop.body.status}${error}: ${plural(lines, 'line')} in ${plural(batches, 'event')}`)
  return stop.exitCode
}

/**
 * The command with its stderr on its stdout's pipe: `/bin/sh` sets up the one pipe (`2>&1`) and
 * `exec`s the command in its own place, so the process (its pid, signals, exit code) is the
 * command's own. A command that cannot be found fails as without --merge-stderr (a spawn error
 * ENOENT), not as the shell's exit code 127.
 */
function spawnMerged(command: string, args: string[]) {
  if (!findExecutable(command)) {
    // Spawning it directly fails as a command that does not exist fails: an 'error', no 'exit'.
    return spawn(command, args, { stdio: ['inherit', 'pipe', 'ignore'] })
  }
  return spawn('/bin/sh', ['-c', 'exec "$0" "$@" 2>&1', command, ...args], { stdio: ['inherit', 'pipe', 'ignore'] })
}

/** Whether `command` names an executable file, as the shell finds it (a path, or on PATH). */
function findExecutable(command: string): boolean {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir || '.', command))
  return candidates.some((path) => {
    try {
      accessSync(path, fsConstants.X_OK)
      return statSync(path).isFile()
    } catch {
      return false
    }
  })
}

type Outcome =
  | { code: number; signal: null }
  | { code: null; signal: NodeJS.Signals }
  | { spawnError: NodeJS.ErrnoException }

function exited(child: ReturnType<typeof spawn>): Promise<Outcome> {
  return new Promise((resolve) => {
    child.once('exit', (code, signal) =>
      resolve(code !== null ? { code, signal: null } : { code: null, signal: signal! }),
    )
    // Only a failure to start: then there is no 'exit'.
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) resolve({ spawnError: error })
    })
  })
}

/** How the run ends, and the code we exit with: the command's, or 128 + its signal's number. */
function stopOf(outcome: Outcome): { body: ServerRunStop; exitCode: number } {
  if ('spawnError' in outcome) {
    const { code, message } = outcome.spawnError
    return {
      body: {
        status: 'failed',
        error: { code: 'process_not_started', message, metadata: { errno: code ?? null } },
      },
      // As a shell says: 127, not found; 126, found but not runnable.
      exitCode: code === 'ENOENT' ? 127 : 126,
    }
  }
  if (outcome.signal !== null) {
    return {
      body: {
        status: 'failed',
        error: {
          code: 'process_killed',
          message: `The process was killed by ${outcome.signal}.`,
          metadata: { signal: outcome.signal },
        },
      },
      exitCode: 128 + (constants.signals[outcome.signal] ?? 0),
    }
  }
  if (outcome.code === 0) return { body: { status: 'completed' }, exitCode: 0 }
  return {
    body: {
      status: 'failed',
      error: {
        code: 'process_exited',
        message: `The process exited with code ${outcome.code}.`,
        metadata: { exit_code: outcome.code },
      },
    },
    exitCode: outcome.code,
  }
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`
}
