// `session-events events append <sessionId> --run srr_…`: the lines of stdin, appended to a
// server run in batches, as `run` appends a command's output.
import { constants } from 'node:os'
import type { LogLine, SessionEvent, SessionEventsClient } from '@session-events/client'
import { describeFailure } from './failures.js'
import { OutageNotes, appender, feedLines } from './writes.js'

export interface AppendOptions {
  client: SessionEventsClient
  sessionId: string
  serverRunId: string
  stream: LogLine['type']
  maxOutageMs: number
  /** Print each appended event as JSON instead of its id. */
  json: boolean
}

/** Reads stdin to its end; resolves with the exit code. */
export async function appendStdin(options: AppendOptions): Promise<number> {
  const note = (message: string) => process.stderr.write(`session-events: ${message}\n`)
  const onAppended = (event: SessionEvent) =>
    process.stdout.write(`${options.json ? JSON.stringify(event) : event.id}\n`)
  const batcher = appender(
    {
      client: options.client,
      maxOutageMs: options.maxOutageMs,
      notes: new OutageNotes(note, options.maxOutageMs),
    },
    {
      sessionId: options.sessionId,
      serverRunId: options.serverRunId,
      onAppended,
      onFailure: () => process.stdin.destroy(), // no more lines can be appended
    },
  )
  // Ctrl-C or a SIGTERM ends the input: what was read is still appended.
  let interrupted: NodeJS.Signals | undefined
  const stop = (signal: NodeJS.Signals) => {
    interrupted = signal
    process.stdin.destroy()
  }
  process.once('SIGINT', stop).once('SIGTERM', stop)
  await feedLines([{ stream: process.stdin, type: options.stream }], batcher)
  process.off('SIGINT', stop).off('SIGTERM', stop)
  try {
    await batcher.close()
  } catch (error) {
    process.stderr.write(`${describeFailure(error)}\n`)
    return 1
  }
  return interrupted ? 128 + constants.signals[interrupted] : 0
}
