// The `sessions` commands: `sessions list`.
import type { ListSessionsQuery } from '@session-events/client'
import { Option, type Command } from 'commander'
import { sessionTableHeader, sessionTableRow } from '../format.js'
import { clientFor, handled, print, terminalWidth } from './actions.js'
import {
  SESSION_STATUSES,
  type SessionStatus,
  SessionsLimit,
  describeChoices,
  repeatable,
  wholeNumber,
} from './options.js'

export function addSessionsCommands(program: Command): void {
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
}
