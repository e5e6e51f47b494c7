#!/usr/bin/env node
// session-events: read and write a session's events from the command line.
// See `session-events --help`.
import { createProgram } from './program.js'

// `session-events events list … --all | head`: a reader that stops early is not a failure.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0)
  throw error
})

await createProgram().parseAsync(process.argv)
