// The `session-events` command: commander parses, @session-events/client asks the API,
// format.ts prints; run.ts and append.ts write. Failures print the API's message on stderr and
// exit with code 1.
// program/ holds the commands (sessions.ts, events.ts, run.ts) and what they share.
import { readFileSync } from 'node:fs'
import { DEFAULT_BASE_URL, specValues } from '@session-events/client'
import { Command, Option } from 'commander'
import { addEventsCommands } from './program/events.js'
import { addRunCommand } from './program/run.js'
import { addSessionsCommands } from './program/sessions.js'
import { wholeNumber } from './program/options.js'

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

  addSessionsCommands(program)
  addEventsCommands(program)
  addRunCommand(program)

  return program
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}
