#!/usr/bin/env node
// The `session-events` bin. npm links a bin only if its file exists when it installs, and
// dist/ is built after `npm ci`, so the bin is this committed file, which loads the build.
import { existsSync } from 'node:fs'

const main = new URL('../dist/main.js', import.meta.url)
if (!existsSync(main)) {
  process.stderr.write(
    'session-events is not built yet: run `npx turbo run build --filter=@session-events/cli...` ' +
      'at the root of the repository.\n',
  )
  process.exit(1)
}
await import(main.href)
