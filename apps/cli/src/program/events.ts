// The `events` commands: `events list`, `events get`, `events tail` and `events append`.
import type { ListSessionEventsQuery, LogLine, SessionEvent } from '@session-events/client'
import { Option, type Command } from 'commander'
import { appendStdin } from '../append.js'
import { MAX_LINES_PER_APPEND } from '../batcher.js'
import { colourFor, eventDetail, eventLines, tableHeader, tableRow } from '../format.js'
import { MAX_LINE_LENGTH } from '../lines.js'
import { tailEvents } from '../tail.js'
import { clientFor, handled, print, terminalWidth } from './actions.js'
import {
  type EventType,
  Limit,
  ORDERS,
  Order,
  STREAMS,
  Tail,
  count,
  describeChoices,
  maxOutageOption,
  serverRunFilter,
  serverSessionFilter,
  typeFilter,
  wholeNumber,
} from './options.js'

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

export function addEventsCommands(program: Command): void {
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
}
