// The `session-events` command: commander parses, @session-events/client asks the API,
// format.ts prints; run.ts and append.ts write. Failures print the API's message on stderr and
// exit with code 1.
import { readFileSync } from 'node:fs'
import {
  DEFAULT_BASE_URL,
  type ListSessionEventsQuery,
  type ListSessionsQuery,
  type LogLine,
  type SessionEvent,
  createSessionEventsClient,
  specValues,
} from '@session-events/client'
import { Command, InvalidArgumentError, Option } from 'commander'
import { appendStdin } from './append.js'
import { describeFailure } from './failures.js'
import {
  colourFor,
  eventDetail,
  eventLines,
  sessionTableHeader,
  sessionTableRow,
  tableHeader,
  tableRow,
} from './format.js'
import { MAX_LINES_PER_APPEND } from './batcher.js'
import { MAX_LINE_LENGTH } from './lines.js'
import { tailEvents } from './tail.js'
import { run } from './run.js'

type Order = NonNullable<ListSessionEventsQuery['order']>
type EventType = NonNullable<ListSessionEventsQuery['type']>[number]
type SessionStatus = NonNullable<ListSessionsQuery['status']>[number]

// The values the spec allows, for --help and for checking arguments early. Keyed by the
// generated types, so the compiler fails here when the spec adds or drops one.
const ORDERS: Record<Order, string> = { asc: 'oldest first', desc: 'newest first' }
const EVENT_TYPES: Record<EventType, string> = {
  server_logs: 'log lines of a server run',
  server_run_error: 'the error that ended a server run',
}
const SESSION_STATUSES: Record<SessionStatus, string> = {
  active: 'in use',
  deleted: 'deleted',
}
const STREAMS: Record<LogLine['type'], string> = {
  stdout: 'standard output',
  stderr: 'standard error',
}
// The spec's bounds and defaults of the parameters, as the help texts say them.
const { Limit, Order, SessionsLimit, Tail } = specValues.parameters
/** A count as the help says it: `1,000`. */
const count = (n: number) => n.toLocaleString('en-US')

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
  lines?: boolean
}

export function createProgram(): Command {
  const program = new Command('session-events')
    .description('Read and write the events of Metorial sessions: the log lines and errors of their MCP server runs.')
    .version(version())
    .configureHelp({ showGlobalOptions: true })
    .addOption(
      new Option('--api-key <key>', 'a secret key of the instance that owns the session (metorial_sk_…)').env(
        'SESSION_EVENTS_API_KEY',
      ),
    )
    .addOption(
      new Option(
        '--base-url <url>',
        `the API; ${specValues.servers[1].url} for a local server started with \`npm start\``,
      )
        .env('SESSION_EVENTS_BASE_URL')
        .default(DEFAULT_BASE_URL),
    )
    .addOption(
      new Option('--max-retries <n>', 'retries of a 429, 502, 503, 504, timeout or network failure')
        .argParser(wholeNumber)
        .default(2),
    )
    .addOption(new Option('--timeout <ms>', 'how long one request may take').argParser(wholeNumber).default(60_000))
    .showHelpAfterError('(add --help for usage)')

  const sessions = program
    .command('sessions')
    .description("the instance's sessions: list them, newest first")
    .showHelpAfterError('(add --help for usage)')

  sessions
    .command('list')
    .description("List the instance's sessions, newest first: one page or (with --all) every page.")
    .option(
      '--limit <n>',
      `sessions per page, ${SessionsLimit.schema.minimum} to ${SessionsLimit.schema.maximum} ` +
        `(default: ${SessionsLimit.schema.default}, or ${SessionsLimit.schema.maximum} with --all)`,
      wholeNumber,
    )
    .addOption(
      new Option(
        '--status <status>',
        describeChoices('only sessions with this status, repeatable', SESSION_STATUSES),
      ).argParser(repeatable(Object.keys(SESSION_STATUSES))),
    )
    .option('--cursor <cursor>', 'start where a previous page ended (its next cursor)')
    .option('--all', 'follow every page to the end of the list')
    .option('--json', 'print JSON: the page, or with --all one session per line')
    .action(
      handled(
        async (
          options: { limit?: number; status?: SessionStatus[]; cursor?: string; all?: boolean; json?: boolean },
          command: Command,
        ) => {
          const client = clientFor(command)
          const query: ListSessionsQuery = { limit: options.limit, status: options.status, cursor: options.cursor }
          const width = terminalWidth()
          if (options.all) {
            let count = 0
            for await (const session of client.sessions.iterate(query)) {
              if (!options.json && count === 0) print(sessionTableHeader(width))
              print(options.json ? JSON.stringify(session) : sessionTableRow(session, width))
              count++
            }
            if (!options.json) print(count === 0 ? 'No sessions.' : `${count} ${count === 1 ? 'session' : 'sessions'}.`)
            return
          }
          const page = await client.sessions.list(query)
          if (options.json) return print(JSON.stringify(page, null, 2))
          if (page.items.length === 0) print('No sessions.')
          else print([sessionTableHeader(width), ...page.items.map((s) => sessionTableRow(s, width))].join('\n'))
          const next = page.pagination.next_cursor
          if (page.pagination.has_more_after && next) {
            process.stderr.write(
              `More sessions follow: add --cursor ${next} for the next page, or --all for every page.\n`,
            )
          }
        },
      ),
    )

  const events = program
    .command('events')
    .description('the events of a session: list, get, tail, append')
    .showHelpAfterError('(add --help for usage)')

  events
    .command('list')
    .description('List the events of a session, one page or (with --all) every page.')
    .argument('<sessionId>', 'the session (ses_…)')
    .option(
      '--limit <n>',
      `events per page, ${Limit.schema.minimum} to ${Limit.schema.maximum} ` +
        `(default: ${Limit.schema.default}, or ${Limit.schema.maximum} with --all)`,
      wholeNumber,
    )
    .addOption(
      new Option('--order <order>', describeChoices(`the order (default: ${Order.schema.default})`, ORDERS)).choices(
        Object.keys(ORDERS),
      ),
    )
    .addOption(typeFilter())
    .addOption(serverRunFilter())
    .addOption(serverSessionFilter())
    .option('--cursor <cursor>', 'start where a previous page ended (its next cursor)')
    .option('--all', 'follow every page to the end of the list')
    .option('--json', 'print JSON: the page, or with --all one event per line')
    .addOption(
      new Option(
        '--lines',
        'print one line per log line (time, server, stream, the line), not a row per event',
      ).conflicts('json'),
    )
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
        const colour = colourFor(process.stdout)
        // Table rows under their header, or with --lines every log line of the events.
        const show = (events: SessionEvent[], header: boolean) =>
          options.lines
            ? events.flatMap((event) => eventLines(event, colour))
            : [...(header ? [tableHeader(width)] : []), ...events.map((event) => tableRow(event, width))]
        if (options.all) {
          let count = 0
          for await (const event of client.sessionEvents.iterate(sessionId, query)) {
            print(options.json ? JSON.stringify(event) : show([event], count === 0).join('\n'))
            count++
          }
          if (!options.json) print(count === 0 ? 'No events.' : `${count} ${count === 1 ? 'event' : 'events'}.`)
          return
        }
        const page = await client.sessionEvents.list(sessionId, query)
        if (options.json) return print(JSON.stringify(page, null, 2))
        if (page.items.length === 0) print('No events.')
        else print(show(page.items, true).join('\n'))
        const next = page.pagination.next_cursor
        if (page.pagination.has_more_after && next) {
          process.stderr.write(`More events follow: add --cursor ${next} for the next page, or --all for every page.\n`)
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
      handled(async (sessionId: string, eventId: string, options: { json?: boolean }, command: Command) => {
        const event = await clientFor(command).sessionEvents.get(sessionId, eventId)
        print(options.json ? JSON.stringify(event, null, 2) : eventDetail(event))
      }),
    )

  events
    .command('tail')
    .description('Follow the events of a session as they are written, until Ctrl-C.')
    .argument('<sessionId>', 'the session (ses_…)')
    .addOption(typeFilter())
    .addOption(serverRunFilter())
    .addOption(serverSessionFilter())
    .option(
      '--tail <n>',
      `first print the newest n events (${Tail.schema.minimum} to ${Tail.schema.maximum}; default ${Tail.schema.default})`,
      wholeNumber,
    )
    .option('--json', 'print each event as JSON, one per line (JSON Lines), instead of its log lines')
    .addHelpText(
      'after',
      `
Prints every log line as it is written: its time, server, stream (stdout or
stderr) and the line; a run's error is a line of its own (stream "error").
On a terminal stderr and errors are red, unless NO_COLOR is set (FORCE_COLOR
colours a pipe too). With --json, each event is one line of JSON instead.
Events come in order, each once, until Ctrl-C. A dropped connection, a
restarted server, a connection silent for 45 s (not even a keep-alive) or a
429/502/503/504 is ridden out: it reconnects with backoff and resumes right
after the last event it printed, so nothing is missed or printed twice. A
refusal (400, 401, 403, 404) prints the API's message; the exit code is 1.`,
    )
    .action(
      handled(
        async (
          sessionId: string,
          options: {
            type?: EventType[]
            serverRun?: string[]
            serverSession?: string[]
            tail?: number
            json?: boolean
          },
          command: Command,
        ) => {
          const stop = new AbortController()
          const onSignal = () => stop.abort()
          process.once('SIGINT', onSignal)
          process.once('SIGTERM', onSignal)
          try {
            await tailEvents({
              client: clientFor(command),
              sessionId,
              filters: {
                type: options.type,
                server_run_id: options.serverRun,
                server_session_id: options.serverSession,
              },
              tail: options.tail,
              json: options.json ?? false,
              signal: stop.signal,
            })
          } finally {
            process.off('SIGINT', onSignal)
            process.off('SIGTERM', onSignal)
          }
        },
      ),
    )

  events
    .command('append')
    .description('Append the lines of stdin to a server run of a session, in batches, as `run` does.')
    .argument('<sessionId>', 'the session (ses_…)')
    .requiredOption('--run <id>', 'the server run (srr_…), active, of the session')
    .addOption(
      new Option('--stream <stream>', 'the stream the lines were written to')
        .choices(Object.keys(STREAMS))
        .default('stdout'),
    )
    .option('--json', 'print each appended event as JSON, one per line, instead of its id')
    .addOption(maxOutageOption())
    .addHelpText(
      'after',
      `
Prints the id of each event as it is appended, one a batch. A batch goes when
it holds ${count(MAX_LINES_PER_APPEND)} lines or when its oldest line has waited 100 ms; lines over
${count(MAX_LINE_LENGTH)} characters are cut into pieces. An outage of the API is ridden out as
\`run\` does (see \`session-events run --help\`). A refusal stops the reading:
the API's message is printed and the exit code is 1. Ctrl-C (or SIGTERM) ends
the input: the lines read so far are appended, then the exit code is 130 (143).`,
    )
    .action(
      handled(
        async (
          sessionId: string,
          options: { run: string; stream: LogLine['type']; json?: boolean; maxOutage: number },
          command: Command,
        ) => {
          process.exitCode = await appendStdin({
            client: clientFor(command),
            sessionId,
            serverRunId: options.run,
            stream: options.stream,
            json: options.json ?? false,
            maxOutageMs: options.maxOutage * 1000,
          })
        },
      ),
    )

  program
    .command('run')
    .usage('[options] -- <command> [args...]')
    .description('Run a command as a server run of a session, appending its stdout and stderr lines as they come.')
    .argument('<command>', 'the command; put -- before it, so that its options are not taken for ours')
    .argument('[args...]', 'its arguments')
    .option('--session <id>', 'run in this session (ses_…); without it, a new session is created')
    .option('--server <name>', "the server's name (default: the command's basename)")
    .addOption(maxOutageOption())
    .option('--quiet', "do not copy the command's output to our stdout and stderr")
    .option(
      '--follow',
      "print the run's log lines as they are stored, as events tail does (instead of copying the output)",
    )
    .option('--json', 'with --follow: print the events as JSON, one per line, instead of their log lines')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
What it does:
  Creates a session (unless --session is given), starts an external server run
  in it and prints both ids on stderr, then starts the command with our stdin.
  Its stdout and stderr lines are appended in the order they arrive, one batch
  at a time (never two at once): a batch goes when it holds ${count(MAX_LINES_PER_APPEND)} lines (or
  4 MiB) or when its oldest line has waited 100 ms. Lines over ${count(MAX_LINE_LENGTH)}
  characters are cut into pieces. The output is copied to ours as well, unless
  --quiet; with --follow, the run's log lines and its error are printed instead,
  as they are stored (as \`events tail --server-run\` would). SIGINT and SIGTERM are passed
  on to the command.

  When the command exits, the lines left are appended and the run is stopped:
  completed after exit code 0, otherwise failed with the error process_exited
  (metadata.exit_code), process_killed (metadata.signal) or
  process_not_started.

When the API is away:
  A network failure, a timeout, a 429, 502, 503 or 504 is retried by the client
  (--max-retries); then the same batch is sent again, with the same
  Idempotency-Key so that it is stored once, with backoff, while new lines
  wait behind it, for up to --max-outage seconds.

When the API refuses (400, 401, 403, 404, 409) or stays away longer:
  Its message is printed and the command is stopped with SIGTERM (SIGKILL 10 s
  later), rather than left to run with output that can no longer be recorded.
  The exit code is 1.

Exit code:
  The command's own; 128 + the signal's number when a signal ended it; 127
  when the command was not found (126 when it could not be started); 1 when
  the API refused or stayed away.`,
    )
    .action(
      handled(
        async (
          commandName: string,
          args: string[],
          options: {
            session?: string
            server?: string
            maxOutage: number
            quiet?: boolean
            follow?: boolean
            json?: boolean
          },
          command: Command,
        ) => {
          process.exitCode = await run({
            client: clientFor(command),
            command: commandName,
            args,
            sessionId: options.session,
            serverName: options.server,
            maxOutageMs: options.maxOutage * 1000,
            echo: !options.quiet && !options.follow,
            follow: options.follow ? { json: options.json ?? false } : undefined,
          })
        },
      ),
    )

  return program
}

// The list's filters, which `events list` and `events tail` both take.
function typeFilter(): Option {
  return new Option('--type <type>', describeChoices('only events of this type, repeatable', EVENT_TYPES)).argParser(
    repeatable(Object.keys(EVENT_TYPES)),
  )
}
function serverRunFilter(): Option {
  return new Option('--server-run <id>', 'only events of this server run (srr_…), repeatable').argParser(repeatable())
}
function serverSessionFilter(): Option {
  return new Option('--server-session <id>', 'only events of this server session (srs_…), repeatable').argParser(
    repeatable(),
  )
}

function maxOutageOption(): Option {
  return new Option(
    '--max-outage <seconds>',
    'how long the API may stay unreachable (or answer 429, 502, 503, 504) before giving up',
  )
    .argParser(positiveNumber)
    .default(300)
}

function clientFor(command: Command) {
  const { apiKey, baseUrl, maxRetries, timeout } = command.optsWithGlobals<GlobalOptions>()
  if (!apiKey) command.error('session-events: an API key is needed: pass --api-key or set SESSION_EVENTS_API_KEY.')
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

function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

function terminalWidth(): number | undefined {
  return process.stdout.isTTY ? process.stdout.columns : undefined
}

function positiveNumber(value: string): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) === 0) throw new InvalidArgumentError('Not a positive number.')
  return Number(value)
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('Not a whole number.')
  return Number(value)
}

/** An option that may be given several times; its values are collected, checked against `allowed`. */
function repeatable<T extends string>(allowed?: string[]) {
  return (value: string, previous: T[] | undefined): T[] => {
    if (allowed && !allowed.includes(value)) throw new InvalidArgumentError(`Allowed: ${allowed.join(', ')}.`)
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
