// The `session-events` command: commander parses, @session-events/client asks the API,
// format.ts prints. Failures print the API's message on stderr and exit with code 1.
import { readFileSync } from 'node:fs'
import {
  DEFAULT_BASE_URL,
  type ListSessionEventsQuery,
  SessionEventsConnectionError,
  SessionEventsError,
  createSessionEventsClient,
} from '@session-events/client'
import { Command, InvalidArgumentError, Option } from 'commander'
import { eventDetail, tableHeader, tableRow } from './format.js'

type Order = NonNullable<ListSessionEventsQuery['order']>
type EventType = NonNullable<ListSessionEventsQuery['type']>[number]

// The values the spec allows, for --help and for checking arguments early. Keyed by the
// generated types, so the compiler fails here when the spec adds or drops one.
const ORDERS: Record<Order, string> = { asc: 'oldest first', desc: 'newest first' }
const EVENT_TYPES: Record<EventType, string> = {
  server_logs: 'log lines of a server run',
  server_run_error: 'the error that ended a server run',
}

interface GlobalOptions {
  apiKey?: string
  baseUrl: string
  maxRetries: number
  timeout: number
}

interface ListOptions {
  limit?: number
  order?: Order
  type?: EventType[]
  serverRun?: string[]
  serverSession?: string[]
  cursor?: string
  all?: boolean
  json?: boolean
}

export function createProgram(): Command {
  const program = new Command('session-events')
    .description(
      'Read the events of Metorial sessions: the log lines and errors of their MCP server runs.',
    )
    .version(version())
    .configureHelp({ showGlobalOptions: true })
    .addOption(
      new Option(
        '--api-key <key>',
        'a secret key of the instance that owns the session (metorial_sk_…)',
      ).env('SESSION_EVENTS_API_KEY'),
    )
    .addOption(
      new Option(
        '--base-url <url>',
        'the API; http://127.0.0.1:3000 for a local server started with `npm start`',
      )
        .env('SESSION_EVENTS_BASE_URL')
        .default(DEFAULT_BASE_URL),
    )
    .addOption(
      new Option('--max-retries <n>', 'retries of a 429, 502, 503, 504, timeout or network failure')
        .argParser(wholeNumber)
        .default(2),
    )
    .addOption(
      new Option('--timeout <ms>', 'how long one request may take')
        .argParser(wholeNumber)
        .default(60_000),
    )
    .showHelpAfterError('(add --help for usage)')

  const events = program
    .command('events')
    .description('the events of a session')
    .showHelpAfterError('(add --help for usage)')

  events
    .command('list')
    .description('List the events of a session, one page or (with --all) every page.')
    .argument('<sessionId>', 'the session (ses_…)')
    .option(
      '--limit <n>',
      'events per page, 1 to 100 (default: 20, or 100 with --all)',
      wholeNumber,
    )
    .addOption(
      new Option('--order <order>', describeChoices('the order (default: asc)', ORDERS)).choices(
        Object.keys(ORDERS),
      ),
    )
    .option(
      '--type <type>',
      describeChoices('only events of this type, repeatable', EVENT_TYPES),
      repeatable(Object.keys(EVENT_TYPES)),
    )
    .option('--server-run <id>', 'only events of this server run (srr_…), repeatable', repeatable())
    .option(
      '--server-session <id>',
      'only events of this server session (srs_…), repeatable',
      repeatable(),
    )
    .option('--cursor <cursor>', 'start where a previous page ended (its next cursor)')
    .option('--all', 'follow every page to the end of the list')
    .option('--json', 'print JSON: the page, or with --all one event per line')
    .action(
      handled(async (sessionId: string, options: ListOptions, command: Command) => {
        const client = clientFor(command)
        const query: ListSessionEventsQuery = {
          limit: options.limit,
          order: options.order,
          type: options.type,
          server_run_id: options.serverRun,
          server_session_id: options.serverSession,
          cursor: options.cursor,
        }
        const width = terminalWidth()
        if (options.all) {
          let count = 0
          for await (const event of client.sessionEvents.iterate(sessionId, query)) {
            if (options.json) print(JSON.stringify(event))
            else print(`${count === 0 ? `${tableHeader(width)}\n` : ''}${tableRow(event, width)}`)
            count++
          }
          if (!options.json)
            print(count === 0 ? 'No events.' : `${count} ${count === 1 ? 'event' : 'events'}.`)
          return
        }
        const page = await client.sessionEvents.list(sessionId, query)
        if (options.json) return print(JSON.stringify(page, null, 2))
        if (page.items.length === 0) print('No events.')
        else
          print(
            [tableHeader(width), ...page.items.map((event) => tableRow(event, width))].join('\n'),
          )
        const next = page.pagination.next_cursor
        if (page.pagination.has_more_after && next) {
          process.stderr.write(
            `More events follow: add --cursor ${next} for the next page, or --all for every page.\n`,
          )
        }
      }),
    )

  events
    .command('get')
    .description('Show one event of a session.')
    .argument('<sessionId>', 'the session (ses_…)')
    .argument('<eventId>', 'the event (sev_…)')
    .option('--json', 'print the event as JSON')
    .action(
      handled(
        async (
          sessionId: string,
          eventId: string,
          options: { json?: boolean },
          command: Command,
        ) => {
          const event = await clientFor(command).sessionEvents.get(sessionId, eventId)
          print(options.json ? JSON.stringify(event, null, 2) : eventDetail(event))
        },
      ),
    )

  return program
}

function clientFor(command: Command) {
  const { apiKey, baseUrl, maxRetries, timeout } = command.optsWithGlobals<GlobalOptions>()
  if (!apiKey)
    command.error(
      'session-events: an API key is needed: pass --api-key or set SESSION_EVENTS_API_KEY.',
    )
  return createSessionEventsClient({ apiKey, baseUrl, maxRetries, timeoutMs: timeout })
}

/** Runs an action; a failure becomes its message on stderr and exit code 1. */
function handled<Args extends unknown[]>(action: (...args: Args) => Promise<void>) {
  return async (...args: Args) => {
    try {
      await action(...args)
    } catch (error) {
      process.stderr.write(`${describeFailure(error)}\n`)
      process.exitCode = 1
    }
  }
}

function describeFailure(error: unknown): string {
  if (error instanceof SessionEventsError) {
    const lines = [`session-events: ${error.message}`]
    for (const issue of error.errors ?? [])
      lines.push(`  ${issue.path.join('.') || '(request)'}: ${issue.message}`)
    if (error.hint) lines.push(error.hint)
    const request = error.requestId ? `, request ${error.requestId}` : ''
    lines.push(`(HTTP ${error.status}, ${error.code}${request})`)
    return lines.join('\n')
  }
  if (error instanceof SessionEventsConnectionError) return `session-events: ${error.message}`
  return `session-events: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`
}

function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

function terminalWidth(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns : undefined
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('Not a whole number.')
  return Number(value)
}

/** An option that may be given several times; its values are collected, checked against `allowed`. */
function repeatable<T extends string>(allowed?: string[]) {
  return (value: string, previous: T[] | undefined): T[] => {
    if (allowed && !allowed.includes(value))
      throw new InvalidArgumentError(`Allowed: ${allowed.join(', ')}.`)
    return [...(previous ?? []), value as T]
  }
}

function describeChoices(what: string, choices: Record<string, string>): string {
  return `${what}: ${Object.entries(choices)
    .map(([value, meaning]) => `${value} (${meaning})`)
    .join(', ')}`
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}
