// The `run` command: run a command as a server run of a session.
import type { Command } from 'commander'
import { MAX_LINES_PER_APPEND } from '../batcher.js'
import { MAX_LINE_LENGTH } from '../lines.js'
import { run } from '../run.js'
import { clientFor, handled } from './actions.js'
import { count, maxOutageOption } from './options.js'

export function addRunCommand(program: Command): void {
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
    .option(
      '--merge-stderr',
      'give the command one pipe for stdout and stderr (as 2>&1): one exact order across both, every line recorded as stdout',
    )
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
What it does:
  Creates a session (unless --session is given), starts an external server run
  in it and prints both ids on stderr, then starts the command with our stdin.
  Its stdout and stderr lines are appended in the order they are read, one batch
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

Order:
  Every line is recorded once, and each stream's lines in the order printed.
  The two streams are two pipes, which carry no order between them: their lines
  are interleaved in the order they were read, which is the order printed only
  where the command's earlier output was read before it printed more (a line on
  stderr right after a burst on stdout may be read, and recorded, first). Where
  one exact order across both matters more than which stream a line came from,
  --merge-stderr gives the command one pipe for both (its stderr on its
  stdout, as 2>&1 does): the lines keep the order printed, and are all recorded
  as stdout.

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
            mergeStderr?: boolean
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
            mergeStderr: options.mergeStderr ?? false,
          })
        },
      ),
    )
}
