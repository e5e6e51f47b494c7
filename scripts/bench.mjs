#!/usr/bin/env node
// `npm run bench [-- --quick]`: builds what the benchmark needs (the API and the packages it
// depends on, then the benchmark itself; turbo skips what is unchanged) and runs it. The
// benchmark lives in bench/ (see bench/src/main.ts); its results go to bench/results/.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' }

const build = spawnSync(
  'npx',
  [
    'turbo',
    'run',
    'build',
    '--filter=@session-events/api...',
    '--filter=@session-events/bench',
    '--output-logs=errors-only',
  ],
  { cwd: root, stdio: 'inherit', env },
)
if (build.status !== 0) {
  console.error('bench: the build failed (see above)')
  process.exit(build.status ?? 1)
}

const run = spawnSync(process.execPath, ['bench/dist/main.js', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env,
})
process.exit(run.status ?? 1)
