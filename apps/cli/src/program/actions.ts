// What every command's action shares: the client built from the global options, failures made
// messages, and printing to stdout.
import { createSessionEventsClient } from '@session-events/client'
import type { Command } from 'commander'
import { describeFailure } from '../failures.js'

export interface GlobalOptions {
  apiKey?: string
  baseUrl: string
  maxRetries: number
  timeout: number
}

export function clientFor(command: Command) {
  const { apiKey, baseUrl, maxRetries, timeout } = command.optsWithGlobals<GlobalOptions>()
  if (!apiKey) command.error('session-events: an API key is needed: pass --api-key or set SESSION_EVENTS_API_KEY.')
  return createSessionEventsClient({ apiKey, baseUrl, maxRetries, timeoutMs: timeout })
}

/** Runs an action; a failure becomes its message on stderr and exit code 1. */
export function handled<Args extends unknown[]>(action: (...args: Args) => Promise<void>) {
  return async (...args: Args) => {
    try {
      await action(...args)
    } catch (error) {
      process.stderr.write(`${describeFailure(error)}\n`)
      process.exitCode = 1
    }
  }
}

export function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

export function terminalWidth(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns : undefined
}
